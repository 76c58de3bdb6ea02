namespace CfOrch.Web.Components.Controls;

/// <summary>
/// The accessible name of an action button: a disabled button's reason is part of it, because a title on a wrapper is
/// out of reach of keyboards and screen readers.
/// </summary>
public static class ActionLabel
{
    public static string Of(string action, string? whyNot) => whyNot is null ? action : $"{action} (not available: {whyNot})";
}
