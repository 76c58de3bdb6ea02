using System.Globalization;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Security;

/// <summary>
/// Names, holders and callers are printable text: a control character (C0, DEL, C1 — among them the escape that starts
/// an ANSI terminal sequence) in one would forge log lines or rewrite a terminal that shows them.
/// </summary>
public static class ControlCharacters
{
    public static int IndexIn(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsControl(text[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>"U+001B at position 4", for an error message.</summary>
    public static string Describe(string text, int index) =>
        string.Create(CultureInfo.InvariantCulture, $"the control character U+{(int)text[index]:X4} at position {index + 1}");

    /// <summary>Refuses, with 400, an API request with a control character in a path segment or a query value.</summary>
    public static IApplicationBuilder UseControlCharacterCheck(IApplicationBuilder app) => app.Use((http, next) =>
    {
        if (!Auth.AccessPolicies.IsMachineRequest(http))
        {
            return next(http);
        }

        var path = http.Request.Path.Value ?? "";
        if (IndexIn(path) is var p and >= 0)
        {
            return ApiJson.WriteErrorAsync(http, StatusCodes.Status400BadRequest, $"the path holds {Describe(path, p)}; names are printable text");
        }

        foreach (var (key, values) in http.Request.Query)
        {
            foreach (var value in values)
            {
                if (value is not null && IndexIn(value) is var q and >= 0)
                {
                    return ApiJson.WriteErrorAsync(http, StatusCodes.Status400BadRequest, $"the query value '{key}' holds {Describe(value, q)}; it must be printable text");
                }
            }
        }

        return next(http);
    });
}
