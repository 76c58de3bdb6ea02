namespace CfOrch.Core.Leases;

/// <summary>A lease whose history has a grant and no end: open when cf-orch last stopped.</summary>
public sealed record OpenLease(string LeaseId, string NodeId, int GpuIndex, string? Service, string Holder, string Origin, long BudgetMb, DateTimeOffset GrantedAt);

/// <summary>
/// What the store knows about leases across a restart: the clients' leases that were held (restored at start-up), the
/// leases the history still shows open (closed at start-up when they did not survive), and when history last moved.
/// Client leases are kept by the history sink itself, in the same transaction as their history.
/// </summary>
public interface ILeaseStore
{
    /// <summary>The clients' leases held when cf-orch last stopped.</summary>
    Task<IReadOnlyList<Lease>> LoadClientLeasesAsync(CancellationToken cancellationToken);

    /// <summary>The leases granted in the history and never ended there.</summary>
    Task<IReadOnlyList<OpenLease>> OpenLeasesAsync(CancellationToken cancellationToken);

    /// <summary>The time of the newest history row (about when cf-orch last stopped); null without history.</summary>
    Task<DateTimeOffset?> LastEventAtAsync(CancellationToken cancellationToken);
}

/// <summary>Keeps nothing across restarts (Core without persistence, unit tests).</summary>
public sealed class NullLeaseStore : ILeaseStore
{
    public Task<IReadOnlyList<Lease>> LoadClientLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<Lease>>([]);

    public Task<IReadOnlyList<OpenLease>> OpenLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<OpenLease>>([]);

    public Task<DateTimeOffset?> LastEventAtAsync(CancellationToken cancellationToken) => Task.FromResult<DateTimeOffset?>(null);
}
