namespace CfOrch.Core.Supervision;

/// <summary>Starts service processes, or attaches to ones an earlier run of cf-orch started. The seam tests fake.</summary>
public interface IProcessLauncher
{
    /// <summary>
    /// Starts the program (never through a shell) in its own session and process group; stdout and stderr are appended
    /// to its log files, and followed line by line into <see cref="IManagedProcess.Output"/>.
    /// </summary>
    /// <exception cref="ProcessLaunchException">The spec cannot be launched; the message says why.</exception>
    IManagedProcess Start(ProcessLaunchSpec spec);

    /// <summary>
    /// Attaches to a process this app started in an earlier run (after a restart): its exit is noticed by polling, and
    /// its output is followed again from its log files when <paramref name="logPath"/> is given.
    /// </summary>
    IManagedProcess Attach(int pid, string displayName, string? logPath = null);
}
