using System.Globalization;
using System.Text;
using CfOrch.Core.Profiles;

namespace CfOrch.Bench;

/// <summary>
/// The worst profile documents we could think of, each as large as <see cref="ProfileParser.MaxFileBytes"/> lets
/// through: deep nesting in every syntax, alias expansion, many small nodes, huge scalars, many anchors, many errors;
/// and one over the cap (refused unread by the parser, masked line by line by ProfileSecrets.MaskYaml).
/// </summary>
internal static class YamlBombs
{
    private const string Head = "schema_version: 1\nname: bomb\n";

    public static IReadOnlyList<(string Name, string Yaml)> All() =>
    [
        ("flow sequences nested `[[[…]]]`", Nest(Head + "services: ", "[", "]", "\n")),
        ("flow mappings nested `{a: {a: …}}`", Nest(Head + "services: ", "{a: ", "}", "\n")),
        ("block sequences nested on one line `- - - …`", Nest(Head + "services:\n", "- ", "", "x\n")),
        ("block mappings nested by indentation", BlockNest()),
        ("billion laughs (9 × 9 aliases)", Laughs(levels: 9, width: 9)),
        ("valid: aliases of a 1,000-item list up to the node limit", AliasesUnderLimit()),
        ("many small nodes, block sequence `- a`", Fill(Head + "services:\n", i => "- a\n", "")),
        ("many keys of one mapping", Fill(Head + "services:\n", i => $"  k{i}: a\n", "")),
        ("long flow sequence `[a,a,a,…]`", Fill(Head + "services: [", i => "a,", "a]\n")),
        ("many depth-30 nests in one list", Fill(Head + "services:\n", i => "- " + new string('[', 30) + new string(']', 30) + "\n", "")),
        ("one huge plain scalar", Head + "services: " + new string('x', Room(Head + "services: \n")) + "\n"),
        ("one huge double-quoted scalar of escapes", Fill(Head + "services: \"", i => "\\t", "\"\n")),
        ("one huge literal block scalar", Fill(Head + "services: |\n", i => "  " + new string('x', 78) + "\n", "")),
        ("many anchors and aliases", Fill(Head + "services:\n", i => $"- &a{i} x\n- *a{i}\n", "")),
        ("many unknown keys of 1,000 characters", Fill(Head, i => $"k{i.ToString(CultureInfo.InvariantCulture).PadLeft(6, '0')}{new string('q', 994)}: a\n", "")),
        ("many unknown short keys", Fill(Head, i => $"servicez{i}: a\n", "")),
        ("many complex keys `? [a, b]`", Fill(Head + "services:\n", i => $"  ? [{i}, x]\n  : a\n", "")),
        ("many documents `---`", Fill("", i => "---\n", "")),
        ("valid: a realistic 50 KB profile (many services with env and volumes)", Realistic50Kb()),
        ("many services, each with every error", Fill(Head + "services:\n", i => $"  s{i}: {{max_mb: -1, priority: x, managed: {{type: docker, image: '', port: 0, host_port: 0, restart: x, colour: x}}}}\n", "")),
        ("over the size cap: 1 MiB of `- {API_KEY: a, b: [c]}`", Head + string.Concat(Enumerable.Repeat("- {API_KEY: a, b: [c]}\n", 4 * ProfileParser.MaxFileBytes / 23))),
        ("valid: as many services as the node limit allows", Fill(Head + "services:\n", i => $"  s{i}: {{max_mb: 1, priority: 1, managed: {{type: process, exec_path: /x, port: {1 + i}, env: {{A: b}}}}}}\n", "", (YamlLimits.MaxNodes - 10) / 18)),
    ];

    /// <summary>How many characters fit between a document's fixed parts and the size cap.</summary>
    private static int Room(string fixedParts) => ProfileParser.MaxFileBytes - Encoding.UTF8.GetByteCount(fixedParts);

    private static string Nest(string head, string open, string close, string tail)
    {
        var levels = Room(head + tail) / (open.Length + close.Length);
        var sb = new StringBuilder(ProfileParser.MaxFileBytes).Append(head);
        sb.Insert(sb.Length, open, levels).Append(tail).Insert(sb.Length, close, levels);
        return sb.ToString();
    }

    /// <summary>Repeats unit(0), unit(1), … between head and tail as long as the document stays within the cap.</summary>
    private static string Fill(string head, Func<int, string> unit, string tail, int most = int.MaxValue)
    {
        var sb = new StringBuilder(ProfileParser.MaxFileBytes).Append(head);
        var room = Room(head + tail);
        for (var i = 0; i < most; i++)
        {
            var next = unit(i);
            if (sb.Length - head.Length + next.Length > room)
            {
                break;
            }

            sb.Append(next);
        }

        return sb.Append(tail).ToString();
    }

    private static string BlockNest()
    {
        var sb = new StringBuilder(Head).Append("services:\n");
        for (var depth = 1; sb.Length + depth + 3 <= ProfileParser.MaxFileBytes; depth++)
        {
            sb.Append(' ', depth).Append("a:\n");
        }

        return sb.ToString();
    }

    private static string Laughs(int levels, int width)
    {
        var sb = new StringBuilder(Head).Append("l0: &a0 [").Append(string.Join(",", Enumerable.Repeat("lol", width))).Append("]\n");
        for (var i = 1; i < levels; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"l{i}: &a{i} [").Append(string.Join(",", Enumerable.Repeat($"*a{i - 1}", width))).Append("]\n");
        }

        return sb.Append(CultureInfo.InvariantCulture, $"services: {{x: {{max_mb: 1, priority: 1, consumers: *a{levels - 1}}}}}\n").ToString();
    }

    /// <summary>
    /// A valid profile whose services share one anchored list of 1,000 consumers by alias, as many as the node limit
    /// allows: every alias is walked in full by the validation.
    /// </summary>
    private static string AliasesUnderLimit()
    {
        const int Items = 1000;
        var sb = new StringBuilder(Head).Append("services:\n  s0: {max_mb: 1, priority: 1, consumers: &big [");
        sb.Append(string.Join(",", Enumerable.Repeat("c", Items))).Append("]}\n");
        var services = (YamlLimits.MaxNodes - Items - 20) / (Items + 6);
        for (var i = 1; i < services; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"  s{i}: {{max_mb: 1, priority: 1, consumers: *big}}\n");
        }

        return sb.ToString();
    }

    /// <summary>What a large real profile looks like: about 50 KB of services, each with a managed block, env and volumes.</summary>
    internal static string Realistic50Kb()
    {
        var text = new StringBuilder(Head + "services:\n");
        for (var i = 0; text.Length < 50 * 1024; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $$"""
              svc-{{i}}:
                max_mb: {{512 + (i % 8) * 256}}
                priority: {{1 + (i % 4)}}
                idle_stop_after_s: 600
                managed:
                  type: docker
                  image: ghcr.io/example/service-{{i}}:1.{{i % 10}}
                  command_template: --model {model} --port 8000 --max-batch {{i % 32}}
                  port: 8000
                  host_port: {{20000 + i}}
                  health_path: /health
                  env:
                    LOG_LEVEL: info
                    CACHE_DIR: /cache/{{i}}
                  volumes:
                    - cache-{{i}}:/cache
                    - /srv/models:/models:ro

            """);
        }

        return text.ToString();
    }
}
