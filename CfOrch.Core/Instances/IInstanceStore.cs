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

/// <summary>Where managed instances are persisted (SQLite in the app). Writes must not block the caller.</summary>
public interface IInstanceStore
{
    Task<IReadOnlyList<ManagedInstanceRecord>> LoadAsync(CancellationToken cancellationToken);

    void Save(ManagedInstanceRecord record);

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

    public void Save(ManagedInstanceRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_lock)
        {
            _records[record.Key] = record;
        }
    }

    public void Remove(InstanceKey key)
    {
        lock (_lock)
        {
            _records.Remove(key);
        }
    }
}
