using CfOrch.Core.Processes;
using CfOrch.Core.Storage;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// Starts services without a shell through posix_spawn: each in a new session (so it leads its own process group and
/// a stop reaches its children too), with default signal dispositions, stdin from /dev/null, and stdout/stderr appended
/// to log files that survive a restart of cf-orch.
/// </summary>
public sealed class ProcessLauncher : IProcessLauncher
{
    /// <summary>Lines of output kept per process.</summary>
    public const int OutputCapacity = 2000;

    /// <summary>How much of a re-attached process's log files is read back.</summary>
    public const long ReattachTailBytes = 256 * 1024;

    private readonly TimeProvider _time;
    private readonly ILogger<ProcessLauncher> _logger;

    public ProcessLauncher(TimeProvider time, ILogger<ProcessLauncher> logger)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _time = time;
        _logger = logger;
    }

    /// <inheritdoc />
    public IManagedProcess Start(ProcessLaunchSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var workingDirectory = string.IsNullOrEmpty(spec.WorkingDirectory) ? null : spec.WorkingDirectory;
        CheckWorkingDirectory(workingDirectory);
        var execPath = CheckExecPath(spec.ExecPath, workingDirectory);
        var environment = Environment.GetEnvironmentVariables()
            .Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        foreach (var (name, value) in spec.Environment)
        {
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
            {
                throw new ProcessLaunchException($"environment variable name '{name}' is not valid");
            }

            environment[name] = value;
        }

        var logPath = spec.LogPath ?? Path.Combine(Path.GetTempPath(), "cf-orch-logs", $"{Guid.NewGuid():N}");
        try
        {
            // A service's output may hold secrets: its logs are 0600 in a 0700 directory.
            PrivateFiles.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);

            // A new run starts with empty logs.
            PrivateFiles.WriteAllBytes(OutputFollower.StdoutPath(logPath), []);
            PrivateFiles.WriteAllBytes(OutputFollower.StderrPath(logPath), []);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ProcessLaunchException($"cannot write the log files {logPath}.*.log: {ex.Message}", ex);
        }

        var pid = PosixSpawn.Spawn(execPath, spec.Arguments, environment, workingDirectory, OutputFollower.StdoutPath(logPath), OutputFollower.StderrPath(logPath));
        var process = SpawnedProcess.Start(pid, spec.DisplayName, logPath, new LogRing(OutputCapacity, _time), _time, _logger);
        SupervisionLog.Started(_logger, spec.DisplayName, process.Pid, execPath, process.OwnProcessGroup);
        return process;
    }

    /// <inheritdoc />
    public IManagedProcess Attach(int pid, string displayName, string? logPath = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        var status = ProcFs.ReadStat(pid);
        var startedAt = status is { } s ? ProcFs.StartedAt(s.StartTime) : null;
        return new AttachedProcess(pid, displayName, status, startedAt ?? _time.GetUtcNow(), new LogRing(OutputCapacity, _time), logPath, _time, _logger);
    }
    private static void CheckWorkingDirectory(string? workingDirectory)
    {
        if (workingDirectory is null || Directory.Exists(workingDirectory))
        {
            return;
        }

        throw new ProcessLaunchException(File.Exists(workingDirectory)
            ? $"cwd {workingDirectory} is not a directory"
            : $"cwd {workingDirectory} does not exist");
    }

    /// <summary>The absolute path of the program to run, or a <see cref="ProcessLaunchException"/> that says what is wrong with it.</summary>
    private static string CheckExecPath(string execPath, string? workingDirectory)
    {
        if (string.IsNullOrWhiteSpace(execPath))
        {
            throw new ProcessLaunchException("exec_path is empty");
        }

        var resolved = Executables.Resolve(execPath, workingDirectory)
            ?? throw new ProcessLaunchException($"exec_path {execPath} does not exist (it is not a path, and PATH has no program of that name)");
        var shown = resolved == execPath ? execPath : $"{execPath} ({resolved})";
        if (Directory.Exists(resolved))
        {
            throw new ProcessLaunchException($"exec_path {shown} is a directory, not a program");
        }

        if (!File.Exists(resolved))
        {
            throw new ProcessLaunchException($"exec_path {shown} does not exist");
        }

        if (!Executables.IsExecutable(resolved))
        {
            throw new ProcessLaunchException($"exec_path {shown} is not executable");
        }

        return resolved;
    }
}
