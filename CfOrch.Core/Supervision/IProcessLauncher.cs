namespace CfOrch.Core.Supervision;

/// <summary>Starts service processes, or attaches to ones an earlier run of cf-orch started. The seam tests fake.</summary>
public interface IProcessLauncher
{
    /// <summary>
    /// Starts the program (never through a shell) in its own process group; stdout and stderr go line by line into
    /// <see cref="IManagedProcess.Output"/>.
    /// </summary>
    /// <exception cref="ProcessLaunchException">The spec cannot be launched; the message says why.</exception>
    IManagedProcess Start(ProcessLaunchSpec spec);

    /// <summary>
    /// Attaches to a process this app started in an earlier run (after a restart): no output, and its exit is noticed
    /// by polling.
    /// </summary>
    IManagedProcess Attach(int pid, string displayName);
}
