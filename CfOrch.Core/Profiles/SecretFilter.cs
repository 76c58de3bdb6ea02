using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Masks secrets in text shown to those who may not control cf-orch — a service's output, its last lines: the values of
/// the active profile's secret-looking env keys wherever they appear, and the value of any secret-looking
/// <c>KEY=value</c> or <c>KEY: value</c> (<c>HF_TOKEN=…</c>, <c>--api-key=…</c>, <c>password: …</c>).
/// </summary>
public sealed partial class SecretFilter(ProfileRegistry profiles)
{
    /// <summary>Secret values shorter than this are not searched for (they would mask ordinary words); the KEY=value rule still applies.</summary>
    public const int MinValueLength = 4;

    private readonly ConditionalWeakTable<GpuProfile, string[]> _values = [];

    public string Mask(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var value in _values.GetValue(profiles.Active.Profile, SecretValues))
        {
            text = text.Replace(value, ProfileSecrets.Mask, StringComparison.Ordinal);
        }

        return KeyValue().Replace(text, m => ProfileSecrets.IsSecretKey(m.Groups["key"].Value)
            ? m.Groups["key"].Value + m.Groups["sep"].Value + ProfileSecrets.Mask
            : m.Value);
    }

    /// <summary>The values of the secret-looking env keys of every service, longest first (so a value inside another is not half-masked).</summary>
    private static string[] SecretValues(GpuProfile profile) =>
        profile.Services.Values
            .Select(s => s.Managed?.Env)
            .OfType<IReadOnlyDictionary<string, string>>()
            .SelectMany(env => env.Where(e => ProfileSecrets.IsSecretKey(e.Key)).Select(e => e.Value))
            .Where(v => v.Length >= MinValueLength)
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(v => v.Length)
            .ToArray();

    [GeneratedRegex("""(?<key>[A-Za-z_][A-Za-z0-9_.-]*)(?<sep>\s*[=:]\s*)(?<value>"[^"]*"|'[^']*'|[^\s"',;]+)""")]
    private static partial Regex KeyValue();
}
