namespace CfOrch.Web.Data;

/// <summary>
/// Whether cf-orch can write its database now. A write that fails (disk full, read-only, I/O error, corruption) makes it
/// unhealthy — /healthz answers 503, /api/health says why, every dashboard page shows it — until a write succeeds again.
/// Scheduling goes on meanwhile; history waits in a bounded queue and is retried.
/// </summary>
public sealed class StorageHealth(TimeProvider time)
{
    private readonly Lock _lock = new();
    private (bool Ok, string? Detail, DateTimeOffset? Since) _state = (true, null, null);
    private long _writeFailures;
    private long _dropped;

    public event Action? Changed;

    public bool Ok
    {
        get
        {
            lock (_lock)
            {
                return _state.Ok;
            }
        }
    }

    /// <summary>Why storage is failing, and since when (null while it is fine).</summary>
    public (string Detail, DateTimeOffset Since)? Problem
    {
        get
        {
            lock (_lock)
            {
                return _state is { Ok: false, Detail: { } detail, Since: { } since } ? (detail, since) : null;
            }
        }
    }

    /// <summary>Writes to the database that failed since start-up (<c>cf_orch_history_write_failures_total</c>).</summary>
    public long WriteFailures => Interlocked.Read(ref _writeFailures);

    /// <summary>History events dropped because the queue was full while storage failed (<c>cf_orch_history_dropped_total</c>).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void WriteFailed(string detail)
    {
        Interlocked.Increment(ref _writeFailures);
        bool changed;
        lock (_lock)
        {
            changed = _state.Ok || _state.Detail != detail;
            _state = (false, detail, _state.Since ?? time.GetUtcNow());
        }

        if (changed)
        {
            Changed?.Invoke();
        }
    }

    public void WriteSucceeded()
    {
        bool changed;
        lock (_lock)
        {
            changed = !_state.Ok;
            _state = (true, null, null);
        }

        if (changed)
        {
            Changed?.Invoke();
        }
    }

    public void EventDropped() => Interlocked.Increment(ref _dropped);
}
