using YamlDotNet.Core.Events;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Finds, in one pass over YamlDotNet's events (within <see cref="YamlLimits"/>), the text of every value that
/// <see cref="ProfileSecrets.MaskYaml"/> hides: under a secret-looking key of a mapping that is the value of an
/// <c>env</c> key (and, should env be written as a list, the value of its secret-looking <c>NAME=value</c> items).
/// Aliases are followed: an env block or a secret value written once with an anchor and repeated by alias is hidden
/// where it is written.
/// </summary>
internal sealed class SecretSpans
{
    private readonly string _yaml;
    private readonly List<Frame> _open = [];
    private readonly Dictionary<string, Anchored> _anchors = new(StringComparer.Ordinal);
    private readonly AnchorClaims _claims = new();
    private readonly SortedDictionary<int, Span> _found = [];
    private readonly Dictionary<string, string> _scalarAnchors = new(StringComparer.Ordinal);

    /// <summary>
    /// The key text used for a key whose text is not known here (an alias of a mapping, a complex key): it looks secret,
    /// so the value under it in an env mapping is hidden — unknown fails closed.
    /// </summary>
    private const string UnknownKey = "(unknown key: treated as a SECRET)";

    private SecretSpans(string yaml) => _yaml = yaml;

    /// <summary>Spans to replace, in order, none overlapping. Throws YamlDotNet's or the limits' exceptions.</summary>
    public static IReadOnlyList<Span> Find(string yaml)
    {
        var finder = new SecretSpans(yaml);
        var parser = new LimitedParser(yaml, "");
        while (parser.MoveNext())
        {
            finder.Visit(parser.Current!);
        }

        return [.. finder._found.Values];
    }

    private void Visit(ParsingEvent e)
    {
        switch (e)
        {
            case DocumentStart:
                _anchors.Clear();
                _claims.Clear();
                _scalarAnchors.Clear();
                break;
            case Scalar scalar:
                VisitScalar(scalar);
                break;
            case AnchorAlias alias:
                VisitAlias(alias.Value.Value);
                break;
            case MappingStart or SequenceStart:
                VisitStart((NodeEvent)e, e is MappingStart);
                break;
            case MappingEnd or SequenceEnd:
                VisitEnd();
                break;
        }
    }

    private void VisitScalar(Scalar scalar)
    {
        var (isKey, secret, _, envItemName) = Enter(scalar.Value);
        List<Span> spans = [];
        if (!isKey && SpanOf(scalar) is { } found)
        {
            // A plain NAME=value item keeps its name; a quoted or block one is masked whole.
            var span = envItemName is not null && scalar.Style == YamlDotNet.Core.ScalarStyle.Plain
                ? found with { Replacement = $"{envItemName}={ProfileSecrets.Mask}" }
                : found;
            spans.Add(span);
            if (secret)
            {
                Hide(spans);
            }

            Collect(spans);
        }

        if (!scalar.Anchor.IsEmpty)
        {
            _claims.Claim(scalar.Anchor.Value);
            _anchors[scalar.Anchor.Value] = new Anchored(spans, []);
            _scalarAnchors[scalar.Anchor.Value] = scalar.Value;
        }

        Leave();
    }

    private void VisitAlias(string name)
    {
        // An alias used as a key (*k : value) stands for its anchor's text: an env key repeated by alias is still one.
        var (isKey, secret, envValue, _) = Enter(ExpectsKey ? _scalarAnchors.GetValueOrDefault(name, UnknownKey) : null);
        if (!isKey && _anchors.TryGetValue(name, out var anchored))
        {
            if (secret)
            {
                Hide(anchored.Values);
            }
            else if (envValue)
            {
                Hide(anchored.SecretValues);
            }

            Collect(anchored.Values);
        }

        Leave();
    }

    private void VisitStart(NodeEvent start, bool isMapping)
    {
        var (isKey, secret, envValue, _) = Enter(ExpectsKey ? UnknownKey : null);
        Anchored? anchored = null;
        var claim = 0;
        if (!start.Anchor.IsEmpty)
        {
            anchored = new Anchored([], []);
            claim = _claims.Claim(start.Anchor.Value);
            _anchors.Remove(start.Anchor.Value);
        }

        _open.Add(new Frame(isMapping, envValue, !isKey && secret, start.Anchor.IsEmpty ? null : start.Anchor.Value, anchored) { Claim = claim });
    }

    private void VisitEnd()
    {
        if (_open.Count == 0)
        {
            return;
        }

        var frame = _open[^1];
        _open.RemoveAt(_open.Count - 1);
        if (frame.Anchor is not null && _claims.Holds(frame.Anchor, frame.Claim))
        {
            _anchors[frame.Anchor] = frame.Anchored!;
        }

        Leave();
    }

    /// <summary>
    /// A node begins (<paramref name="text"/> is a scalar's value): whether it is a mapping's key, whether it is a
    /// secret (a value under a secret-looking key of an env mapping, anything inside such a value, or a secret-looking
    /// <c>NAME=value</c> item of an env list, whose name is given), and whether it is the value of an <c>env</c> key.
    /// </summary>
    /// <summary>The next node is a key of the open mapping.</summary>
    private bool ExpectsKey => _open.Count > 0 && _open[^1] is { IsMapping: true, ExpectKey: true };

    private (bool IsKey, bool Secret, bool EnvValue, string? EnvItemName) Enter(string? text)
    {
        if (_open.Count == 0)
        {
            return (false, false, false, null);
        }

        var parent = _open[^1];
        if (parent.IsMapping && parent.ExpectKey)
        {
            parent.Key = text;
            parent.ExpectKey = false;
            return (true, false, false, null);
        }

        if (!parent.IsMapping)
        {
            var equals = text?.IndexOf('=', StringComparison.Ordinal) ?? -1;
            var name = parent.IsEnv && equals > 0 ? text![..equals] : null;
            var secretItem = name is not null && ProfileSecrets.IsSecretKey(name);
            return (false, parent.SecretInside || secretItem, false, secretItem ? name : null);
        }

        parent.ExpectKey = true;
        var secretKey = parent.Key is { } key && ProfileSecrets.IsSecretKey(key);
        if (parent.Anchored is not null && secretKey)
        {
            parent.SecretEntryFrom = parent.Anchored.Values.Count;
        }

        return (false, parent.SecretInside || (parent.IsEnv && secretKey), parent.Key == "env", null);
    }

    /// <summary>A node ended: an anchored mapping whose secret-looking entry it was keeps that entry's spans.</summary>
    private void Leave()
    {
        if (_open.Count > 0 && _open[^1] is { Anchored: { } anchored, SecretEntryFrom: >= 0 } parent)
        {
            anchored.SecretValues.AddRange(anchored.Values.Skip(parent.SecretEntryFrom));
            parent.SecretEntryFrom = -1;
        }
    }

    private void Hide(List<Span> spans)
    {
        foreach (var span in spans)
        {
            _found[span.Start] = span;
        }
    }

    /// <summary>Every anchored node still open holds these values, for the aliases of it that come later.</summary>
    private void Collect(List<Span> spans)
    {
        foreach (var frame in _open)
        {
            frame.Anchored?.Values.AddRange(spans);
        }
    }

    /// <summary>
    /// The text of a scalar's value (after its anchor and tag), and what replaces it: the mask, plus the line break a
    /// block scalar ends with, so the next key keeps its line. Null for an empty value: there is nothing to hide.
    /// </summary>
    private Span? SpanOf(Scalar scalar)
    {
        var start = (int)Math.Clamp(scalar.Start.Index, 0, _yaml.Length);
        var end = (int)Math.Clamp(scalar.End.Index, start, _yaml.Length);
        while (start < end && _yaml[start] is '&' or '!')
        {
            while (start < end && !char.IsWhiteSpace(_yaml[start]))
            {
                start++;
            }

            while (start < end && char.IsWhiteSpace(_yaml[start]))
            {
                start++;
            }
        }

        if (start >= end)
        {
            return null;
        }

        var replacement = ProfileSecrets.Mask;
        if (scalar.Style is YamlDotNet.Core.ScalarStyle.Literal or YamlDotNet.Core.ScalarStyle.Folded && _yaml[end - 1] == '\n')
        {
            replacement += end - start >= 2 && _yaml[end - 2] == '\r' ? "\r\n" : "\n";
        }

        return new Span(start, end, replacement);
    }

    /// <summary>Text from <paramref name="Start"/> up to <paramref name="End"/> (exclusive), and what replaces it.</summary>
    public sealed record Span(int Start, int End, string Replacement);

    /// <summary>What an alias repeats: the spans of all its values, and those of its secret-looking entries.</summary>
    private sealed record Anchored(List<Span> Values, List<Span> SecretValues);

    /// <summary>A mapping or sequence not yet ended.</summary>
    private sealed class Frame(bool isMapping, bool isEnv, bool secretInside, string? anchor, Anchored? anchored)
    {
        public bool IsMapping { get; } = isMapping;

        /// <summary>The value of an <c>env</c> key: its secret-looking entries (or NAME=value items) are hidden.</summary>
        public bool IsEnv { get; } = isEnv;

        /// <summary>Inside the value of a secret: every value is hidden.</summary>
        public bool SecretInside { get; } = secretInside;

        public string? Anchor { get; } = anchor;

        public Anchored? Anchored { get; } = anchored;

        public bool ExpectKey { get; set; } = true;

        public string? Key { get; set; }

        public int SecretEntryFrom { get; set; } = -1;

        public int Claim { get; init; }
    }
}
