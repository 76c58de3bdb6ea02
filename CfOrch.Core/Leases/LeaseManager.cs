using System.Globalization;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.History;
using CfOrch.Core.Changes;
using CfOrch.Core.Nodes;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Leases;

/// <summary>
/// Grants, releases and expires VRAM leases, with DESIGN.md's admission rule:
/// a request is granted when it fits in total − committed and in the live free VRAM the GPU reports.
/// Every check and grant happens under one lock, so the sum of granted leases never exceeds a GPU's total. The GPUs
/// of other nodes (registered agents) are decided by the same rule, against the figures their agents last reported.
/// </summary>
public sealed class LeaseManager
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly GpuMonitor _gpus;
    private readonly IStatePublisher _stream;
    private readonly IHistorySink _history;
    private readonly TimeProvider _time;
    private readonly CfOrchOptions _options;
    private readonly IRemoteNodes _remote;
    private readonly ILeaseStore _store;

    /// <summary>
    /// Loans kept from before — a restart of cf-orch, or their lender's lease ending while the lease they were made for
    /// still holds the memory — that wait for their lender (or, at start-up, the lease they were made for) to hold a
    /// lease again. Guarded by <see cref="_lock"/>.
    /// </summary>
    private readonly List<KeptLoan> _expectedLoans = [];

    /// <summary>What the store was last given to keep (under <see cref="_lock"/>).</summary>
    private KeptLoan[] _keptLoans = [];

    public LeaseManager(GpuMonitor gpus, IStatePublisher stream, IHistorySink history, TimeProvider time, IOptions<CfOrchOptions> options, IRemoteNodes? remote = null, ILeaseStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _remote = remote ?? new NoRemoteNodes();
        _store = store ?? new NullLeaseStore();
        _gpus = gpus;
        _stream = stream;
        _history = history;
        _time = time;
        _options = options.Value;
        _gpus.Changed += snapshot => _stream.Publish(new GpusChanged(snapshot, Accounts(snapshot)));
        _stream.Publish(new GpusChanged(_gpus.Current, Accounts(_gpus.Current)));
    }

    public string NodeId => _options.NodeId;

    public IReadOnlyList<Lease> All
    {
        get
        {
            lock (_lock)
            {
                return _leases.Values.OrderBy(l => l.GpuIndex).ThenBy(l => l.GrantedAt).ToArray();
            }
        }
    }

    public Lease? Get(string leaseId)
    {
        lock (_lock)
        {
            return _leases.GetValueOrDefault(leaseId);
        }
    }

    /// <summary>The books of every GPU of this node as of the latest inventory reading.</summary>
    public IReadOnlyList<GpuAccount> Accounts() => Accounts(_gpus.Current);

    /// <summary>The books of every GPU of another node, as its agent last reported them (none for an unknown node).</summary>
    public IReadOnlyList<GpuAccount> Accounts(string nodeId)
    {
        if (IsLocal(nodeId))
        {
            return Accounts();
        }

        var gpus = RemoteGpus(_remote.Find(nodeId));
        lock (_lock)
        {
            return gpus.Select(g => Account(nodeId, g)).ToArray();
        }
    }

    private bool IsLocal(string? nodeId) => string.IsNullOrEmpty(nodeId) || nodeId == _options.NodeId;

    private static List<GpuInfo> RemoteGpus(RemoteNodeState? node) =>
        node is null ? [] : node.Gpus.Select(g => new GpuInfo { Index = g.GpuId, Name = g.Name, TotalMb = g.TotalMb, UsedMb = Math.Max(0, g.TotalMb - g.FreeMb) }).ToList();

    public GpuAccount? Account(int gpuIndex) => Accounts().FirstOrDefault(a => a.GpuIndex == gpuIndex);

    /// <summary>Decides a request: granted (and recorded), needs eviction of named victims, or refused with who holds the GPU.</summary>
    public Admission Request(LeaseRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);

        // An unknown node or GPU is named first (a 404 for a client), then a malformed size.
        var node = IsLocal(request.NodeId) ? _options.NodeId : request.NodeId!;
        IReadOnlyList<GpuInfo> inventory = _gpus.Current.Gpus;
        var which = "this node";
        if (node != _options.NodeId)
        {
            var remote = _remote.Find(node);
            if (remote is null)
            {
                return new Admission.Refused(RefusalKind.UnknownNode, _remote.UnknownNode(node, _options.NodeId));
            }

            if (request.Restoring is { } held)
            {
                // Held before this coordinator restarted: held again as it was, whatever the agent reports (or whether it
                // answers yet); what it no longer runs is released once it answers.
                return Hold(held with { NodeId = node, MeasuredMb = null });
            }

            if (!remote.Online)
            {
                return new Admission.Refused(RefusalKind.NodeOffline, $"node '{node}' is offline ({remote.Problem ?? "its agent does not answer"}): nothing new is placed on it until it answers again");
            }

            inventory = RemoteGpus(remote);
            which = $"node '{node}'";
        }

        var gpu = inventory.FirstOrDefault(g => g.Index == request.GpuIndex);
        if (gpu is null)
        {
            return new Admission.Refused(RefusalKind.UnknownGpu, inventory.Count == 0
                ? $"{which} has no GPU {request.GpuIndex} (no GPUs are tracked)"
                : $"{which} has no GPU {request.GpuIndex} (it has {string.Join(", ", inventory.Select(g => g.Index))})");
        }

        if (request.Mb < 0)
        {
            return new Admission.Refused(RefusalKind.Invalid, $"a lease needs a size of 0 MB or more (got {request.Mb} MB)");
        }

        Lease lease;
        List<Lease> revoked;
        lock (_lock)
        {
            // A loan kept from before that this lease completes: as the lender it asks for its budget less what it lent;
            // as the lease the loan was made for, its lender already holds that much less.
            var (lending, borrowing, lent) = ExpectedLoansOf(request, node);
            var asked = lent == 0 ? request : request with { Mb = request.Mb - lent };
            var account = borrowing.Count == 0 ? Account(node, gpu) : Account(node, gpu, asIf: l => Borrowed(l, borrowing));
            if (!Fits(asked, account))
            {
                // Less important clients' leases give way when that alone makes room — never when their memory is really
                // in use (live free memory must suffice too), so a revocation is never made for nothing.
                revoked = RevocableFor(asked, node, gpu);
                if (revoked.Count == 0)
                {
                    return Decline(asked, account, node, gpu);
                }

                foreach (var victim in revoked)
                {
                    _leases.Remove(victim.LeaseId);
                    _stream.Publish(new LeaseReleased(victim, HistoryKind.Evicted, RevokedReason(request)));
                    SettleLoansOf(victim);
                }
            }
            else
            {
                revoked = [];
            }

            var now = _time.GetUtcNow();
            lease = request.Restoring is { } earlier ? earlier with { NodeId = node, MeasuredMb = null } : new Lease
            {
                LeaseId = NewId(),
                NodeId = node,
                GpuIndex = request.GpuIndex,
                Holder = request.Holder,
                Service = request.Service,
                Mb = request.Mb,
                Priority = request.Priority,
                Origin = request.Origin,
                GrantedAt = now,
                ExpiresAt = request.Ttl is { } ttl ? now + ttl : null,
            };
            if (lending.Count > 0 || borrowing.Count > 0)
            {
                lease = CompleteExpectedLoans(request, lease, lending, borrowing);
            }
            else
            {
                _leases.Add(lease.LeaseId, lease);
            }

            _stream.Publish(new LeaseGranted(lease));
        }

        foreach (var victim in revoked)
        {
            _history.Record(victim.ToHistory(HistoryKind.Evicted, _time.GetUtcNow(), RevokedReason(request)));
        }

        if (request.Restoring is null)
        {
            _history.Record(lease.ToHistory(HistoryKind.Granted, _time.GetUtcNow(), $"{lease.Mb} MB for {lease.Holder}"));
        }

        PublishAccounts();
        return new Admission.Granted(lease);
    }

    private Admission.Granted Hold(Lease lease)
    {
        lock (_lock)
        {
            _leases[lease.LeaseId] = lease;
            _stream.Publish(new LeaseGranted(lease));
        }

        return new Admission.Granted(lease);
    }

    /// <summary>Releases a lease; false when there is no such lease (already released).</summary>
    public bool Release(string leaseId, HistoryKind kind, string reason)
    {
        Lease? lease;
        lock (_lock)
        {
            if (!_leases.Remove(leaseId, out lease))
            {
                return false;
            }

            _stream.Publish(new LeaseReleased(lease, kind, reason));
            SettleLoansOf(lease);
        }

        _history.Record(lease.ToHistory(kind, _time.GetUtcNow(), reason));
        PublishAccounts();
        return true;
    }

    /// <summary>
    /// The loans of a lease that is gone (already removed): leases that lent it memory take it back, and a loan kept for
    /// it ends. A lender that goes (an Ollama stopped or lost) while what it lent is still held leaves its loans waiting
    /// for its next lease, so that its coming back does not over-commit the GPU. Called under the lock.
    /// </summary>
    private void SettleLoansOf(Lease gone)
    {
        var changed = false;
        foreach (var lender in _leases.Values.Where(l => l.Loans.Any(loan => loan.ForLeaseId == gone.LeaseId)).ToList())
        {
            var restored = lender.WithoutLoans(loan => loan.ForLeaseId == gone.LeaseId);
            _leases[lender.LeaseId] = restored;
            _stream.Publish(new LeaseUpdated(restored));
            changed = true;
        }

        if (gone.Loans.Count > 0 || _expectedLoans.Count > 0)
        {
            _expectedLoans.RemoveAll(k => k.ForLeaseId == gone.LeaseId);
            _expectedLoans.AddRange(gone.Loans.Select(loan => Kept(gone, loan)).OfType<KeptLoan>());
            changed = true;
        }

        if (changed)
        {
            KeepLoans();
        }
    }

    /// <summary>
    /// Whether <paramref name="request"/> (on this node) would fit if the leases named in <paramref name="remainingMb"/>
    /// lent it what they do not measurably use and held only that much, with <paramref name="liveFreedMb"/> more reported
    /// free by the GPU — what unloading idle models would leave. Nothing changes.
    /// </summary>
    public bool FitsIfYielded(LeaseRequest request, IReadOnlyDictionary<string, long> remainingMb, long liveFreedMb)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(remainingMb);
        if (LocalGpu(request) is not { } gpu)
        {
            return false;
        }

        var after = gpu with { UsedMb = Math.Max(0, gpu.UsedMb - liveFreedMb) };
        lock (_lock)
        {
            var account = Account(_options.NodeId, after, asIf: l => remainingMb.TryGetValue(l.LeaseId, out var mb)
                ? l with { MeasuredMb = mb, Loans = [.. l.Loans, new LeaseLoan("plan", request.Holder, null, l.Mb)] }
                : l);
            return Fits(request, account);
        }
    }

    /// <summary>
    /// The lease lends <paramref name="request"/> as much of its budget as the request needs beyond the room the GPU's
    /// books have without it (none: the room comes from its measured use alone); returns the loan's token, or null when
    /// it lent nothing.
    /// </summary>
    public string? Lend(string leaseId, LeaseRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (LocalGpu(request) is not { } gpu)
        {
            return null;
        }

        string token;
        lock (_lock)
        {
            if (!_leases.TryGetValue(leaseId, out var lender))
            {
                return null;
            }

            // The room it may hold and still let the request fit: the total less everything else committed and the request.
            var othersCommitted = Account(_options.NodeId, gpu).CommittedMb - lender.HeldMb;
            var cap = gpu.TotalMb - othersCommitted - request.Mb;
            var lend = Math.Clamp(lender.Mb - lender.LentMb - cap, 0, lender.Mb - lender.LentMb);
            if (lend == 0)
            {
                return null;
            }

            token = NewToken();
            var updated = lender with { Loans = [.. lender.Loans, new LeaseLoan(token, request.Holder, null, lend)] };
            _leases[leaseId] = updated;
            _stream.Publish(new LeaseUpdated(updated));
        }

        PublishAccounts();
        return token;
    }

    /// <summary>The readable GPU of this node a request names; null for another node's or one that cannot be read.</summary>
    private GpuInfo? LocalGpu(LeaseRequest request) =>
        IsLocal(request.NodeId) && _gpus.Current.Gpus.FirstOrDefault(g => g.Index == request.GpuIndex) is { Error: null } gpu ? gpu : null;

    /// <summary>The loan <paramref name="token"/> is for <paramref name="forLeaseId"/> now: it ends when that lease does (at once, when it already has).</summary>
    public void ConfirmLoan(string leaseId, string token, string forLeaseId) =>
        // Decided under the same lock as a release of that lease, so that a loan never outlives it.
        Change(leaseId, l => _leases.ContainsKey(forLeaseId)
            ? l with { Loans = l.Loans.Select(loan => loan.Token == token ? loan with { ForLeaseId = forLeaseId } : loan).ToArray() }
            : l.WithoutLoans(loan => loan.Token == token));

    /// <summary>The loan <paramref name="token"/> ends (its request was never granted): the lease takes that memory back.</summary>
    public void EndLoan(string leaseId, string token) =>
        Change(leaseId, l => l.Loans.Any(loan => loan.Token == token) ? l.WithoutLoans(loan => loan.Token == token) : l);

    /// <summary>Replaces the lease with what <paramref name="change"/> makes of it (called under the lock).</summary>
    private void Change(string leaseId, Func<Lease, Lease> change)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(leaseId, out var lease) || change(lease) is var updated && updated == lease)
            {
                return;
            }

            _leases[leaseId] = updated;
            _stream.Publish(new LeaseUpdated(updated));
            KeepLoans();
        }

        PublishAccounts();
    }

    /// <summary>
    /// The loans kept when cf-orch last stopped (<see cref="ILeaseStore.LoadLoansAsync"/>), before anything is re-attached,
    /// restored or adopted: each is made again as soon as its lender and the lease it was made for both hold leases — in
    /// whichever order they come back — so that neither is refused, and the GPU not over-committed, for memory that was
    /// lent. <see cref="SettleExpectedLoans"/> ends, once start-up is done, those whose lease did not come back.
    /// </summary>
    public void ExpectLoans(IEnumerable<KeptLoan> kept)
    {
        ArgumentNullException.ThrowIfNull(kept);
        lock (_lock)
        {
            foreach (var loan in kept)
            {
                if (loan.Mb > 0 && !_expectedLoans.Contains(loan))
                {
                    _expectedLoans.Add(loan);
                }
            }

            // What the store holds now: any change from here on replaces it.
            _keptLoans = AllLoans();
        }
    }

    /// <summary>
    /// Ends the kept loans whose lease did not come back at start-up (a service that exited, a client's lease that ran
    /// out); those whose lender is still away wait for it. Returns the loans ended.
    /// </summary>
    public IReadOnlyList<KeptLoan> SettleExpectedLoans()
    {
        lock (_lock)
        {
            var ended = _expectedLoans.Where(k => !_leases.ContainsKey(k.ForLeaseId)).ToList();
            _expectedLoans.RemoveAll(k => !_leases.ContainsKey(k.ForLeaseId));
            KeepLoans();
            return ended;
        }
    }

    /// <summary>The kept loans that wait (for tests and the log).</summary>
    public IReadOnlyList<KeptLoan> ExpectedLoans
    {
        get
        {
            lock (_lock)
            {
                return [.. _expectedLoans];
            }
        }
    }

    /// <summary>
    /// The kept loans a lease for <paramref name="request"/> would complete: those it lends (it is their lender, and their
    /// lease holds), those made for it (its lender holds a lease), and what it lends in all. Called under the lock.
    /// </summary>
    private (IReadOnlyList<(KeptLoan Kept, long Mb)> Lending, IReadOnlyList<KeptLoan> Borrowing, long Lent) ExpectedLoansOf(LeaseRequest request, string node)
    {
        if (_expectedLoans.Count == 0 || node != _options.NodeId)
        {
            // The lease path's usual case: nothing allocated.
            return ([], [], 0);
        }

        List<(KeptLoan, long)> lending = [];
        List<KeptLoan> borrowing = [];
        var lent = 0L;
        foreach (var kept in _expectedLoans)
        {
            if (kept.NodeId != node || kept.GpuIndex != request.GpuIndex)
            {
                continue;
            }

            if (request.Origin != HolderOrigin.Client && kept.Lender == request.Holder && _leases.ContainsKey(kept.ForLeaseId))
            {
                // Never more than its budget, should the profile have lowered it meanwhile.
                var mb = Math.Min(kept.Mb, request.Mb - lent);
                if (mb > 0)
                {
                    lending.Add((kept, mb));
                    lent += mb;
                }
            }
            else if (IsFor(kept, request))
            {
                borrowing.Add(kept);
            }
        }

        return (lending, borrowing, lent);
    }

    /// <summary>Whether <paramref name="kept"/> was made for the lease <paramref name="request"/> asks for: the same client lease, or the same service's.</summary>
    private static bool IsFor(KeptLoan kept, LeaseRequest request) => request.Restoring is { } held
        ? held.LeaseId == kept.ForLeaseId
        : request.Origin != HolderOrigin.Client && kept.ForOrigin == request.Origin && kept.ForHolder == request.Holder && kept.ForService == request.Service;

    /// <summary>The lender's lease of <paramref name="kept"/> on its GPU (null while it holds none). Called under the lock.</summary>
    private Lease? LenderOf(KeptLoan kept)
    {
        foreach (var lease in _leases.Values)
        {
            if (lease.NodeId == kept.NodeId && lease.GpuIndex == kept.GpuIndex && lease.Holder == kept.Lender && lease.Origin != HolderOrigin.Client)
            {
                return lease;
            }
        }

        return null;
    }

    /// <summary><paramref name="lease"/> as it would be with the kept loans in <paramref name="borrowing"/> whose lender it is made again.</summary>
    private Lease Borrowed(Lease lease, IReadOnlyList<KeptLoan> borrowing)
    {
        foreach (var kept in borrowing)
        {
            if (LenderOf(kept)?.LeaseId == lease.LeaseId)
            {
                lease = WithLoan(lease, kept, kept.ForHolder, null) ?? lease;
            }
        }

        return lease;
    }

    /// <summary>
    /// <paramref name="lender"/> lending what <paramref name="kept"/> lent again, to <paramref name="forLeaseId"/> — never
    /// more than its budget has left to lend; null when nothing is left.
    /// </summary>
    private static Lease? WithLoan(Lease lender, KeptLoan kept, string forHolder, string? forLeaseId)
    {
        var mb = Math.Min(kept.Mb, lender.Mb - lender.LentMb);
        return mb > 0 ? lender with { Loans = [.. lender.Loans, new LeaseLoan(NewToken(), forHolder, forLeaseId, mb)] } : null;
    }

    /// <summary>Adds <paramref name="lease"/> with the kept loans it completes made again, on it and on its lenders. Called under the lock.</summary>
    private Lease CompleteExpectedLoans(LeaseRequest request, Lease lease, IReadOnlyList<(KeptLoan Kept, long Mb)> lending, IReadOnlyList<KeptLoan> borrowing)
    {
        foreach (var (kept, mb) in lending)
        {
            lease = lease with { Loans = [.. lease.Loans, new LeaseLoan(NewToken(), kept.ForHolder, kept.ForLeaseId, mb)] };
            _expectedLoans.Remove(kept);
        }

        _leases.Add(lease.LeaseId, lease);
        foreach (var kept in borrowing)
        {
            _expectedLoans.Remove(kept);
            if (LenderOf(kept) is not { } lender)
            {
                // Its lender is still away: the loan now waits for it, made for this lease.
                _expectedLoans.Add(kept with { ForLeaseId = lease.LeaseId });
            }
            else if (WithLoan(lender, kept, request.Holder, lease.LeaseId) is { } updated)
            {
                _leases[lender.LeaseId] = updated;
                _stream.Publish(new LeaseUpdated(updated));
            }
        }

        KeepLoans();
        return lease;
    }

    /// <summary>A confirmed loan of <paramref name="lender"/> as the store keeps it; null while it is not for a lease that holds.</summary>
    private KeptLoan? Kept(Lease lender, LeaseLoan loan) =>
        loan.ForLeaseId is { } id && _leases.TryGetValue(id, out var borrower)
            ? new KeptLoan(lender.NodeId, lender.GpuIndex, lender.Holder, id, borrower.Holder, borrower.Service, borrower.Origin, loan.Mb)
            : null;

    /// <summary>Gives the store every loan — made, and waiting — when they changed since it was last given them. Called under the lock.</summary>
    private void KeepLoans()
    {
        var now = AllLoans();
        if (!now.SequenceEqual(_keptLoans))
        {
            _keptLoans = now;
            _store.KeepLoans(now);
        }
    }

    /// <summary>Every loan made and confirmed, and every one that waits, in a stable order. Called under the lock.</summary>
    private KeptLoan[] AllLoans() => _leases.Values.Where(l => l.Loans.Count > 0)
        .SelectMany(l => l.Loans.Select(loan => Kept(l, loan)))
        .OfType<KeptLoan>()
        .Concat(_expectedLoans)
        .OrderBy(k => k.ForLeaseId, StringComparer.Ordinal).ThenBy(k => k.Lender, StringComparer.Ordinal)
        .ToArray();

    private static string NewToken() => Guid.NewGuid().ToString("N");

    /// <summary>Records what a lease's holder really uses now.</summary>
    public void UpdateMeasured(string leaseId, long? measuredMb)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(leaseId, out var lease) || lease.MeasuredMb == measuredMb)
            {
                return;
            }

            var updated = lease with { MeasuredMb = measuredMb };
            _leases[leaseId] = updated;
            _stream.Publish(new LeaseUpdated(updated));
        }

        PublishAccounts();
    }

    /// <summary>Releases every lease whose TTL has passed; returns them.</summary>
    public IReadOnlyList<Lease> ExpireDue()
    {
        var now = _time.GetUtcNow();
        List<Lease> due;
        lock (_lock)
        {
            due = _leases.Values.Where(l => l.ExpiresAt is { } at && at <= now).ToList();
        }

        return due.Where(l => Release(l.LeaseId, HistoryKind.Expired, "its TTL passed")).ToList();
    }

    /// <summary>Whether the request fits this GPU's books: its total less what is committed, and its live free memory.</summary>
    private static bool Fits(LeaseRequest request, GpuAccount account)
    {
        var room = account.TotalMb - (account.CommittedMb - Math.Min(request.AlreadyInUseMb, account.ExternalMb));
        var liveFree = request.AlreadyRunning ? long.MaxValue : account.FreeMb;
        return request.Mb <= room && request.Mb <= liveFree;
    }

    /// <summary>
    /// The fewest less important client leases (least important, newest first) whose revocation makes the request fit
    /// the books recomputed without them; none when no such set exists. Called under the lock.
    /// </summary>
    private List<Lease> RevocableFor(LeaseRequest request, string node, GpuInfo gpu)
    {
        var candidates = _leases.Values
            .Where(l => l.NodeId == node && l.GpuIndex == gpu.Index && l.Origin == HolderOrigin.Client && l.Priority > request.Priority)
            .OrderByDescending(l => l.Priority)
            .ThenByDescending(l => l.GrantedAt)
            .ToList();
        var chosen = new List<Lease>();
        foreach (var candidate in candidates)
        {
            chosen.Add(candidate);
            if (Fits(request, Account(node, gpu, chosen)))
            {
                return chosen;
            }
        }

        return [];
    }

    private static string RevokedReason(LeaseRequest request) => string.Create(CultureInfo.InvariantCulture,
        $"revoked: {request.Holder} (priority {request.Priority}) took its place with {request.Mb} MB");

    private Admission Decline(LeaseRequest request, GpuAccount account, string node, GpuInfo gpu)
    {
        var holders = _leases.Values.Where(l => l.NodeId == node && l.GpuIndex == gpu.Index).OrderBy(l => l.Priority).ThenBy(l => l.GrantedAt).ToList();

        // Less important managed leases may make room (adopted and client leases are never evicted automatically).
        var candidates = holders
            .Where(l => l.Origin == HolderOrigin.Managed && l.Priority > request.Priority)
            .OrderByDescending(l => l.Priority)
            .ThenByDescending(l => l.GrantedAt)
            .ToList();
        var victims = new List<Lease>();
        var freed = 0L;
        foreach (var victim in candidates)
        {
            victims.Add(victim);
            freed += victim.HeldMb;
            if (request.Mb <= account.TotalMb - (account.CommittedMb - freed) && request.Mb <= account.FreeMb + freed)
            {
                return new Admission.NeedsEviction(victims, $"{GpuName(node, gpu.Index)} needs {request.Mb} MB for {request.Holder}; evicting {string.Join(", ", victims.Select(v => v.Holder))}");
            }
        }

        return new Admission.Refused(RefusalKind.NoCapacity, Describe(request, account, GpuName(node, gpu.Index), gpu, holders));
    }

    /// <summary>"GPU 0" on this node, "GPU 0 of heimdall" on another.</summary>
    private string GpuName(string node, int index) => node == _options.NodeId ? $"GPU {index}" : $"GPU {index} of {node}";

    private static string Describe(LeaseRequest request, GpuAccount account, string gpuName, GpuInfo gpu, IReadOnlyList<Lease> holders)
    {
        var parts = holders.Select(l => string.Create(CultureInfo.InvariantCulture,
            $"{l.Holder} {l.HeldMb} MB ({l.Origin.ToString().ToLowerInvariant()}, priority {l.Priority})")).ToList();
        if (account.ExternalMb > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{account.ExternalMb} MB used by programs cf-orch does not track"));
        }

        if (account.ReserveMb > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{account.ReserveMb} MB reserve"));
        }

        var held = parts.Count == 0 ? "nothing" : string.Join(", ", parts);
        return string.Create(CultureInfo.InvariantCulture,
            $"Insufficient VRAM on {gpuName} ({gpu.Name}): cannot fit {request.Mb} MB for {request.Holder}: {account.AvailableMb} MB of {account.TotalMb} MB available, held by {held}");
    }

    private GpuAccount Account(string node, GpuInfo gpu, IReadOnlyCollection<Lease>? without = null, Func<Lease, Lease>? asIf = null)
    {
        // One pass over the leases, without LINQ: this runs twice for every lease granted or released.
        var remote = node != _options.NodeId;
        long measured = 0, clientBudgets = 0, leased = 0, held = 0;
        foreach (var each in _leases.Values)
        {
            if (each.NodeId != node || each.GpuIndex != gpu.Index || (without is not null && without.Contains(each)))
            {
                continue;
            }

            var l = asIf is null ? each : asIf(each);
            measured += l.MeasuredMb ?? 0;
            leased += l.Mb - l.LentMb;
            held += l.HeldMb;
            if (l.MeasuredMb is null && (remote || l.Origin == HolderOrigin.Client))
            {
                clientBudgets += l.Mb;
            }
        }

        // A client's lease (the Python client, a script) covers processes cf-orch cannot know, so it is never measured:
        // memory no measured holder accounts for is presumed to be those clients' first, up to their budgets, and only
        // the rest counts as external — otherwise a client's memory would be counted twice, in its budget and as
        // external. A program hiding behind such a budget still cannot be over-committed: admission also checks the
        // live free memory. Services cf-orch tracks absorb nothing: their processes are known.
        // On another node nothing is measured from here: every lease there is presumed to hold its memory, as a client's.
        var clientsPresumed = Math.Min(clientBudgets, Math.Max(0, gpu.UsedMb - measured));
        return new GpuAccount
        {
            GpuIndex = gpu.Index,
            TotalMb = gpu.TotalMb,
            UsedMb = gpu.UsedMb,
            FreeMb = gpu.FreeMb,
            ReserveMb = _options.Gpus.ReserveMb,
            LeasedMb = leased,
            MeasuredMb = measured,
            HeldMb = held,
            ClientsPresumedMb = clientsPresumed,
            ExternalMb = Math.Max(0, gpu.UsedMb - measured - clientsPresumed),
        };
    }

    private GpuAccount[] Accounts(GpuSnapshot snapshot)
    {
        lock (_lock)
        {
            return snapshot.Gpus.Select(g => Account(_options.NodeId, g)).ToArray();
        }
    }

    private void PublishAccounts()
    {
        var snapshot = _gpus.Current;
        _stream.Publish(new GpusChanged(snapshot, Accounts(snapshot)));
    }

    private static string NewId() => "lease-" + Guid.NewGuid().ToString("N")[..16];
}
