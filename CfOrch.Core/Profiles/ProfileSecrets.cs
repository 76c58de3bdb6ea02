using System.Text;
using YamlDotNet.Core;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Hides secrets in what cf-orch shows of a profile: the values of secret-looking environment variables.
/// Only env values are secrets: a key named <c>token</c> elsewhere in a profile (none exists in schema_version 1) is
/// shown as written, so that masking never hides the settings a reader needs. The one exception is YAML that does
/// not parse (or crosses a <see cref="YamlLimits"/> bound), where env blocks cannot be told apart: there every
/// secret-looking key on any line is masked, so that a broken file does not leak either.
/// </summary>
public static class ProfileSecrets
{
    /// <summary>What a secret's value is replaced with; also a valid plain YAML scalar, so masked YAML still parses.</summary>
    public const string Mask = "••••";

    private static readonly string[] SecretWords = ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASS", "CREDENTIAL"];

    /// <summary>
    /// True when the name contains, in any case, TOKEN, KEY, SECRET, PASSWORD, PASS or CREDENTIAL
    /// (<c>HF_TOKEN</c>, <c>OPENAI_API_KEY</c>, <c>DB_PASSWORD</c>…). A plain "contains" rule: it also masks names
    /// such as <c>PASSTHROUGH</c> or <c>KEYBOARD</c>, which costs a reader little and misses no secret.
    /// </summary>
    public static bool IsSecretKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var word in SecretWords)
        {
            if (key.Contains(word, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A copy of an environment map with the values of secret-looking names replaced by <see cref="Mask"/>.</summary>
    public static IReadOnlyDictionary<string, string> MaskEnv(IReadOnlyDictionary<string, string> env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var masked = new Dictionary<string, string>(env.Count, StringComparer.Ordinal);
        foreach (var (name, value) in env)
        {
            masked[name] = IsSecretKey(name) ? Mask : value;
        }

        return masked;
    }

    /// <summary>
    /// The same text with the value of every secret-looking key of every mapping that is the value of an <c>env</c>
    /// key (at any depth) replaced by <see cref="Mask"/>: plain and quoted values in place, a block scalar
    /// (<c>|</c>, <c>&gt;</c>) wholly on its key's line. Everything else stays byte for byte: comments, other keys,
    /// lines. Never throws on any text: YAML that does not parse, or crosses a limit, is masked line by line.
    /// </summary>
    public static string MaskYaml(string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        if (yaml.StartsWith('\uFEFF'))
        {
            // YamlDotNet reads a byte order mark as part of the first key ("\uFEFFenv" would not be env).
            return string.Concat("\uFEFF", MaskYaml(yaml[1..]));
        }

        if (YamlLimits.CheckSize(yaml, "") is not null)
        {
            return SecretLines.Mask(yaml);
        }

        IReadOnlyList<SecretSpans.Span> spans;
        try
        {
            spans = SecretSpans.Find(yaml);
        }
        catch (Exception ex) when (ex is YamlException or ProfileException or InvalidOperationException or ArgumentException)
        {
            return SecretLines.Mask(yaml);
        }

        var masked = new StringBuilder(yaml.Length);
        var at = 0;
        foreach (var span in spans)
        {
            masked.Append(yaml, at, span.Start - at).Append(span.Replacement);
            at = span.End;
        }

        return masked.Append(yaml, at, yaml.Length - at).ToString();
    }
}
