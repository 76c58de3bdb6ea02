namespace CfOrch.Core.Supervision;

/// <summary>
/// Thrown by <see cref="IProcessLauncher.Start"/> when a spec cannot be launched. The message is one clear sentence
/// for a self-hoster, e.g. "exec_path /opt/x/bin/python does not exist".
/// </summary>
public sealed class ProcessLaunchException : Exception
{
    public ProcessLaunchException()
    {
    }

    public ProcessLaunchException(string message)
        : base(message)
    {
    }

    public ProcessLaunchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
