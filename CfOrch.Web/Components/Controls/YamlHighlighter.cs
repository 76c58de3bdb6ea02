using System.Text.RegularExpressions;

namespace CfOrch.Web.Components.Controls;

/// <summary>The kind of a piece of a YAML line, for colouring.</summary>
public enum YamlToken
{
    Text,
    Key,
    Quoted,
    Number,
    Keyword,
    Comment,
    Punctuation,
}

/// <summary>A small line-by-line YAML colourer for the profile editor (keys, strings, numbers, booleans, comments).</summary>
public static partial class YamlHighlighter
{
    public static IReadOnlyList<(YamlToken Kind, string Text)> Line(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var parts = new List<(YamlToken, string)>();
        var (code, comment) = SplitComment(line);
        var match = KeyRegex().Match(code);
        var rest = code;
        if (match.Success)
        {
            parts.Add((YamlToken.Text, match.Groups[1].Value));
            if (match.Groups[2].Length > 0)
            {
                parts.Add((YamlToken.Punctuation, match.Groups[2].Value));
            }

            parts.Add((YamlToken.Key, match.Groups[3].Value));
            parts.Add((YamlToken.Punctuation, ":"));
            rest = code[match.Length..];
        }
        else if (DashRegex().Match(code) is { Success: true } dash)
        {
            parts.Add((YamlToken.Text, dash.Groups[1].Value));
            parts.Add((YamlToken.Punctuation, "-"));
            rest = code[dash.Length..];
        }

        if (rest.Length > 0)
        {
            var value = rest.Trim();
            var kind = value.Length == 0 ? YamlToken.Text
                : value[0] is '"' or '\'' ? YamlToken.Quoted
                : NumberRegex().IsMatch(value) ? YamlToken.Number
                : KeywordRegex().IsMatch(value) ? YamlToken.Keyword
                : value[0] is '[' or '{' ? YamlToken.Punctuation
                : YamlToken.Text;
            parts.Add((kind, rest));
        }

        if (comment.Length > 0)
        {
            parts.Add((YamlToken.Comment, comment));
        }

        return parts;
    }

    /// <summary>Where a comment starts: a # at the line's start or after a space, outside quotes.</summary>
    private static (string Code, string Comment) SplitComment(string line)
    {
        var quote = '\0';
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
            }
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1])))
            {
                return (line[..i], line[i..]);
            }
        }

        return (line, "");
    }

    [GeneratedRegex(@"^(\s*)(-\s+)?([^\s:#'""][^:#]*?|""[^""]*""|'[^']*'):(?=\s|$)")]
    private static partial Regex KeyRegex();

    [GeneratedRegex(@"^(\s*)-(?=\s|$)")]
    private static partial Regex DashRegex();

    [GeneratedRegex(@"^[-+]?(\d[\d_]*)(\.\d+)?([eE][-+]?\d+)?$")]
    private static partial Regex NumberRegex();

    [GeneratedRegex(@"^(true|false|yes|no|on|off|null|~)$", RegexOptions.IgnoreCase)]
    private static partial Regex KeywordRegex();
}
