namespace CfOrch.Core.Storage;

/// <summary>
/// Whether cf-orch can write its database now. A write that fails (disk full, read-only, I/O error, corruption) makes it
/// unhealthy — /healthz answers 503, /api/health says why, every dashboard page shows it — until a write succeeds again.
/// Scheduling goes on meanwhile; history waits in a bounded queue and is retried.
/// </summary>
public sealed class StorageHealth(TimeProvider time)
{
    /// <summary>The history writer (lease events, instance records, client leases).</summary>
    public const string History = "history";

    /// <summary>The GPU sample job.</summary>
    public const string Samples = "samples";

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (string Detail, DateTimeOffset Since)> _failing = new(StringComparer.Ordinal);
    private long _writeFailures;
    private long _dropped;

    public event Action? Changed;

    /// <summary>Every writer's last write succeeded.</summary>
    public bool Ok => Problem is null;

    /// <summary>Why storage is failing, and since when (the longest-failing writer's); null while it is fine.</summary>
    public (string Detail, DateTimeOffset Since)? Problem
    {
        get
        {
            lock (_lock)
            {
                return _failing.Count == 0 ? null : _failing.Values.MinBy(f => f.Since);
            }
        }
    }

    /// <summary>Writes to the database that failed since start-up (<c>cf_orch_history_write_failures_total</c>).</summary>
    public long WriteFailures => Interlocked.Read(ref _writeFailures);

    /// <summary>History events dropped because the queue was full while storage failed (<c>cf_orch_history_dropped_total</c>).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>A write of <paramref name="source"/> failed: storage is unhealthy until that writer's next write succeeds.</summary>
    public void WriteFailed(string detail, string source = History)
    {
        Interlocked.Increment(ref _writeFailures);
        bool changed;
        lock (_lock)
        {
            var since = _failing.TryGetValue(source, out var earlier) ? earlier.Since : time.GetUtcNow();
            changed = earlier.Detail != detail;
            _failing[source] = (detail, since);
        }

        if (changed)
        {
            Changed?.Invoke();
        }
    }

    /// <summary>A write of <paramref name="source"/> succeeded: that writer is fine again (another may still fail).</summary>
    public void WriteSucceeded(string source = History)
    {
        bool changed;
        lock (_lock)
        {
            changed = _failing.Remove(source);
        }

        if (changed)
        {
            Changed?.Invoke();
        }
    }

    public void EventDropped() => Interlocked.Increment(ref _dropped);
}
