namespace CfOrch.Core.Supervision;

/// <summary>A running (or exited) service process that cf-orch started or attached to.</summary>
public interface IManagedProcess : IAsyncDisposable
{
    int Pid { get; }

    /// <summary>True when the process leads its own process group (stop signals the whole group: its children too).</summary>
    bool OwnProcessGroup { get; }

    DateTimeOffset StartedAt { get; }

    /// <summary>Completes the moment the process exits, with its exit code (null when unknown, e.g. an attached process).</summary>
    Task<int?> Exited { get; }

    LogRing Output { get; }

    /// <summary>
    /// SIGTERM to the process group, wait up to <paramref name="grace"/>, then SIGKILL to the group; completes when the
    /// process has exited (and the group is gone). Safe to call twice and after exit. Cancelling
    /// <paramref name="cancellationToken"/> stops the waiting, not the stop.
    /// </summary>
    Task StopAsync(TimeSpan grace, CancellationToken cancellationToken);
}
