using System.Text;
using System.Text.RegularExpressions;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Masks secrets line by line, for YAML that does not parse (or is over a limit): where env blocks cannot be told
/// apart, the value of every secret-looking key is masked, wherever it is. A <c>KEY: value</c> line loses its whole
/// value (comments included); pairs of a flow mapping (<c>{HF_TOKEN: x, PATH: y}</c>) lose theirs; a block scalar or
/// a value on the lines below its key is replaced on the key's line, and its lines are left out. Linear in the text.
/// </summary>
internal static partial class SecretLines
{
    public static string Mask(string yaml)
    {
        var masked = new StringBuilder(yaml.Length);
        int? dropDeeperThan = null;
        var at = 0;
        while (at < yaml.Length)
        {
            var newline = yaml.IndexOf('\n', at);
            var next = newline < 0 ? yaml.Length : newline + 1;
            var lineEnd = newline < 0 ? yaml.Length : newline > at && yaml[newline - 1] == '\r' ? newline - 1 : newline;
            var line = yaml[at..lineEnd];
            var ending = yaml[lineEnd..next];
            at = next;

            if (dropDeeperThan is { } indent)
            {
                if (line.Trim().Length == 0 || Indent(line) > indent)
                {
                    continue;
                }

                dropDeeperThan = null;
            }

            var pair = BlockPair().Match(line);
            if (pair.Success && ProfileSecrets.IsSecretKey(pair.Groups["key"].Value))
            {
                var value = pair.Groups["value"];
                masked.Append(line, 0, value.Success ? value.Index : line.Length).Append(value.Success ? "" : " ").Append(ProfileSecrets.Mask).Append(ending);
                if (!value.Success || value.Value[0] is '|' or '>')
                {
                    dropDeeperThan = Indent(line);
                }

                continue;
            }

            masked.Append(FlowPair().Replace(line, m => ProfileSecrets.IsSecretKey(m.Groups["key"].Value) ? m.Groups["head"].Value + ProfileSecrets.Mask : m.Value)).Append(ending);
        }

        return masked.ToString();
    }

    private static int Indent(string line)
    {
        var i = 0;
        while (i < line.Length && line[i] is ' ' or '\t')
        {
            i++;
        }

        return i;
    }

    /// <summary><c>KEY: value</c> alone on a line, the key maybe quoted or a list item's.</summary>
    [GeneratedRegex("""^[ \t]*(?:-[ \t]+)*(?<q>["']?)(?<key>[A-Za-z0-9_.-]+)\k<q>[ \t]*:(?:[ \t]*(?<value>\S.*))?[ \t]*$""")]
    private static partial Regex BlockPair();

    /// <summary><c>KEY: value</c> after a flow mapping's <c>{</c> or <c>,</c>; the value quoted or up to the next <c>,</c>, <c>}</c> or <c>]</c>.</summary>
    [GeneratedRegex("""(?<head>[{,][ \t]*(?<q>["']?)(?<key>[A-Za-z0-9_.-]+)\k<q>[ \t]*:[ \t]*)(?:"(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?|[^,}\]]*)""")]
    private static partial Regex FlowPair();
}
