using System.Globalization;
using System.Text;

namespace CfOrch.Core.Supervision;

/// <summary>
/// Turns a profile's args_template into argv, without a shell. Whitespace separates arguments; double quotes group
/// (<c>""</c> is an empty argument, and quoted and unquoted parts next to each other make one argument, as in a
/// shell: <c>--name="a b"</c>); inside quotes a backslash escapes a quote or a backslash, and is kept as written
/// before anything else. Single quotes and backslashes outside quotes are ordinary characters.
/// </summary>
public static class ArgsTemplate
{
    /// <summary>Splits <paramref name="template"/> into arguments.</summary>
    /// <exception cref="FormatException">A quote is never closed; the message gives its column (1-based).</exception>
    public static IReadOnlyList<string> Split(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        var arguments = new List<string>();
        var current = new StringBuilder();
        var inArgument = false;
        var quoteColumn = 0;

        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (quoteColumn > 0)
            {
                if (c == '"')
                {
                    quoteColumn = 0;
                }
                else if (c == '\\' && i + 1 < template.Length && template[i + 1] is '"' or '\\')
                {
                    current.Append(template[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inArgument)
                {
                    arguments.Add(current.ToString());
                    current.Clear();
                    inArgument = false;
                }
            }
            else
            {
                inArgument = true;
                if (c == '"')
                {
                    quoteColumn = i + 1;
                }
                else
                {
                    current.Append(c);
                }
            }
        }

        if (quoteColumn > 0)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"the quote at column {quoteColumn} is never closed"));
        }

        if (inArgument)
        {
            arguments.Add(current.ToString());
        }

        return arguments;
    }

    /// <summary>
    /// Splits <paramref name="template"/>, then replaces each <c>{name}</c> whose name is a key of
    /// <paramref name="values"/> (<c>{port}</c>, <c>{gpu_id}</c>, <c>{model}</c>) inside each argument, so a value with
    /// spaces stays one argument. Unknown placeholders are left as written; values are not expanded again.
    /// </summary>
    /// <exception cref="FormatException">A quote is never closed.</exception>
    public static IReadOnlyList<string> Expand(string template, IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Split(template).Select(argument => Replace(argument, values)).ToList();
    }

    private static string Replace(string argument, IReadOnlyDictionary<string, string> values)
    {
        if (!argument.Contains('{', StringComparison.Ordinal))
        {
            return argument;
        }

        var result = new StringBuilder(argument.Length);
        var i = 0;
        while (i < argument.Length)
        {
            var open = argument.IndexOf('{', i);
            var close = open < 0 ? -1 : argument.IndexOf('}', open + 1);
            if (close < 0)
            {
                result.Append(argument, i, argument.Length - i);
                break;
            }

            result.Append(argument, i, open - i);
            var name = argument[(open + 1)..close];
            if (values.TryGetValue(name, out var value))
            {
                result.Append(value);
                i = close + 1;
            }
            else
            {
                // Not ours: keep the brace and look for a placeholder after it ("{{port}" keeps one brace).
                result.Append('{');
                i = open + 1;
            }
        }

        return result.ToString();
    }
}
