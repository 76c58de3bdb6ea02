using CfOrch.Core.History;
using CfOrch.Core.Leases;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Leases;

public sealed class LeaseManagerTests : IDisposable
{
    private readonly RecordingHistory _history = new();
    private readonly EngineHarness _engine;

    public LeaseManagerTests() =>
        _engine = new EngineHarness(configure: s => s.Replace(ServiceDescriptor.Singleton<IHistorySink>(_history)));

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
}
