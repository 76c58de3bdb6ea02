namespace CfOrch.Core.Profiles;

/// <summary>
/// Which node an anchor name stands for while events stream by. YAML lets a name be used again; an alias then
/// repeats the node whose anchor was written last, even when an earlier node of that name (one that contains it)
/// ends later. Each node that takes a name gets a claim number; only the latest claim's node may define the name.
/// </summary>
internal sealed class AnchorClaims
{
    private readonly Dictionary<string, int> _latest = new(StringComparer.Ordinal);

    /// <summary>A node takes the name; returns its claim.</summary>
    public int Claim(string name)
    {
        var claim = _latest.GetValueOrDefault(name) + 1;
        _latest[name] = claim;
        return claim;
    }

    /// <summary>Whether the node with this claim is still the one the name stands for.</summary>
    public bool Holds(string name, int claim) => _latest.GetValueOrDefault(name) == claim;

    public void Clear() => _latest.Clear();
}
