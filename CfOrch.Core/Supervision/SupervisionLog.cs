using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>The log messages of process supervision.</summary>
internal static partial class SupervisionLog
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "{Name}: PID {Pid} started from {ExecPath} (own process group: {OwnGroup})")]
    public static partial void Started(ILogger logger, string name, int pid, string execPath, bool ownGroup);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Name}: attached to PID {Pid} (own process group: {OwnGroup}, running: {Running})")]
    public static partial void Attached(ILogger logger, string name, int pid, bool ownGroup, bool running);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name}: PID {Pid} exited with code {ExitCode}")]
    public static partial void Exited(ILogger logger, string name, int pid, int? exitCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name}: stopping PID {Pid} (SIGTERM to {Target}, {Grace} to exit)")]
    public static partial void Stopping(ILogger logger, string name, int pid, string target, TimeSpan grace);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Name}: PID {Pid} did not stop within {Grace} of SIGTERM; killing it (SIGKILL to {Target})")]
    public static partial void Killing(ILogger logger, string name, int pid, TimeSpan grace, string target);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Name}: PID {Pid} or a process of its group still runs {Wait} after SIGKILL")]
    public static partial void StillRunning(ILogger logger, string name, int pid, TimeSpan wait);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Name}: a subscriber to the output of PID {Pid} failed")]
    public static partial void SubscriberFailed(ILogger logger, Exception exception, string name, int pid);
}
