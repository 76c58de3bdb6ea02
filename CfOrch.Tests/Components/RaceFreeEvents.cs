using AngleSharp.Dom;
using Bunit;
using Microsoft.AspNetCore.Components;

namespace CfOrch.Tests.Components;

/// <summary>
/// Finds an element and fires its event on the renderer's dispatcher in one step. A component that re-renders from a
/// background change (the state stream, a timer, a dialog closing) between a separate Find and Click drops the handler
/// the test found, and the click fails with "no event handler with ID …" (bunit's advice: do both in InvokeAsync).
/// For the tests on the engine or the database; on <see cref="StateBunitContext"/> nothing re-renders between a test's
/// own steps, so a plain Find and Click is safe there.
/// </summary>
public static class RaceFreeEvents
{
    public static void ClickOn<TComponent>(this IRenderedComponent<TComponent> cut, string selector, Func<IElement, bool>? which = null)
        where TComponent : IComponent =>
        cut.InvokeAsync(() => Pick(cut, selector, which).Click()).GetAwaiter().GetResult();

    public static void InputOn<TComponent>(this IRenderedComponent<TComponent> cut, string selector, string value)
        where TComponent : IComponent =>
        cut.InvokeAsync(() => cut.Find(selector).Input(value)).GetAwaiter().GetResult();

    private static IElement Pick<TComponent>(IRenderedComponent<TComponent> cut, string selector, Func<IElement, bool>? which)
        where TComponent : IComponent =>
        which is null ? cut.Find(selector) : cut.FindAll(selector).Single(which);
}
