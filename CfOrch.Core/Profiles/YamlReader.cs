using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Collects errors while the profile parser walks a YAML tree, each one located at a node and a key path.
/// </summary>
internal sealed class YamlErrors(string file)
{
    private readonly List<ProfileError> _errors = [];

    public string File { get; } = file;

    public IReadOnlyList<ProfileError> All => _errors;

    public bool Any => _errors.Count > 0;

    public void Add(YamlNode node, string path, string message) => Add(node.Start, path, message);

    public void Add(Mark mark, string path, string message) =>
        _errors.Add(new ProfileError(File, (int)mark.Line, (int)mark.Column, path, message));
}

/// <summary>
/// Reads one YAML mapping against a fixed set of keys: typed getters record an error (with line, column and
/// path) instead of throwing, and <see cref="RejectUnknownKeys"/> reports every key nobody asked for.
/// </summary>
internal sealed class YamlMapReader
{
    private readonly Dictionary<string, (YamlScalarNode Key, YamlNode Value)> _entries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public YamlMapReader(YamlMappingNode node, string path, YamlErrors errors)
    {
        Node = node;
        Path = path;
        Errors = errors;
        foreach (var (keyNode, value) in node.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key } scalarKey)
            {
                errors.Add(keyNode, path, "keys must be plain strings");
                continue;
            }

            // YamlDotNet already refuses duplicate keys while loading, with their position.
            _entries[key] = (scalarKey, value);
        }
    }

    public YamlMappingNode Node { get; }

    public string Path { get; }

    public YamlErrors Errors { get; }

    public IEnumerable<string> Keys => _entries.Keys;

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    public bool Has(string key) => _entries.TryGetValue(key, out var e) && !IsNull(e.Value);

    public YamlNode? Raw(string key)
    {
        _known.Add(key);
        return _entries.TryGetValue(key, out var e) && !IsNull(e.Value) ? e.Value : null;
    }

    public string? String(string key, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode s)
        {
            return s.Value ?? "";
        }

        TypeError(node, key, "a string");
        return null;
    }

    public string NonEmptyString(string key, string fallback)
    {
        var value = String(key);
        if (value is null)
        {
            return fallback;
        }

        if (string.IsNullOrWhiteSpace(value))
        {
            Errors.Add(_entries[key].Value, Join(Path, key), "must not be empty");
            return fallback;
        }

        return value;
    }

    public long? Integer(string key, long min, long max, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text }
            && long.TryParse(text.Trim().Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max)
            {
                Errors.Add(node, Join(Path, key), $"must be between {min} and {max} (got {value})");
                return null;
            }

            return value;
        }

        TypeError(node, key, "a whole number");
        return null;
    }

    public double? Number(string key, double min, double max, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text }
            && double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            && double.IsFinite(value))
        {
            if (value < min || value > max)
            {
                Errors.Add(node, Join(Path, key), $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)} (got {text.Trim()})");
                return null;
            }

            return value;
        }

        TypeError(node, key, "a number");
        return null;
    }

    public bool? Bool(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text })
        {
            switch (text.Trim().ToUpperInvariant())
            {
                case "TRUE" or "YES" or "ON":
                    return true;
                case "FALSE" or "NO" or "OFF":
                    return false;
            }
        }

        TypeError(node, key, "true or false");
        return null;
    }

    public IReadOnlyList<string> StringList(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return [];
        }

        if (node is not YamlSequenceNode seq)
        {
            TypeError(node, key, "a list of strings");
            return [];
        }

        var list = new List<string>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            if (seq.Children[i] is YamlScalarNode { Value: { } v } && !IsNull(seq.Children[i]))
            {
                list.Add(v);
            }
            else
            {
                Errors.Add(seq.Children[i], $"{Join(Path, key)}[{i}]", "expected a string");
            }
        }

        return list;
    }

    public IReadOnlyList<int> IntList(string key, int min, int max)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return [];
        }

        if (node is not YamlSequenceNode seq)
        {
            TypeError(node, key, "a list of whole numbers");
            return [];
        }

        var list = new List<int>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var item = seq.Children[i];
            var itemPath = $"{Join(Path, key)}[{i}]";
            if (item is YamlScalarNode { Value: { } v }
                && int.TryParse(v.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
            {
                if (n < min || n > max)
                {
                    Errors.Add(item, itemPath, $"must be between {min} and {max} (got {n})");
                }
                else if (list.Contains(n))
                {
                    Errors.Add(item, itemPath, $"{n} is listed twice");
                }
                else
                {
                    list.Add(n);
                }
            }
            else
            {
                Errors.Add(item, itemPath, "expected a whole number");
            }
        }

        return list;
    }

    /// <summary>A mapping of string to scalar (env, model_size_hints); scalar values are kept as written.</summary>
    public IReadOnlyDictionary<string, string> StringMap(string key)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = Map(key);
        if (reader is null)
        {
            return map;
        }

        foreach (var k in reader.Keys.ToList())
        {
            var value = reader.String(k);
            if (value is not null)
            {
                map[k] = value;
            }
        }

        return map;
    }

    public YamlMapReader? Map(string key, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return null;
        }

        if (node is YamlMappingNode map)
        {
            return new YamlMapReader(map, Join(Path, key), Errors);
        }

        TypeError(node, key, "a mapping");
        return null;
    }

    public YamlSequenceNode? Sequence(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return null;
        }

        if (node is YamlSequenceNode seq)
        {
            return seq;
        }

        TypeError(node, key, "a list");
        return null;
    }

    /// <summary>Reports every key that no getter asked for, suggesting the closest known key.</summary>
    public void RejectUnknownKeys()
    {
        foreach (var (key, (keyNode, _)) in _entries)
        {
            if (_known.Contains(key))
            {
                continue;
            }

            var suggestion = Closest(key, _known);
            var hint = suggestion is null ? $" (allowed here: {string.Join(", ", _known.Order(StringComparer.Ordinal))})" : $" (did you mean '{suggestion}'?)";
            Errors.Add(keyNode, Join(Path, key), $"unknown key '{key}'{hint}");
        }
    }

    public void Error(string key, string message)
    {
        var node = _entries.TryGetValue(key, out var e) ? e.Value : (YamlNode)Node;
        Errors.Add(node, Join(Path, key), message);
    }

    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private YamlNode? Get(string key, bool required)
    {
        _known.Add(key);
        if (_entries.TryGetValue(key, out var e) && !IsNull(e.Value))
        {
            return e.Value;
        }

        if (required)
        {
            if (_entries.TryGetValue(key, out var present))
            {
                Errors.Add(present.Value, Join(Path, key), "is required and must have a value");
            }
            else
            {
                Errors.Add(Node, Join(Path, key), $"required key '{key}' is missing");
            }
        }

        return null;
    }

    private void TypeError(YamlNode node, string key, string expected)
    {
        var found = node switch
        {
            YamlMappingNode => "a mapping",
            YamlSequenceNode => "a list",
            YamlScalarNode s => $"'{Truncate(s.Value ?? "")}'",
            _ => "something else",
        };
        Errors.Add(node, Join(Path, key), $"expected {expected}, found {found}");
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : string.Concat(s.AsSpan(0, 40), "…");

    private static string? Closest(string key, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        var lower = key.ToLowerInvariant();
        var threshold = Math.Max(2, key.Length / 3);
        foreach (var candidate in candidates)
        {
            // The distance is at least the difference in length: a candidate that far off cannot be suggested, and
            // skipping it keeps long unknown keys cheap (a document of thousands would otherwise cost ~100 ms).
            if (Math.Abs(lower.Length - candidate.Length) > threshold)
            {
                continue;
            }

            var d = Levenshtein(lower, candidate);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = candidate;
            }
        }

        return best is not null && bestDistance <= threshold ? best : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
