using System.Text.RegularExpressions;

namespace CfOrch.Web.Api;

/// <summary>Says in cf-orch's words what ASP.NET Core's binder could not bind (<c>tail=abc</c>, <c>dry_run=maybe</c>).</summary>
public static partial class BindingFailure
{
    public static string Describe(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var match = FailedToBind().Match(message);
        if (!match.Success)
        {
            return message;
        }

        var type = match.Groups["type"].Value.TrimEnd('?');
        if (type.StartsWith("Nullable<", StringComparison.Ordinal))
        {
            type = type["Nullable<".Length..].TrimEnd('>');
        }

        var expected = type switch
        {
            "int" or "long" or "Int32" or "Int64" => "a whole number",
            "double" or "float" or "decimal" or "Double" => "a number",
            "bool" or "Boolean" => "true or false",
            _ => "a " + type,
        };
        return $"{match.Groups["name"].Value}: '{match.Groups["value"].Value}' is not {expected}";
    }

    // Failed to bind parameter "int? tail" from "abc".
    [GeneratedRegex("""\AFailed to bind parameter "(?<type>[^" ]+) (?<name>[^"]+)" from "(?<value>.*)"\.\z""", RegexOptions.Singleline)]
    private static partial Regex FailedToBind();
}
