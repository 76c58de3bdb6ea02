using CfOrch.Core.History;

namespace CfOrch.Core.Leases;

/// <summary>Who a lease is for: a service cf-orch manages, a service it adopted, or a client of the lease API.</summary>
public enum HolderOrigin
{
    Managed,
    Adopted,
    Client,
}

/// <summary>VRAM reserved on one GPU for one holder.</summary>
public sealed record Lease
{
    public required string LeaseId { get; init; }

    public required string NodeId { get; init; }

    public required int GpuIndex { get; init; }

    /// <summary>The service name, or the caller for a client lease.</summary>
    public required string Holder { get; init; }

    /// <summary>The service this lease is for (null for a plain client lease).</summary>
    public string? Service { get; init; }

    public required long Mb { get; init; }

    public required int Priority { get; init; }

    public required HolderOrigin Origin { get; init; }

    public required DateTimeOffset GrantedAt { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>What the holder really uses now; admission counts the larger of this and <see cref="Mb"/>.</summary>
    public long? MeasuredMb { get; init; }

    /// <summary>
    /// Memory this lease (an Ollama's whose idle models cf-orch unloaded) lends to more important leases: while it
    /// lends, it holds the larger of what it measurably uses and its budget less what it lent — "up to its budget, as
    /// room allows" — and each loan ends with the lease it was made for.
    /// </summary>
    public IReadOnlyList<LeaseLoan> Loans { get; init; } = [];

    /// <summary>What admission counts for this lease: the larger of its budget (less what it lent) and its measured use.</summary>
    public long HeldMb => Loans.Count == 0 ? Math.Max(Mb, MeasuredMb ?? 0) : Math.Max(MeasuredMb ?? 0, Mb - LentMb);

    /// <summary>Σ of its loans.</summary>
    public long LentMb => Loans.Count == 0 ? 0 : Loans.Sum(l => l.Mb);

    /// <summary>This lease with the loans <paramref name="which"/> names ended.</summary>
    public Lease WithoutLoans(Func<LeaseLoan, bool> which) => this with { Loans = Loans.Where(l => !which(l)).ToArray() };

    /// <summary>This lease's line of history: <paramref name="kind"/> at <paramref name="at"/>, because of <paramref name="reason"/>.</summary>
    public HistoryEvent ToHistory(HistoryKind kind, DateTimeOffset at, string reason) => new()
    {
        At = at,
        Kind = kind,
        LeaseId = LeaseId,
        NodeId = NodeId,
        GpuIndex = GpuIndex,
        Service = Service,
        Holder = Holder,
        Origin = Origin.ToString().ToLowerInvariant(),
        BudgetMb = Mb,
        MeasuredMb = MeasuredMb,
        Reason = reason,
        GrantedAt = GrantedAt,
        Priority = Priority,
        ExpiresAt = ExpiresAt,
    };
}

/// <summary>
/// Part of a lease's budget lent to a more important holder: to whom, their lease once granted (null while it waits for
/// the memory), and how much. <see cref="Token"/> names the loan for the request that made it.
/// </summary>
public sealed record LeaseLoan(string Token, string ForHolder, string? ForLeaseId, long Mb);

/// <summary>A request for a lease. <see cref="Ttl"/> null: until released.</summary>
public sealed record LeaseRequest(string Holder, string? Service, int GpuIndex, long Mb, int Priority, HolderOrigin Origin, TimeSpan? Ttl = null)
{
    /// <summary>The node of the GPU: null (or this node's id) for this node's own, else a registered agent's.</summary>
    public string? NodeId { get; init; }

    /// <summary>
    /// For a service that already runs (adoption, re-attachment): its memory is already in use, so the live-free check
    /// is skipped and what it measurably holds (<see cref="AlreadyInUseMb"/>) is not counted twice.
    /// </summary>
    public bool AlreadyRunning { get; init; }

    public long AlreadyInUseMb { get; init; }

    /// <summary>
    /// A lease held before cf-orch restarted, granted again as it was (its id, grant time and TTL), without a second
    /// "granted" line in the history.
    /// </summary>
    public Lease? Restoring { get; init; }
}

/// <summary>One GPU's books: what is leased, measured, used outside cf-orch, reserved and still available.</summary>
public sealed record GpuAccount
{
    public required int GpuIndex { get; init; }

    public required long TotalMb { get; init; }

    /// <summary>What the GPU reports in use now.</summary>
    public required long UsedMb { get; init; }

    /// <summary>What the GPU reports free now.</summary>
    public required long FreeMb { get; init; }

    public required long ReserveMb { get; init; }

    /// <summary>Σ lease budgets, less what leases lent.</summary>
    public required long LeasedMb { get; init; }

    /// <summary>Σ measured usage of lease holders.</summary>
    public required long MeasuredMb { get; init; }

    /// <summary>Σ max(budget, measured) over leases.</summary>
    public required long HeldMb { get; init; }

    /// <summary>Memory in use that no lease holder accounts for.</summary>
    public required long ExternalMb { get; init; }

    /// <summary>Memory in use presumed to be held by clients' leases (which cannot be measured), up to their budgets.</summary>
    public long ClientsPresumedMb { get; init; }

    /// <summary>What leases may still take on top of what they hold now: Σ max(0, budget − measured) less what clients are presumed to hold.</summary>
    public long PendingMb => Math.Max(0, HeldMb - MeasuredMb - ClientsPresumedMb);

    /// <summary>Held + external + reserve.</summary>
    public long CommittedMb => HeldMb + ExternalMb + ReserveMb;

    /// <summary>What a new lease can get now: min(total − committed, live free).</summary>
    public long AvailableMb => Math.Max(0, Math.Min(TotalMb - CommittedMb, FreeMb));

    /// <summary>More is committed than the card has, or leases expect memory the card does not have free.</summary>
    public bool Overcommitted => CommittedMb > TotalMb || PendingMb > FreeMb;
}

/// <summary>The answer to a lease request.</summary>
public abstract record Admission
{
    private Admission()
    {
    }

    public sealed record Granted(Lease Lease) : Admission;

    /// <summary>It would fit once these less important managed leases are evicted (least important first).</summary>
    public sealed record NeedsEviction(IReadOnlyList<Lease> Victims, string Reason) : Admission;

    /// <summary>Refused: <see cref="Why"/> says whether the request was malformed, asked for a GPU the node lacks, or does not fit; <see cref="Reason"/> names what holds the GPU.</summary>
    public sealed record Refused(RefusalKind Why, string Reason) : Admission;
}

/// <summary>Why a lease request was refused.</summary>
public enum RefusalKind
{
    /// <summary>It does not fit on the GPU.</summary>
    NoCapacity,

    /// <summary>The request itself is wrong (a negative size).</summary>
    Invalid,

    /// <summary>The node has no such GPU.</summary>
    UnknownGpu,

    /// <summary>No node of that id is registered.</summary>
    UnknownNode,

    /// <summary>The node is registered but its agent does not answer: nothing new is placed on it.</summary>
    NodeOffline,
}
