namespace CfOrch.Core.Leases;

/// <summary>A lease whose history has a grant and no end: open when cf-orch last stopped.</summary>
public sealed record OpenLease(string LeaseId, string NodeId, int GpuIndex, string? Service, string Holder, string Origin, long BudgetMb, DateTimeOffset GrantedAt);

/// <summary>
/// A loan as it is kept across a restart of cf-orch (or while its lender holds no lease): <see cref="Mb"/> of the budget
/// of <see cref="Lender"/>'s lease on one GPU, lent to the lease <see cref="ForLeaseId"/>. A lender's and a service's
/// lease get new ids when they are adopted or re-attached, so each side is also named by what it is for.
/// </summary>
public sealed record KeptLoan(string NodeId, int GpuIndex, string Lender, string ForLeaseId, string ForHolder, string? ForService, HolderOrigin ForOrigin, long Mb);

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

    /// <summary>The loans kept when cf-orch last stopped.</summary>
    Task<IReadOnlyList<KeptLoan>> LoadLoansAsync(CancellationToken cancellationToken);

    /// <summary>Keeps <paramref name="loans"/> (all of them, replacing what was kept) for the next start; written in the background.</summary>
    void KeepLoans(IReadOnlyList<KeptLoan> loans);
}

/// <summary>Keeps nothing across restarts (Core without persistence, unit tests).</summary>
public sealed class NullLeaseStore : ILeaseStore
{
    public Task<IReadOnlyList<Lease>> LoadClientLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<Lease>>([]);

    public Task<IReadOnlyList<OpenLease>> OpenLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<OpenLease>>([]);

    public Task<DateTimeOffset?> LastEventAtAsync(CancellationToken cancellationToken) => Task.FromResult<DateTimeOffset?>(null);

    public Task<IReadOnlyList<KeptLoan>> LoadLoansAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<KeptLoan>>([]);

    public void KeepLoans(IReadOnlyList<KeptLoan> loans)
    {
    }
}
