using YamlDotNet.Core.Events;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Follows a parser's events and reports the first one that crosses a <see cref="YamlLimits"/> bound: nesting too deep,
/// too many nodes (an alias counts as every node it repeats), a scalar too long, or an alias that is not of a node
/// written before it (inside the node it repeats, or before its anchor). Constant work per event; it also knows the
/// key path of the node it was last given.
/// </summary>
internal sealed class YamlShapeCheck
{
    private readonly List<Frame> _open = [];
    private readonly Dictionary<string, Anchored> _anchors = new(StringComparer.Ordinal);
    private readonly AnchorClaims _claims = new();
    private long _nodes;

    /// <summary>The key path of the node last visited, written as the profile parser writes paths.</summary>
    public string Path
    {
        get
        {
            var path = "";
            foreach (var frame in _open)
            {
                path = frame.IsMapping ? YamlMapReader.Join(path, frame.Key) : $"{path}[{frame.Index}]";
            }

            return path;
        }
    }

    /// <summary>Takes the next event; returns why it crosses a limit, or null when it does not.</summary>
    public string? Visit(ParsingEvent e)
    {
        switch (e)
        {
            case DocumentStart:
                _anchors.Clear();
                _claims.Clear();
                return null;
            case Scalar scalar:
                return VisitScalar(scalar);
            case AnchorAlias alias:
                return VisitAlias(alias.Value.Value);
            case MappingStart or SequenceStart:
                return VisitStart((NodeEvent)e, e is MappingStart);
            case MappingEnd or SequenceEnd:
                VisitEnd();
                return null;
            default:
                return null;
        }
    }

    private string? VisitScalar(Scalar scalar)
    {
        Enter(scalar.Value);
        if (scalar.Value.Length > YamlLimits.MaxScalarLength)
        {
            return $"a scalar is longer than {YamlLimits.MaxScalarLength} characters; a profile's keys and values are far shorter";
        }

        if (++_nodes > YamlLimits.MaxNodes)
        {
            return TooManyNodes;
        }

        if (!scalar.Anchor.IsEmpty)
        {
            _claims.Claim(scalar.Anchor.Value);
            _anchors[scalar.Anchor.Value] = new Anchored(1, 0);
        }

        Leave(0);
        return null;
    }

    private string? VisitAlias(string name)
    {
        Enter("*" + name);
        if (!_anchors.TryGetValue(name, out var anchored))
        {
            // YamlDotNet's loader accepts an alias before its anchor, and one such as "*x : &x y" recurses until the
            // stack overflows, which ends the process. YAML allows only aliases of anchors that come before them.
            return _open.Exists(f => f.Anchor == name && _claims.Holds(name, f.Claim))
                ? $"the alias *{name} repeats a node that contains it; a profile cannot contain itself"
                : $"the alias *{name} comes before any anchor &{name}; an alias repeats a node written above it";
        }

        if (_open.Count + anchored.Height > YamlLimits.MaxDepth)
        {
            return $"the alias *{name} nests the YAML deeper than {YamlLimits.MaxDepth} levels; a profile needs far fewer";
        }

        _nodes += anchored.Nodes;
        if (_nodes > YamlLimits.MaxNodes)
        {
            return $"the alias *{name} takes the YAML over {YamlLimits.MaxNodes} nodes (an alias counts as every node it repeats); a profile needs far fewer";
        }

        Leave(anchored.Height);
        return null;
    }

    private string? VisitStart(NodeEvent start, bool isMapping)
    {
        Enter(null);
        if (_open.Count + 1 > YamlLimits.MaxDepth)
        {
            return $"the YAML nests deeper than {YamlLimits.MaxDepth} levels; a profile needs far fewer";
        }

        if (++_nodes > YamlLimits.MaxNodes)
        {
            return TooManyNodes;
        }

        string? anchor = null;
        var claim = 0;
        if (!start.Anchor.IsEmpty)
        {
            // Until it ends, an alias of this name is the node itself (a cycle), not an earlier node of the same name.
            anchor = start.Anchor.Value;
            claim = _claims.Claim(anchor);
            _anchors.Remove(anchor);
        }

        _open.Add(new Frame(isMapping, anchor, _nodes - 1) { Claim = claim });
        return null;
    }

    private void VisitEnd()
    {
        if (_open.Count == 0)
        {
            return;
        }

        var frame = _open[^1];
        _open.RemoveAt(_open.Count - 1);
        var height = frame.Height + 1;
        if (frame.Anchor is not null && _claims.Holds(frame.Anchor, frame.Claim))
        {
            _anchors[frame.Anchor] = new Anchored(_nodes - frame.NodesBefore, height);
        }

        Leave(height);
    }

    private static string TooManyNodes => $"the YAML has more than {YamlLimits.MaxNodes} nodes; a profile needs far fewer";

    /// <summary>A node begins inside the innermost open collection: in a mapping it is a key or a value, in a sequence the next item.</summary>
    private void Enter(string? keyText)
    {
        if (_open.Count == 0)
        {
            return;
        }

        var parent = _open[^1];
        if (!parent.IsMapping)
        {
            parent.Index++;
        }
        else if (parent.ExpectKey)
        {
            parent.Key = keyText ?? "?";
            parent.ExpectKey = false;
        }
        else
        {
            parent.ExpectKey = true;
        }
    }

    /// <summary>A node of <paramref name="height"/> levels ended inside the innermost open collection.</summary>
    private void Leave(int height)
    {
        if (_open.Count > 0 && _open[^1].Height < height)
        {
            _open[^1].Height = height;
        }
    }

    /// <summary>What an alias of an anchor repeats: that many nodes, nesting that many levels.</summary>
    private readonly record struct Anchored(long Nodes, int Height);

    /// <summary>A mapping or sequence not yet ended, with its current key or item index.</summary>
    private sealed class Frame(bool isMapping, string? anchor, long nodesBefore)
    {
        public bool IsMapping { get; } = isMapping;

        public string? Anchor { get; } = anchor;

        public long NodesBefore { get; } = nodesBefore;

        public int Height { get; set; }

        public bool ExpectKey { get; set; } = true;

        public string Key { get; set; } = "";

        public int Index { get; set; } = -1;

        public int Claim { get; init; }
    }
}
