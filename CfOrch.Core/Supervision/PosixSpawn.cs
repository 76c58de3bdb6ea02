using System.Runtime.InteropServices;

namespace CfOrch.Core.Supervision;

/// <summary>
/// posix_spawn(3) through libc: the program starts in a new session (POSIX_SPAWN_SETSID, so it leads its own process
/// group), with every signal at its default disposition and none blocked, stdin from /dev/null and stdout/stderr
/// appended to files. Files, not pipes: a service outlives a restart of cf-orch without dying of SIGPIPE on its
/// next write, and a restarted cf-orch can read its output again. Never through a shell.
/// </summary>
internal static unsafe partial class PosixSpawn
{
    private const short SetSignalDefault = 0x04;
    private const short SetSignalMask = 0x08;
    private const short SetSid = 0x80;
    private const int OpenReadOnly = 0;
    private const int OpenWriteAppendCreate = 0x01 | 0x40 | 0x400;
    private const int LogFileMode = 0x180; // 0600
    private const int Eintr = 4;

    // Opaque glibc structs (80, 336 and 128 bytes on x86_64 and arm64); generous buffers keep them safe elsewhere too.
    private const int FileActionsSize = 256;
    private const int AttributesSize = 1024;
    private const int SignalSetSize = 256;

    /// <summary>Starts the program; returns its PID or throws with errno in words.</summary>
    public static int Spawn(string path, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment, string? workingDirectory, string stdoutPath, string stderrPath)
    {
        var strings = new List<nint>();
        var actions = NativeMemory.AllocZeroed(FileActionsSize);
        var attributes = NativeMemory.AllocZeroed(AttributesSize);
        var signals = NativeMemory.AllocZeroed(SignalSetSize);
        try
        {
            Check(FileActionsInit(actions), "posix_spawn_file_actions_init");
            Check(AttrInit(attributes), "posix_spawnattr_init");
            Check(FileActionsAddOpen(actions, 0, Utf8("/dev/null", strings), OpenReadOnly, 0), "posix_spawn_file_actions_addopen");
            Check(FileActionsAddOpen(actions, 1, Utf8(stdoutPath, strings), OpenWriteAppendCreate, LogFileMode), "posix_spawn_file_actions_addopen");
            Check(FileActionsAddOpen(actions, 2, Utf8(stderrPath, strings), OpenWriteAppendCreate, LogFileMode), "posix_spawn_file_actions_addopen");
            if (!string.IsNullOrEmpty(workingDirectory))
            {
                Check(FileActionsAddChdir(actions, Utf8(workingDirectory, strings)), "posix_spawn_file_actions_addchdir_np");
            }

            Check(AttrSetFlags(attributes, SetSid | SetSignalDefault | SetSignalMask), "posix_spawnattr_setflags");
            Check(SigFillSet(signals), "sigfillset");
            Check(AttrSetSigDefault(attributes, signals), "posix_spawnattr_setsigdefault");
            Check(SigEmptySet(signals), "sigemptyset");
            Check(AttrSetSigMask(attributes, signals), "posix_spawnattr_setsigmask");

            var argv = NullTerminated([path, .. arguments], strings);
            var envp = NullTerminated(environment.Select(e => $"{e.Key}={e.Value}").ToList(), strings);
            int pid;
            var rc = Spawn(&pid, Utf8(path, strings), actions, attributes, argv, envp);
            if (rc != 0)
            {
                throw new ProcessLaunchException($"exec_path {path} could not be started: {Marshal.GetPInvokeErrorMessage(rc)}");
            }

            return pid;
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            _ = AttrDestroy(attributes);
            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(signals);
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    /// <summary>
    /// Blocks until the child exits and reaps it: its exit code, 128 + the signal that killed it, or null when it
    /// could not be waited for (it was not this process's child, or someone else reaped it).
    /// </summary>
    public static int? WaitForExit(int pid)
    {
        while (true)
        {
            int status;
            var rc = WaitPid(pid, &status, 0);
            if (rc == pid)
            {
                var signal = status & 0x7f;
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal;
            }

            if (rc == -1 && Marshal.GetLastPInvokeError() == Eintr)
            {
                continue;
            }

            return null;
        }
    }

    private static void Check(int rc, string function)
    {
        if (rc != 0)
        {
            throw new ProcessLaunchException($"{function} failed: {Marshal.GetPInvokeErrorMessage(rc)}");
        }
    }

    private static byte* Utf8(string value, List<nint> owned)
    {
        var p = Marshal.StringToCoTaskMemUTF8(value);
        owned.Add(p);
        return (byte*)p;
    }

    private static byte** NullTerminated(List<string> values, List<nint> owned)
    {
        var array = (byte**)Marshal.AllocCoTaskMem((values.Count + 1) * sizeof(nint));
        owned.Add((nint)array);
        for (var i = 0; i < values.Count; i++)
        {
            array[i] = Utf8(values[i], owned);
        }

        array[values.Count] = null;
        return array;
    }

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    private static partial int Spawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(void* fileActions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(void* fileActions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static partial int FileActionsAddOpen(void* fileActions, int fd, byte* path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static partial int FileActionsAddChdir(void* fileActions, byte* path);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static partial int AttrInit(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static partial int AttrDestroy(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static partial int AttrSetFlags(void* attributes, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int AttrSetSigDefault(void* attributes, void* signals);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int AttrSetSigMask(void* attributes, void* signals);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    private static partial int SigFillSet(void* signals);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static partial int SigEmptySet(void* signals);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPid(int pid, int* status, int options);
}
