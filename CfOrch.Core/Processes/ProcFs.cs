using System.Globalization;
using System.IO.Enumeration;

namespace CfOrch.Core.Processes;

/// <summary>
/// Small reads of /proc. Best effort: a process that is gone, or in another PID namespace, has no name, no parent
/// and no start time, and a process that disappears in the middle of a walk is left out, never an exception.
/// </summary>
public static class ProcFs
{
    private const string Root = "/proc";
    private static readonly string[] TcpTables = ["/proc/net/tcp", "/proc/net/tcp6"];

    private static readonly EnumerationOptions PidDirectories = new()
    {
        IgnoreInaccessible = true,
        AttributesToSkip = FileAttributes.None,
        RecurseSubdirectories = false,
    };

    public static string? ProcessName(int pid)
    {
        try
        {
            var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            return comm.Length == 0 ? null : comm;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The value of one variable of a process's environment (/proc/{pid}/environ), or null when unset or unreadable.</summary>
    public static string? EnvironmentVariable(int pid, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var environ = TryReadAllText($"/proc/{pid}/environ");
        if (environ is null)
            return null;
        var prefix = name + "=";
        foreach (var entry in environ.Split('\0'))
        {
            if (entry.StartsWith(prefix, StringComparison.Ordinal))
                return entry[prefix.Length..];
        }

        return null;
    }

    /// <summary>The effective user id a process runs as (the Uid line of /proc/{pid}/status), or null when unreadable.</summary>
    public static int? EffectiveUid(int pid)
    {
        var line = TryReadAllText($"/proc/{pid}/status")?.Split('\n').FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        var fields = line?["Uid:".Length..].Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: >= 2 } && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var uid) ? uid : null;
    }

    /// <summary>The executable a process runs (the target of /proc/{pid}/exe), or null when unreadable.</summary>
    public static string? Executable(int pid) => ReadLink($"/proc/{pid}/exe");

    /// <summary>Who listens on <paramref name="port"/>, in words: "PID 123 (ollama)" each (<see cref="ListeningPids"/>).</summary>
    public static IReadOnlyList<string> ListenersOf(int port) =>
        ListeningPids(port).Select(pid => $"PID {pid} ({ProcessName(pid) ?? "unknown"})").ToList();

    /// <summary>
    /// PIDs that hold a TCP socket in LISTEN state on <paramref name="port"/> (IPv4 or IPv6, any local address), found
    /// by matching the socket inodes of /proc/net/tcp and /proc/net/tcp6 with the socket:[inode] links in
    /// /proc/*/fd. Processes whose fd directory cannot be read (other users) are skipped. Empty when none or when
    /// /proc is unavailable. Sorted, distinct.
    /// </summary>
    public static IReadOnlyList<int> ListeningPids(int port)
    {
        if (port is <= 0 or > 65535)
            return [];

        var inodes = new HashSet<long>();
        foreach (var table in TcpTables)
        {
            if (TryReadAllText(table) is { } text)
                ProcNetTcp.AddListeningInodes(text, port, inodes);
        }

        if (inodes.Count == 0)
            return [];

        var pids = new List<int>();
        foreach (var pid in AllPids())
        {
            if (HoldsAnySocket(pid, inodes))
                pids.Add(pid);
        }

        pids.Sort();
        return pids;
    }

    /// <summary>
    /// Every descendant of <paramref name="pid"/> (children, grandchildren, …) from the PPid of /proc/*/stat, sorted;
    /// not including <paramref name="pid"/>. Zombies that their parent has not reaped yet are descendants too.
    /// </summary>
    public static IReadOnlyList<int> Descendants(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var candidate in AllPids())
        {
            if (ReadStat(candidate) is not { } stat)
                continue;
            if (!children.TryGetValue(stat.ParentPid, out var siblings))
                children[stat.ParentPid] = siblings = [];
            siblings.Add(candidate);
        }

        // The walk is not one atomic snapshot: a PID reused mid-walk could close a cycle, hence `seen`.
        var found = new List<int>();
        var seen = new HashSet<int> { pid };
        var queue = new Queue<int>();
        queue.Enqueue(pid);
        while (queue.TryDequeue(out var parent))
        {
            if (!children.TryGetValue(parent, out var kids))
                continue;
            foreach (var kid in kids)
            {
                if (seen.Add(kid))
                {
                    found.Add(kid);
                    queue.Enqueue(kid);
                }
            }
        }

        found.Sort();
        return found;
    }

    /// <summary>
    /// Whether <paramref name="pid"/> descends from <paramref name="ancestor"/>, read up its parents (PPid of
    /// /proc/{pid}/stat): a few reads, where <see cref="Descendants"/> reads every process on the machine.
    /// </summary>
    public static bool DescendsFrom(int pid, int ancestor)
    {
        // Bounded: a PID reused mid-walk could close a cycle.
        for (var (current, steps) = (pid, 0); current > 1 && steps < 256; steps++)
        {
            if (ReadStat(current) is not { } stat)
                return false;
            if (stat.ParentPid == ancestor)
                return true;
            current = stat.ParentPid;
        }

        return false;
    }

    /// <summary><paramref name="pid"/> and its descendants, sorted. <paramref name="pid"/> is included even when it has exited.</summary>
    public static IReadOnlyList<int> ProcessTree(int pid)
    {
        List<int> tree = [pid, .. Descendants(pid)];
        tree.Sort();
        return tree;
    }

    /// <summary>
    /// Every process in the cgroup of <paramref name="pid"/> and the cgroups below it, sorted: a container's processes,
    /// those started with <c>docker exec</c> too (they are not its init's descendants). Null when that cgroup cannot be
    /// read here, or is a root (a process in no cgroup of its own: that would be every process).
    /// </summary>
    public static IReadOnlyList<int>? CgroupProcesses(int pid) => CgroupProcesses(pid, Root, "/sys/fs/cgroup");

    /// <summary>
    /// <see cref="CgroupProcesses(int)"/> with /proc at <paramref name="procRoot"/> and the cgroup file systems at
    /// <paramref name="cgroupRoot"/> (instead of /proc and /sys/fs/cgroup).
    /// </summary>
    public static IReadOnlyList<int>? CgroupProcesses(int pid, string procRoot, string cgroupRoot)
    {
        ArgumentNullException.ThrowIfNull(procRoot);
        return TryReadAllText($"{procRoot}/{pid}/cgroup") is { } cgroups ? CgroupProcesses(cgroups, pid, cgroupRoot) : null;
    }

    /// <summary>
    /// <see cref="CgroupProcesses(int)"/> from the text of /proc/{pid}/cgroup and the cgroup file systems under
    /// <paramref name="root"/>. Where v1 controllers are mounted (<c>N:controllers:/path</c> lines: pure v1, or a hybrid
    /// machine), their hierarchies come first, each under its controller's directory; the v2 line (<c>0::/path</c>) is
    /// then used only when it names the same cgroup as a v1 line — on a hybrid machine whose Docker uses cgroupfs, it is
    /// the shim's service cgroup (<c>0::/system.slice/containerd.service</c>), which holds every container's init. On pure
    /// v2 the <c>0::</c> line is the cgroup, at the root. A path outside this process's cgroup namespace
    /// (<c>0::/../docker-abc.scope</c>: cf-orch in a container with a private cgroup namespace, the default on v2, and the
    /// host's <c>/sys/fs/cgroup</c> mounted) is found in the hierarchy by what follows its last <c>..</c>. A directory counts
    /// only when <paramref name="pid"/> is in it.
    /// </summary>
    public static IReadOnlyList<int>? CgroupProcesses(string cgroups, int pid, string root)
    {
        ArgumentNullException.ThrowIfNull(cgroups);
        ArgumentNullException.ThrowIfNull(root);
        var lines = cgroups.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(':', 3))
            .Where(parts => parts.Length == 3)
            .Select(parts => (Controllers: parts[1], Path: parts[2]))
            .ToList();
        var v1 = lines.Where(l => l.Controllers.Length > 0).ToList();
        var v2 = lines.Where(l => l.Controllers.Length == 0 && (v1.Count == 0 || v1.Any(c => c.Path == l.Path)));
        foreach (var (controllers, path) in v1.Concat(v2))
        {
            // "/" is a root (a process in no cgroup of its own); so is "/.." with nothing after it, seen from a namespace.
            var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            var up = Array.LastIndexOf(segments, "..");
            if (!path.StartsWith('/') || segments.Length == up + 1)
            {
                continue;
            }

            string[] hierarchies = controllers.Length == 0
                ? [v1.Count == 0 ? root : $"{root}/unified"]
                : [.. controllers.Split(',').Select(c => $"{root}/{(c.StartsWith("name=", StringComparison.Ordinal) ? c[5..] : c)}"), $"{root}/{controllers}"];
            var below = "/" + string.Join('/', segments[(up + 1)..]);
            var directories = up < 0
                ? hierarchies.Select(h => h + below)
                : hierarchies.SelectMany(h => CgroupsEndingWith(h, below));
            foreach (var directory in directories)
            {
                if (ReadCgroupProcs(directory) is { } pids && pids.Contains(pid))
                {
                    pids.Sort();
                    return pids;
                }
            }
        }

        return null;
    }

    /// <summary>The cgroups of <paramref name="hierarchy"/> whose path ends with <paramref name="below"/> (<c>/docker-abc.scope</c>); none when it cannot be read.</summary>
    private static List<string> CgroupsEndingWith(string hierarchy, string below)
    {
        if (!Directory.Exists(hierarchy))
        {
            return [];
        }

        try
        {
            return Directory.EnumerateDirectories(hierarchy, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.None })
                .Where(d => d.EndsWith(below, StringComparison.Ordinal))
                .ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The PIDs in cgroup.procs of <paramref name="directory"/> and of every cgroup below it, or null when it cannot be read.</summary>
    private static List<int>? ReadCgroupProcs(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return null;
        }

        try
        {
            var pids = new HashSet<int>();
            foreach (var file in Directory.EnumerateFiles(directory, "cgroup.procs", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            {
                foreach (var line in TryReadAllText(file)?.Split('\n', StringSplitOptions.RemoveEmptyEntries) ?? [])
                {
                    if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    {
                        pids.Add(pid);
                    }
                }
            }

            return [.. pids];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Field 22 (starttime, clock ticks since boot) of /proc/{pid}/stat, or null when the process does not exist.
    /// With the PID it identifies a process across PID reuse.
    /// </summary>
    public static long? StartTime(int pid) => ReadStat(pid)?.StartTime;

    /// <summary>Field 4 (ppid) of /proc/{pid}/stat, or null when the process does not exist.</summary>
    public static int? ParentPid(int pid) => ReadStat(pid)?.ParentPid;

    /// <summary>Field 5 (pgrp) of /proc/{pid}/stat, or null when the process does not exist.</summary>
    public static int? ProcessGroup(int pid) => ReadStat(pid)?.ProcessGroup;

    /// <summary>
    /// True when /proc/{pid} exists and the process is not a zombie (state 'Z', or 'X' dead, in field 3). A process
    /// whose stat another user may not read (hidepid) counts as running while its /proc directory exists.
    /// </summary>
    public static bool IsRunning(int pid)
    {
        if (pid <= 0)
            return false;
        try
        {
            return ProcStat.Parse(File.ReadAllText($"/proc/{pid}/stat")) is { State: not ('Z' or 'X') };
        }
        catch (UnauthorizedAccessException)
        {
            return Directory.Exists($"/proc/{pid}");
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// The processes of a service on this machine: the tree under <paramref name="pid"/> while it runs, else the trees of
    /// whatever listens on the port of <paramref name="url"/> (when that is a loopback address); empty otherwise.
    /// </summary>
    public static IReadOnlyList<int> ServiceProcesses(int? pid, string url)
    {
        if (pid is { } p && IsRunning(p))
            return ProcessTree(p);
        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.IsLoopback
            ? ListeningPids(uri.Port).SelectMany(ProcessTree).Distinct().Order().ToList()
            : [];
    }

    /// <summary>/proc/{pid}/stat parsed, or null when the process is gone or its stat cannot be read.</summary>
    internal static ProcStat? ReadStat(int pid) =>
        pid > 0 && TryReadAllText($"/proc/{pid}/stat") is { } line ? ProcStat.Parse(line) : null;

    /// <summary>
    /// Whether a process of group <paramref name="pgid"/> runs (zombies do not count: an orphan whose new parent never
    /// reaps it, cf-orch as PID 1 of a container, stays a zombie but holds nothing); null when /proc cannot be read.
    /// </summary>
    public static bool? AnyRunningInGroup(int pgid)
    {
        // /proc that cannot be listed says nothing: the caller trusts kill(-pgid, 0) instead.
        return TryAllPids()?.Any(pid => ReadStat(pid) is { IsZombie: false } stat && stat.ProcessGroup == pgid);
    }

    /// <summary>When a process started, from its start time (field 22, clock ticks since boot) and the boot time in /proc/stat; null when unknown.</summary>
    public static DateTimeOffset? StartedAt(long startTimeTicks)
    {
        var bootLine = TryReadAllText("/proc/stat")?.Split('\n').FirstOrDefault(l => l.StartsWith("btime ", StringComparison.Ordinal));
        if (bootLine is null || !long.TryParse(bootLine.AsSpan(6).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var bootSeconds))
            return null;

        // /proc reports clock_t in USER_HZ, which is 100 on every architecture Linux runs .NET on.
        return DateTimeOffset.FromUnixTimeSeconds(bootSeconds).AddSeconds(startTimeTicks / 100.0);
    }

    /// <summary>The processes (those this user may read) whose environment carries <paramref name="name"/>, with its value.</summary>
    public static IReadOnlyList<(int Pid, string Value)> WithEnvironmentVariable(string name)
    {
        var found = new List<(int, string)>();
        foreach (var pid in AllPids())
        {
            if (EnvironmentVariable(pid, name) is { } value)
            {
                found.Add((pid, value));
            }
        }

        return found;
    }

    /// <summary>The PIDs of /proc (processes, not threads), in directory order; empty when /proc is unavailable.</summary>
    private static List<int> AllPids() => TryAllPids() ?? [];

    /// <summary>The PIDs of /proc, or null when it cannot be listed.</summary>
    private static List<int>? TryAllPids()
    {
        try
        {
            var pids = new FileSystemEnumerable<int>(
                Root,
                (ref entry) => int.Parse(entry.FileName, NumberStyles.None, CultureInfo.InvariantCulture),
                PidDirectories)
            {
                ShouldIncludePredicate = (ref entry) =>
                    entry.IsDirectory && int.TryParse(entry.FileName, NumberStyles.None, CultureInfo.InvariantCulture, out _),
            };
            return [.. pids];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether one of /proc/{pid}/fd's links points at socket:[inode] for an inode of <paramref name="inodes"/>.</summary>
    private static bool HoldsAnySocket(int pid, HashSet<long> inodes)
    {
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                if (ReadLink(fd) is { } target
                    && ProcNetTcp.TryParseSocketInode(target, out var inode)
                    && inodes.Contains(inode))
                {
                    return true;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Another user's process (no permission), or one that exited while we looked.
        }

        return false;
    }

    /// <summary>The raw target of a symbolic link, or null when it is gone (an fd closed mid-walk) or unreadable.</summary>
    private static string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? TryReadAllText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
