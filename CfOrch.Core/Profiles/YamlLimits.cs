using System.Text;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Bounds on the shape of profile YAML, so that reading any document the size cap lets through is cheap (well under
/// 100 ms), whoever sends it. They are checked event by event while YamlDotNet parses (see <see cref="LimitedParser"/>),
/// so a document stops at the first event that crosses one, before the expensive part: YamlDotNet's scanner is
/// quadratic in the depth of flow nesting (<c>[[[[…</c>: 8,000 levels, 16 KB, took ~80 ms), and loading into a tree
/// recurses once per level (some 40,000 levels overflow the stack, which ends the process). Aliases must repeat a node
/// written before them: YamlDotNet accepts an alias before its anchor, and <c>*x : &amp;x y</c> (9 bytes) overflows
/// the stack too.
/// </summary>
public static class YamlLimits
{
    /// <summary>
    /// The deepest nesting of mappings and sequences; an alias counts with the depth of the node it repeats. The
    /// deepest real profile nests 6 levels (<c>services.x.managed.env.NAME</c>); 32 leaves room for any layout.
    /// </summary>
    public const int MaxDepth = 32;

    /// <summary>
    /// The most nodes (keys, values, mappings and sequences) a document may have, counting each alias as every node
    /// it repeats, so that anchors which expand exponentially ("billion laughs") stop here. A real profile has fewer
    /// than 3,000, shared env blocks repeated by alias included.
    /// </summary>
    public const int MaxNodes = 20_000;

    /// <summary>
    /// The longest scalar (a key or a value), in characters. The longest values of a profile are command templates
    /// and env values of a few hundred characters; 32 KiB still fits a certificate or a long prompt in an env value.
    /// </summary>
    public const int MaxScalarLength = 32 * 1024;

    /// <summary>The error for a document over <see cref="ProfileParser.MaxFileBytes"/>, or null when it is not.</summary>
    internal static ProfileError? CheckSize(string yaml, string file) =>
        yaml.Length > ProfileParser.MaxFileBytes || Encoding.UTF8.GetByteCount(yaml) > ProfileParser.MaxFileBytes
            ? new ProfileError(file, 1, 1, "", TooLargeMessage)
            : null;

    /// <summary>What is said of a file over <see cref="ProfileParser.MaxFileBytes"/>.</summary>
    internal static string TooLargeMessage => $"the file is larger than {ProfileParser.MaxFileBytes / 1024} KiB; a profile is a short YAML file";
}
