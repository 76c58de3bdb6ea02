using System.Runtime.InteropServices;

namespace CfOrch.Core.Supervision;

/// <summary>
/// POSIX signals through libc. Never signals PID 0 or a negative PID (kill(0) is this process's own group, kill(-1)
/// every process the user may signal), nor this process's own group.
/// </summary>
public static partial class Signals
{
    public const int SigTerm = 15, SigKill = 9;

    private const int Eperm = 1;

    /// <summary>kill(pid, signal); false when it failed or <paramref name="pid"/> is not positive.</summary>
    public static bool Send(int pid, int signal) => pid > 0 && Kill(pid, signal) == 0;

    /// <summary>kill(-pgid, signal): every process of the group; false when it failed or there is no such group.</summary>
    public static bool SendToGroup(int pgid, int signal) => IsForeignGroup(pgid) && Kill(-pgid, signal) == 0;

    /// <summary>True when the process exists (a zombie too), even when it belongs to another user; false for 0 and negatives.</summary>
    public static bool IsAlive(int pid) => pid > 0 && (Kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() == Eperm);

    /// <summary>True when any process (a zombie too) is still in the process group <paramref name="pgid"/>.</summary>
    internal static bool GroupExists(int pgid) =>
        IsForeignGroup(pgid) && (Kill(-pgid, 0) == 0 || Marshal.GetLastPInvokeError() == Eperm);

    private static bool IsForeignGroup(int pgid) => pgid > 1 && pgid != GetProcessGroup();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "getpgrp")]
    private static partial int GetProcessGroup();
}
