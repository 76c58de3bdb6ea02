using CfOrch.Core.History;
using CfOrch.Core.Leases;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Leases;

public sealed class LeaseManagerTests : IDisposable
{
    private readonly RecordingHistory _history = new();
    private readonly RecordingStore _store = new();
    private readonly EngineHarness _engine;

    public LeaseManagerTests() =>
        _engine = new EngineHarness(configure: s => s
            .Replace(ServiceDescriptor.Singleton<IHistorySink>(_history))
            .Replace(ServiceDescriptor.Singleton<ILeaseStore>(_store)));

    public void Dispose() => _engine.Dispose();

    private LeaseManager Leases => _engine.Get<LeaseManager>();

    [Fact]
    public void A_request_that_fits_is_granted_and_recorded()
    {
        var admission = Leases.Request(Managed("ollama", 4096, 1));

        var lease = Assert.IsType<Admission.Granted>(admission).Lease;
        Assert.Equal(("ollama", 0, 4096L, HolderOrigin.Managed), (lease.Holder, lease.GpuIndex, lease.Mb, lease.Origin));
        Assert.StartsWith("lease-", lease.LeaseId, StringComparison.Ordinal);
        Assert.Equal([lease], Leases.All);
        Assert.Equal((HistoryKind.Granted, lease.LeaseId), (_history.Events.Single().Kind, _history.Events.Single().LeaseId));
        var account = Leases.Account(0)!;
        Assert.Equal((4096L, 4096L, 4096L), (account.LeasedMb, account.CommittedMb, account.AvailableMb));
    }

    [Fact]
    public void A_request_beyond_total_minus_committed_is_refused_naming_who_holds_the_gpu()
    {
        Leases.Request(Adopted("ollama", 6000, 1));

        var refused = Assert.IsType<Admission.Refused>(Leases.Request(Managed("vllm", 3000, 1)));
        Assert.Equal(RefusalKind.NoCapacity, refused.Why);

        Assert.Contains("cannot fit 3000 MB for vllm", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("2192 MB of 8192 MB available", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("ollama 6000 MB (adopted, priority 1)", refused.Reason, StringComparison.Ordinal);
        Assert.Single(Leases.All);
    }

    [Fact]
    public void Measured_usage_above_the_budget_raises_what_a_lease_holds()
    {
        var lease = Granted(Adopted("ollama", 4096, 1));
        Assert.IsType<Admission.Granted>(Leases.Request(Managed("a", 2000, 2)));
        Leases.Release(Leases.All.Single(l => l.Holder == "a").LeaseId, HistoryKind.Released, "test");

        Leases.UpdateMeasured(lease.LeaseId, 6000);

        Assert.Equal(6000, Leases.Account(0)!.HeldMb);
        Assert.IsType<Admission.Refused>(Leases.Request(Managed("a", 2500, 2)));
        Assert.IsType<Admission.Granted>(Leases.Request(Managed("a", 2192, 2)));
    }

    [Fact]
    public void Memory_used_by_programs_no_lease_covers_and_the_reserve_are_committed()
    {
        using var engine = new EngineHarness(new() { ["CfOrch:Gpus:ReserveMb"] = "512" });
        engine.SetUsage(0, 4242, 3000, "someone-elses-python");
        var leases = engine.Get<LeaseManager>();

        var account = leases.Account(0)!;
        Assert.Equal((3000L, 512L, 3512L, 4680L), (account.ExternalMb, account.ReserveMb, account.CommittedMb, account.AvailableMb));
        var refused = Assert.IsType<Admission.Refused>(leases.Request(Managed("vllm", 5000, 1)));
        Assert.Contains("3000 MB used by programs cf-orch does not track", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("512 MB reserve", refused.Reason, StringComparison.Ordinal);
        Assert.IsType<Admission.Granted>(leases.Request(Managed("vllm", 4680, 1)));
    }

    [Fact]
    public void A_holders_measured_memory_is_not_counted_twice_as_external()
    {
        var lease = Granted(Managed("vllm", 4000, 1));
        _engine.SetUsage(0, 100, 3500, "vllm");
        Leases.UpdateMeasured(lease.LeaseId, 3500);

        var account = Leases.Account(0)!;
        Assert.Equal((0L, 4000L, 4000L), (account.ExternalMb, account.HeldMb, account.CommittedMb));
    }

    [Fact]
    public void Less_important_managed_leases_are_named_for_eviction_least_important_first()
    {
        Granted(Managed("comfyui", 3000, 4));
        Granted(Managed("tts", 1000, 2));
        Granted(Adopted("embed", 1000, 3));

        var plan = Assert.IsType<Admission.NeedsEviction>(Leases.Request(Managed("vllm", 6500, 1)));

        Assert.Equal(["comfyui", "tts"], plan.Victims.Select(v => v.Holder));
        Assert.Equal(3, Leases.All.Count);
    }

    [Fact]
    public void Adopted_and_equally_important_leases_are_never_evicted()
    {
        Granted(Adopted("ollama", 6000, 4));
        Granted(Managed("stt", 1000, 1));

        Assert.IsType<Admission.Refused>(Leases.Request(Managed("vllm", 5000, 1)));
    }

    [Fact]
    public void Client_leases_expire_when_their_ttl_passes()
    {
        var lease = Granted(new LeaseRequest("script", null, 0, 1000, 5, HolderOrigin.Client, TimeSpan.FromSeconds(30)));

        _engine.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(Leases.ExpireDue());
        _engine.Time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal([lease.LeaseId], Leases.ExpireDue().Select(l => l.LeaseId));
        Assert.Empty(Leases.All);
        Assert.Equal(HistoryKind.Expired, _history.Events[^1].Kind);
    }

    [Fact]
    public void Unknown_gpus_and_negative_sizes_are_refused()
    {
        var noGpu = Assert.IsType<Admission.Refused>(Leases.Request(Managed("x", 1, 1) with { GpuIndex = 3 }));
        Assert.Equal(RefusalKind.UnknownGpu, noGpu.Why);
        Assert.Contains("has no GPU 3", noGpu.Reason, StringComparison.Ordinal);
        // An unknown GPU is named before a malformed size.
        Assert.Equal(RefusalKind.UnknownGpu, Assert.IsType<Admission.Refused>(Leases.Request(Managed("x", -1, 1) with { GpuIndex = 7 })).Why);
        var negative = Assert.IsType<Admission.Refused>(Leases.Request(Managed("x", -1, 1)));
        Assert.Equal(RefusalKind.Invalid, negative.Why);
        Assert.Contains("0 MB or more", negative.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Releasing_twice_is_harmless()
    {
        var lease = Granted(Managed("x", 100, 1));

        Assert.True(Leases.Release(lease.LeaseId, HistoryKind.Released, "done"));
        Assert.False(Leases.Release(lease.LeaseId, HistoryKind.Released, "again"));
        Assert.Equal([HistoryKind.Granted, HistoryKind.Released], _history.Events.Select(e => e.Kind));
    }

    [Fact]
    public async Task The_sum_of_granted_leases_never_exceeds_the_total_under_concurrency()
    {
        const long Total = 8192;
        var violations = 0;
        var granted = 0;
        using var stop = new CancellationTokenSource();

        var checker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (Leases.All.Where(l => l.GpuIndex == 0).Sum(l => l.Mb) > Total)
                {
                    Interlocked.Increment(ref violations);
                }
            }
        }, TestContext.Current.CancellationToken);

        var workers = Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            var random = new Random(worker);
            var mine = new List<string>();
            for (var i = 0; i < 3000; i++)
            {
                if (mine.Count > 0 && random.Next(3) == 0)
                {
                    var index = random.Next(mine.Count);
                    Leases.Release(mine[index], HistoryKind.Released, "test");
                    mine.RemoveAt(index);
                    continue;
                }

                if (Leases.Request(Managed($"w{worker}", random.Next(1, 3000), 1)) is Admission.Granted g)
                {
                    mine.Add(g.Lease.LeaseId);
                    Interlocked.Increment(ref granted);
                }
            }
        }, TestContext.Current.CancellationToken)).ToArray();

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        await stop.CancelAsync();
        await checker.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(0, violations);
        Assert.True(granted > 1000, $"only {granted} grants: the test did not exercise contention");
        Assert.True(Leases.All.Sum(l => l.Mb) <= Total);
    }

    [Fact]
    public void A_request_that_does_not_fit_revokes_less_important_client_leases_when_that_makes_it_fit()
    {
        var keep = Granted(Client("notebook", 2000, 1));
        var old = Granted(Client("batch", 3000, 3));
        _engine.Time.Advance(TimeSpan.FromSeconds(1));
        var newer = Granted(Client("script", 2000, 3));

        // 1,192 MB left: revoking the newest least important lease (script) is not enough; revoking both priority-3 ones is.
        var lease = Granted(Managed("vllm", 5000, 2));

        Assert.Equal(new[] { keep.LeaseId, lease.LeaseId }.Order(StringComparer.Ordinal), Leases.All.Select(l => l.LeaseId).Order(StringComparer.Ordinal));
        Assert.Null(Leases.Get(old.LeaseId));
        Assert.Null(Leases.Get(newer.LeaseId));
        var revoked = _history.Events.Where(e => e.Kind == HistoryKind.Evicted).ToList();
        Assert.Equal([newer.LeaseId, old.LeaseId], revoked.Select(e => e.LeaseId));
        Assert.All(revoked, e => Assert.Equal("revoked: vllm (priority 2) took its place with 5000 MB", e.Reason));
    }

    [Fact]
    public void A_client_lease_whose_memory_is_really_in_use_is_not_revoked_and_the_refusal_names_the_holders()
    {
        var client = Granted(Client("script", 5000, 3));
        _engine.SetUsage(0, 4242, 5000, "python");

        var refused = Assert.IsType<Admission.Refused>(Leases.Request(Managed("vllm", 5000, 1)));

        Assert.StartsWith("Insufficient VRAM on GPU 0", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("script 5000 MB (client, priority 3)", refused.Reason, StringComparison.Ordinal);
        Assert.NotNull(Leases.Get(client.LeaseId));
        Assert.DoesNotContain(_history.Events, e => e.Kind == HistoryKind.Evicted);
    }

    [Fact]
    public void A_client_lease_as_important_as_the_request_is_never_revoked()
    {
        var client = Granted(Client("script", 5000, 2));

        Assert.IsType<Admission.Refused>(Leases.Request(Managed("vllm", 5000, 2)));
        Assert.NotNull(Leases.Get(client.LeaseId));
    }

    [Fact]
    public void A_lease_lends_a_more_important_one_only_what_it_needs_and_takes_it_back_when_that_lease_ends()
    {
        // An Ollama with a 6,000 MB budget measuring 6,391 MB on an 8,192 MB GPU.
        var ollama = Granted(new LeaseRequest("ollama", "ollama", 0, 6000, 2, HolderOrigin.Adopted) { AlreadyRunning = true });
        Measure(ollama, 6391);
        var batch = Client("batch", 5000, 1);

        // 5,000 MB need 8,192 − 5,000 = 3,192 MB left for Ollama: it lends 2,808 of its budget, no more.
        var token = Leases.Lend(ollama.LeaseId, batch);
        Assert.NotNull(token);
        Assert.Equal(2808, Leases.Get(ollama.LeaseId)!.LentMb);

        // Its idle models unloaded, it measures 1,925 MB and holds 3,192 MB: the batch job fits, exactly.
        Measure(ollama, 1925);
        Assert.Equal(3192, Leases.Get(ollama.LeaseId)!.HeldMb);
        var granted = Granted(batch);
        Leases.ConfirmLoan(ollama.LeaseId, token!, granted.LeaseId);

        // What it lent is the batch job's, not anyone else's.
        Assert.IsType<Admission.Refused>(Leases.Request(Client("other", 100, 5)));

        // The batch job ends: Ollama's budget is whole again.
        Assert.True(Leases.Release(granted.LeaseId, HistoryKind.Released, "done"));
        Assert.Equal((0L, 6000L), (Leases.Get(ollama.LeaseId)!.LentMb, Leases.Get(ollama.LeaseId)!.HeldMb));
    }

    [Fact]
    public void A_loan_whose_request_was_never_granted_or_whose_lease_is_already_gone_ends_at_once()
    {
        var ollama = Granted(new LeaseRequest("ollama", "ollama", 0, 6000, 2, HolderOrigin.Adopted) { AlreadyRunning = true });
        Measure(ollama, 6000);

        var refused = Leases.Lend(ollama.LeaseId, Client("a", 5000, 1))!;
        var gone = Leases.Lend(ollama.LeaseId, Client("b", 6000, 1))!;
        Assert.Equal([2808L, 1000L], Leases.Get(ollama.LeaseId)!.Loans.Select(l => l.Mb));

        Leases.EndLoan(ollama.LeaseId, refused);
        Leases.ConfirmLoan(ollama.LeaseId, gone, "lease-released-meanwhile");

        Assert.Empty(Leases.Get(ollama.LeaseId)!.Loans);
        Assert.Equal(6000, Leases.Get(ollama.LeaseId)!.HeldMb);

        // Room enough already: nothing is lent.
        Assert.Null(Leases.Lend(ollama.LeaseId, Client("c", 1000, 1)));
    }

    // A loan outlives its lender's lease: it is kept across a restart of cf-orch and across the lender's own stop or loss,
    // made again whichever side comes back first, and ends with the lease it was made for — never left behind, never
    // over-committing the GPU.

    [Fact]
    public void An_ollama_lost_while_what_it_lent_is_held_comes_back_lending_it_again_and_takes_it_back_when_that_lease_ends()
    {
        var (ollama, batch) = Lent();
        Assert.Equal([new KeptLoan(Leases.NodeId, 0, "ollama", batch.LeaseId, "batch", null, HolderOrigin.Client, 2808)], _store.Kept);

        // Ollama stops answering: its lease ends, the loan waits for its next one (and is still kept).
        Assert.True(Leases.Release(ollama.LeaseId, HistoryKind.Lost, "gone"));
        Assert.Equal([batch.LeaseId], Leases.ExpectedLoans.Select(k => k.ForLeaseId));
        Assert.Single(_store.Kept);

        // Adopted again at its 6,000 MB budget: only 3,192 MB are left beside the batch job, which it gets by lending the
        // 2,808 MB again — instead of a refusal, or a GPU over-committed by 2,808 MB.
        var back = Granted(Adopted("ollama", 6000, 2));
        Assert.Equal((batch.LeaseId, 2808L), (back.Loans.Single().ForLeaseId, back.Loans.Single().Mb));
        Assert.Equal(3192, back.HeldMb);
        Assert.False(Leases.Account(0)!.Overcommitted);
        Assert.Empty(Leases.ExpectedLoans);

        Assert.True(Leases.Release(batch.LeaseId, HistoryKind.Released, "done"));
        Assert.Equal((0L, 6000L), (Leases.Get(back.LeaseId)!.LentMb, Leases.Get(back.LeaseId)!.HeldMb));
        Assert.Empty(_store.Kept);
    }

    [Fact]
    public void Without_the_kept_loan_the_same_ollama_would_come_back_without_a_lease()
    {
        // The control for the test above: the same books with the loan forgotten refuse the Ollama.
        var (ollama, _) = Lent();
        Leases.Release(ollama.LeaseId, HistoryKind.Lost, "gone");
        Leases.SettleExpectedLoans();
        Assert.Single(Leases.ExpectedLoans);

        using var other = new EngineHarness();
        var leases = other.Get<LeaseManager>();
        leases.Request(Client("batch", 5000, 1));
        Assert.IsType<Admission.Refused>(leases.Request(Adopted("ollama", 6000, 2)));
    }

    [Fact]
    public void After_a_restart_the_service_it_was_made_for_comes_back_first_and_the_adopted_ollama_lends_to_its_new_lease()
    {
        // Kept before the restart: lent to the managed 'worker', whose lease gets a new id when it is re-attached.
        Leases.ExpectLoans([new KeptLoan(Leases.NodeId, 0, "ollama", "lease-before", "worker", "worker", HolderOrigin.Managed, 2808)]);

        var worker = Granted(new LeaseRequest("worker", "worker", 0, 5000, 1, HolderOrigin.Managed) { AlreadyRunning = true });
        Assert.Equal([worker.LeaseId], Leases.ExpectedLoans.Select(k => k.ForLeaseId));

        var ollama = Granted(Adopted("ollama", 6000, 2));
        Assert.Equal(("worker", worker.LeaseId, 2808L), (ollama.Loans.Single().ForHolder, ollama.Loans.Single().ForLeaseId, ollama.Loans.Single().Mb));
        Assert.Empty(Leases.SettleExpectedLoans());
        Assert.Equal([new KeptLoan(Leases.NodeId, 0, "ollama", worker.LeaseId, "worker", "worker", HolderOrigin.Managed, 2808)], _store.Kept);

        Leases.Release(worker.LeaseId, HistoryKind.Stopped, "stopped");
        Assert.Equal(0, Leases.Get(ollama.LeaseId)!.LentMb);
    }

    [Fact]
    public void After_a_restart_the_lender_comes_back_first_and_the_clients_lease_is_held_again_in_what_it_lent()
    {
        var before = new Lease
        {
            LeaseId = "lease-batch",
            NodeId = Leases.NodeId,
            GpuIndex = 0,
            Holder = "batch",
            Mb = 5000,
            Priority = 1,
            Origin = HolderOrigin.Client,
            GrantedAt = _engine.Time.GetUtcNow(),
        };
        Leases.ExpectLoans([new KeptLoan(Leases.NodeId, 0, "ollama", "lease-batch", "batch", null, HolderOrigin.Client, 2808)]);

        // A managed Ollama re-attached first holds its whole budget: the client's lease would not fit beside it…
        var ollama = Granted(new LeaseRequest("ollama", "ollama", 0, 6000, 2, HolderOrigin.Managed) { AlreadyRunning = true });
        Assert.Empty(ollama.Loans);

        // …but what Ollama lent it is counted: it is held again, with the loan made again.
        var batch = Granted(new LeaseRequest("batch", null, 0, 5000, 1, HolderOrigin.Client) { Restoring = before, AlreadyRunning = true });
        Assert.Equal("lease-batch", batch.LeaseId);
        var lender = Leases.Get(ollama.LeaseId)!;
        Assert.Equal(("lease-batch", 2808L, 3192L), (lender.Loans.Single().ForLeaseId, lender.LentMb, lender.HeldMb));
        Assert.False(Leases.Account(0)!.Overcommitted);
        Assert.Empty(Leases.ExpectedLoans);
    }

    [Fact]
    public void A_kept_loan_whose_lease_did_not_come_back_ends_once_start_up_is_done_and_is_forgotten_by_the_store()
    {
        var gone = new KeptLoan(Leases.NodeId, 0, "ollama", "lease-gone", "worker", "worker", HolderOrigin.Managed, 2808);
        Leases.ExpectLoans([gone]);
        var ollama = Granted(Adopted("ollama", 6000, 2));
        Assert.Empty(ollama.Loans);

        Assert.Equal([gone], Leases.SettleExpectedLoans());
        Assert.Empty(Leases.ExpectedLoans);

        // What the store held from before is replaced by nothing.
        Assert.Equal(1, _store.Writes);
        Assert.Empty(_store.Kept);

        // A service of that name started later borrows nothing.
        var worker = Granted(Managed("worker", 2000, 1));
        Assert.Equal(0, Leases.Get(ollama.LeaseId)!.LentMb);
        Assert.Empty(Leases.Get(worker.LeaseId)!.Loans);
    }

    [Fact]
    public void A_kept_loan_lends_no_more_than_the_lenders_budget_when_the_profile_lowered_it_meanwhile()
    {
        Leases.ExpectLoans([new KeptLoan(Leases.NodeId, 0, "ollama", "lease-batch", "batch", null, HolderOrigin.Client, 2808)]);
        Granted(new LeaseRequest("batch", null, 0, 5000, 1, HolderOrigin.Client)
        {
            Restoring = new Lease { LeaseId = "lease-batch", NodeId = Leases.NodeId, GpuIndex = 0, Holder = "batch", Mb = 5000, Priority = 1, Origin = HolderOrigin.Client, GrantedAt = _engine.Time.GetUtcNow() },
            AlreadyRunning = true,
        });

        // The profile now gives Ollama 2,000 MB: it lends all of it, not the 2,808 MB it lent before, and holds nothing more.
        var ollama = Granted(Adopted("ollama", 2000, 2));

        Assert.Equal((2000L, 0L), (ollama.LentMb, ollama.HeldMb));
        Assert.Equal([new KeptLoan(Leases.NodeId, 0, "ollama", "lease-batch", "batch", null, HolderOrigin.Client, 2000)], _store.Kept);
    }

    [Fact]
    public void A_lease_revoked_for_a_more_important_one_ends_the_loan_it_was_given()
    {
        var (ollama, batch) = Lent();

        // A priority-0 client needs room: the less important batch job's lease is revoked, and Ollama takes back what it lent it.
        var urgent = Granted(Client("urgent", 2000, 0));

        Assert.Null(Leases.Get(batch.LeaseId));
        Assert.NotNull(Leases.Get(urgent.LeaseId));
        Assert.Equal((0L, 6000L), (Leases.Get(ollama.LeaseId)!.LentMb, Leases.Get(ollama.LeaseId)!.HeldMb));
        Assert.Empty(_store.Kept);
    }

    /// <summary>An adopted Ollama (6,000 MB budget, priority 2) that lent 2,808 MB to a 5,000 MB client lease, as <see cref="Core.Orchestration.IdleModelEviction"/> does.</summary>
    private (Lease Ollama, Lease Batch) Lent()
    {
        var ollama = Granted(Adopted("ollama", 6000, 2));
        Measure(ollama, 6391);
        var request = Client("batch", 5000, 1);
        var token = Leases.Lend(ollama.LeaseId, request)!;
        Assert.Empty(_store.Kept);
        Measure(ollama, 1925);
        var batch = Granted(request);
        Leases.ConfirmLoan(ollama.LeaseId, token, batch.LeaseId);
        return (Leases.Get(ollama.LeaseId)!, batch);
    }

    /// <summary>What a measurement records: the holder's use on its lease and on the GPU.</summary>
    private void Measure(Lease lease, long mb)
    {
        _engine.SetUsage(0, 4242, mb, lease.Holder);
        Leases.UpdateMeasured(lease.LeaseId, mb);
    }

    private Lease Granted(LeaseRequest request) => Assert.IsType<Admission.Granted>(Leases.Request(request)).Lease;

    private static LeaseRequest Managed(string holder, long mb, int priority) => new(holder, holder, 0, mb, priority, HolderOrigin.Managed);

    private static LeaseRequest Client(string holder, long mb, int priority) => new(holder, null, 0, mb, priority, HolderOrigin.Client);

    private static LeaseRequest Adopted(string holder, long mb, int priority) => new(holder, holder, 0, mb, priority, HolderOrigin.Adopted) { AlreadyRunning = true };

    private sealed class RecordingHistory : IHistorySink
    {
        private readonly List<HistoryEvent> _events = [];

        public IReadOnlyList<HistoryEvent> Events
        {
            get
            {
                lock (_events)
                {
                    return _events.ToList();
                }
            }
        }

        public void Record(HistoryEvent historyEvent)
        {
            lock (_events)
            {
                _events.Add(historyEvent);
            }
        }
    }

    /// <summary>Keeps what it is given, as the database would.</summary>
    private sealed class RecordingStore : ILeaseStore
    {
        private readonly Lock _lock = new();
        private IReadOnlyList<KeptLoan> _kept = [];

        public IReadOnlyList<KeptLoan> Kept
        {
            get
            {
                lock (_lock)
                {
                    return _kept;
                }
            }
        }

        public int Writes { get; private set; }

        public void KeepLoans(IReadOnlyList<KeptLoan> loans)
        {
            lock (_lock)
            {
                _kept = loans;
                Writes++;
            }
        }

        public Task<IReadOnlyList<KeptLoan>> LoadLoansAsync(CancellationToken cancellationToken) => Task.FromResult(Kept);

        public Task<IReadOnlyList<Lease>> LoadClientLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<Lease>>([]);

        public Task<IReadOnlyList<OpenLease>> OpenLeasesAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<OpenLease>>([]);

        public Task<DateTimeOffset?> LastEventAtAsync(CancellationToken cancellationToken) => Task.FromResult<DateTimeOffset?>(null);
    }
}
