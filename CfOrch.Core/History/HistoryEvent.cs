namespace CfOrch.Core.History;

/// <summary>What happened to a lease or to the service holding it.</summary>
public enum HistoryKind
{
    Granted,
    Released,
    Expired,
    Evicted,

    /// <summary>A service cf-orch stopped (on request, idle, or failed start).</summary>
    Stopped,

    /// <summary>A service that went away by itself (an adopted one stopped answering, a managed one exited).</summary>
    Lost,

    /// <summary>A model an Ollama had loaded, unloaded by cf-orch to make room for a more important lease (the service keeps running).</summary>
    Unloaded,
}

/// <summary>One line of lease history, as SQLite keeps it.</summary>
public sealed record HistoryEvent
{
    public required DateTimeOffset At { get; init; }

    public required HistoryKind Kind { get; init; }

    public string? LeaseId { get; init; }

    public required string NodeId { get; init; }

    public required int GpuIndex { get; init; }

    public string? Service { get; init; }

    public required string Holder { get; init; }

    public required string Origin { get; init; }

    public long BudgetMb { get; init; }

    public long? MeasuredMb { get; init; }

    public required string Reason { get; init; }

    /// <summary>When the lease was granted (for releases: how long it was held).</summary>
    public DateTimeOffset? GrantedAt { get; init; }

    /// <summary>The lease's priority (kept for a client's lease, so that it can be restored after a restart).</summary>
    public int? Priority { get; init; }

    /// <summary>When the lease's TTL ends (kept for a client's lease, so that it can be restored after a restart).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
}

/// <summary>Where history goes. Must not block: implementations queue and write off the hot path.</summary>
public interface IHistorySink
{
    void Record(HistoryEvent historyEvent);
}

/// <summary>Keeps nothing (Core used without persistence, e.g. in unit tests).</summary>
public sealed class NullHistorySink : IHistorySink
{
    public void Record(HistoryEvent historyEvent)
    {
    }
}
