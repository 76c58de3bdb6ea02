using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// Starts services without a shell, each in its own process group through <c>setsid</c> (util-linux): a .NET child
/// is not a group leader, so setsid calls setsid() and execs the program in place, and the PID the runtime reports is
/// the service's PID and its process group id. Without setsid on PATH, programs start directly in cf-orch's group.
/// </summary>
public sealed class ProcessLauncher : IProcessLauncher
{
    /// <summary>Lines of output kept per process.</summary>
    public const int OutputCapacity = 2000;

    private readonly TimeProvider _time;
    private readonly ILogger<ProcessLauncher> _logger;
    private readonly string? _setsid;

    public ProcessLauncher(TimeProvider time, ILogger<ProcessLauncher> logger)
        : this(time, logger, Executables.FindOnPath("setsid") ?? (File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : null))
    {
    }

    /// <summary>With <paramref name="setsidPath"/> null, programs start directly, in this process's group.</summary>
    internal ProcessLauncher(TimeProvider time, ILogger<ProcessLauncher> logger, string? setsidPath)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _time = time;
        _logger = logger;
        _setsid = setsidPath;
        if (setsidPath is null)
        {
            SupervisionLog.NoSetsid(logger);
        }
    }

    /// <inheritdoc />
    public IManagedProcess Start(ProcessLaunchSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var workingDirectory = string.IsNullOrEmpty(spec.WorkingDirectory) ? null : spec.WorkingDirectory;
        CheckWorkingDirectory(workingDirectory);
        var execPath = CheckExecPath(spec.ExecPath, workingDirectory);

        var info = new ProcessStartInfo
        {
            FileName = _setsid ?? execPath,
            WorkingDirectory = workingDirectory ?? "",
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (_setsid is not null)
        {
            // execPath is absolute, so setsid cannot take it for an option.
            info.ArgumentList.Add(execPath);
        }

        foreach (var argument in spec.Arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // ProcessStartInfo.Environment starts as a copy of this process's environment.
        foreach (var (name, value) in spec.Environment)
        {
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
            {
                throw new ProcessLaunchException($"environment variable name '{name}' is not valid");
            }

            info.Environment[name] = value;
        }

        StartedProcess process;
        try
        {
            process = StartedProcess.Start(info, spec.DisplayName, _setsid is not null, new LogRing(OutputCapacity, _time), _time, _logger);
        }
        catch (Win32Exception ex)
        {
            throw new ProcessLaunchException($"exec_path {execPath} could not be started: {ex.Message}", ex);
        }

        SupervisionLog.Started(_logger, spec.DisplayName, process.Pid, execPath, process.OwnProcessGroup);
        return process;
    }

    /// <inheritdoc />
    public IManagedProcess Attach(int pid, string displayName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        var status = ProcStatus.Read(pid);
        var startedAt = status is { } s ? ProcStatus.StartedAt(s.StartTime) : null;
        return new AttachedProcess(pid, displayName, status, startedAt ?? _time.GetUtcNow(), new LogRing(OutputCapacity, _time), _time, _logger);
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
