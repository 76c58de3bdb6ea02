using CfOrch.Core.Instances;

namespace CfOrch.Core.Instances;

/// <summary>A managed instance as persisted, so that a restarted cf-orch re-attaches to it instead of starting it twice.</summary>
public sealed record ManagedInstanceRecord(
    InstanceKey Key,
    int Pid,
    long? ProcessStartTime,
    string Url,
    string HealthPath,
    string? Model,
    long BudgetMb,
    DateTimeOffset StartedAt);

/// <summary>Where managed instances are persisted (SQLite in the app).</summary>
public interface IInstanceStore
{
    Task<IReadOnlyList<ManagedInstanceRecord>> LoadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Records a started process durably: the task completes once the record is written, and fails when it cannot be
    /// (then the start must not be reported: a restarted cf-orch could not re-attach, and the process would be orphaned).
    /// </summary>
    Task SaveAsync(ManagedInstanceRecord record, CancellationToken cancellationToken);

    /// <summary>Forgets a record (the process ended); does not block the caller.</summary>
    void Remove(InstanceKey key);
}

/// <summary>Keeps records in memory only (unit tests, or Core without persistence).</summary>
public sealed class InMemoryInstanceStore : IInstanceStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<InstanceKey, ManagedInstanceRecord> _records = [];

    public Task<IReadOnlyList<ManagedInstanceRecord>> LoadAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<ManagedInstanceRecord>>(_records.Values.ToList());
        }
    }

    public Task SaveAsync(ManagedInstanceRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_lock)
        {
            _records[record.Key] = record;
        }

        return Task.CompletedTask;
    }

    public void Remove(InstanceKey key)
    {
        lock (_lock)
        {
            _records.Remove(key);
        }
    }
}
