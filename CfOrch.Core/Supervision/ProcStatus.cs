using System.Globalization;

namespace CfOrch.Core.Supervision;

/// <summary>
/// The few fields of /proc/{pid}/stat that supervision needs: state (field 3), process group (field 5) and start time
/// (field 22, clock ticks since boot, which with the PID tells a process from a later one that reuses its PID).
/// </summary>
internal readonly record struct ProcStatus(char State, int ProcessGroup, long StartTime)
{
    public bool IsZombie => State is 'Z' or 'X';

    /// <summary>/proc/{pid}/stat parsed; null when the process is gone or its stat cannot be read.</summary>
    public static ProcStatus? Read(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            return Parse(File.ReadAllText($"/proc/{pid}/stat"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Parses one stat line; the command name (field 2) may hold spaces and parentheses, so fields start after the last ')'.</summary>
    public static ProcStatus? Parse(string stat)
    {
        var end = stat.LastIndexOf(')');
        if (end < 0)
        {
            return null;
        }

        // After ") ": [0] state, [1] ppid, [2] pgrp, … [19] starttime.
        var fields = stat[(end + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 19
               && fields[0].Length == 1
               && int.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pgrp)
               && long.TryParse(fields[19], NumberStyles.Integer, CultureInfo.InvariantCulture, out var start)
            ? new ProcStatus(fields[0][0], pgrp, start)
            : null;
    }

    /// <summary>
    /// True while a process of group <paramref name="pgid"/> is still running. Zombies do not count: an orphan whose new
    /// parent never reaps it (cf-orch as PID 1 of a container) stays a zombie but holds nothing.
    /// </summary>
    public static bool GroupRunning(int pgid)
    {
        if (!Signals.GroupExists(pgid))
        {
            return false;
        }

        try
        {
            foreach (var directory in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                    && Read(pid) is { IsZombie: false } status
                    && status.ProcessGroup == pgid)
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // No /proc to look into: trust kill(-pgid, 0).
            return true;
        }
    }

    /// <summary>When the process started, from its start time and the boot time in /proc/stat; null when unknown.</summary>
    public static DateTimeOffset? StartedAt(long startTimeTicks)
    {
        try
        {
            var bootLine = File.ReadLines("/proc/stat").FirstOrDefault(l => l.StartsWith("btime ", StringComparison.Ordinal));
            if (bootLine is null || !long.TryParse(bootLine.AsSpan(6).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var bootSeconds))
            {
                return null;
            }

            // /proc reports clock_t in USER_HZ, which is 100 on every architecture Linux runs .NET on.
            return DateTimeOffset.FromUnixTimeSeconds(bootSeconds).AddSeconds(startTimeTicks / 100.0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
