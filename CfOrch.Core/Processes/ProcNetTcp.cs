using System.Globalization;

namespace CfOrch.Core.Processes;

/// <summary>
/// Parsing of /proc/net/tcp and /proc/net/tcp6 (proc(5)) and of the socket:[inode] targets of /proc/{pid}/fd links.
/// </summary>
internal static class ProcNetTcp
{
    private const string ListenState = "0A";
    private const string SocketPrefix = "socket:[";

    /// <summary>
    /// Adds to <paramref name="inodes"/> the inode of every socket in <paramref name="table"/> (the content of
    /// /proc/net/tcp or tcp6) that is in LISTEN state on <paramref name="port"/>, whatever its local address. The
    /// header and lines that do not parse are skipped.
    /// </summary>
    public static void AddListeningInodes(ReadOnlySpan<char> table, int port, ISet<long> inodes)
    {
        foreach (var line in table.EnumerateLines())
        {
            if (TryParseListening(line, out var localPort, out var inode) && localPort == port)
                inodes.Add(inode);
        }
    }

    /// <summary>The LISTEN sockets' inodes of <paramref name="table"/> on <paramref name="port"/>, sorted and distinct.</summary>
    public static IReadOnlyList<long> ListeningInodes(ReadOnlySpan<char> table, int port)
    {
        var inodes = new SortedSet<long>();
        AddListeningInodes(table, port, inodes);
        return [.. inodes];
    }

    /// <summary>
    /// Reads one table line: <c>sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …</c>.
    /// True only for a socket in LISTEN state with a non-zero inode.
    /// </summary>
    public static bool TryParseListening(ReadOnlySpan<char> line, out int localPort, out long inode)
    {
        localPort = 0;
        inode = 0;

        var rest = line;
        var slot = NextField(ref rest);
        if (slot.Length < 2 || slot[^1] != ':')
            return false;
        var local = NextField(ref rest);
        NextField(ref rest); // rem_address
        if (!NextField(ref rest).SequenceEqual(ListenState))
            return false;
        for (var skipped = 0; skipped < 5; skipped++)
            NextField(ref rest); // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout
        var inodeText = NextField(ref rest);

        var colon = local.LastIndexOf(':');
        return colon > 0
            && int.TryParse(local[(colon + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out localPort)
            && long.TryParse(inodeText, NumberStyles.None, CultureInfo.InvariantCulture, out inode)
            && inode != 0;
    }

    /// <summary>The inode of an fd link's target <c>socket:[123456]</c>; false for pipes, files and anything else.</summary>
    public static bool TryParseSocketInode(ReadOnlySpan<char> linkTarget, out long inode)
    {
        inode = 0;
        return linkTarget.StartsWith(SocketPrefix, StringComparison.Ordinal)
            && linkTarget.Length > SocketPrefix.Length + 1
            && linkTarget[^1] == ']'
            && long.TryParse(linkTarget[SocketPrefix.Length..^1], NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }

    /// <summary>The next whitespace-separated field of <paramref name="rest"/>, which moves past it; empty at the end.</summary>
    private static ReadOnlySpan<char> NextField(ref ReadOnlySpan<char> rest)
    {
        rest = rest.TrimStart();
        var end = rest.IndexOfAny(' ', '\t');
        if (end < 0)
            end = rest.Length;
        var field = rest[..end];
        rest = rest[end..];
        return field;
    }
}
