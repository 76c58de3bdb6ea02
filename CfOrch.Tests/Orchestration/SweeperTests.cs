using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Orchestration;

/// <summary>The sweep runs when a TTL is due, not on a timer: asleep while nothing has a deadline.</summary>
public sealed class SweeperTests : IDisposable
{
    private readonly EngineHarness _engine = new();

    public void Dispose() => _engine.Dispose();

    private Sweeper Sweeper => _engine.Get<Sweeper>();

    private LeaseManager Leases => _engine.Get<LeaseManager>();

    [Fact]
    public async Task The_sweep_sleeps_with_nothing_due_wakes_for_a_lease_and_expires_it_when_its_ttl_runs_out()
    {
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loop = Sweeper.RunAsync(stop.Token);
        await Eventually.TrueAsync(() => Sweeper.SleepingUntil == DateTimeOffset.MaxValue, "the sweep to sleep until woken");

        // A lease with a TTL wakes it; a burst of changes is gathered for the minimum gap, then it sleeps until the TTL.
        var granted = _engine.Time.GetUtcNow();
        var lease = Assert.IsType<Admission.Granted>(Leases.Request(new LeaseRequest("script", null, 0, 1000, 5, HolderOrigin.Client, TimeSpan.FromSeconds(30)))).Lease;
        await Eventually.TrueAsync(() => Sweeper.SleepingUntil == granted + Sweeper.MinimumGap, "the sweep to gather the burst");
        _engine.Time.Advance(Sweeper.MinimumGap);
        await Eventually.TrueAsync(() => Sweeper.SleepingUntil == granted + TimeSpan.FromSeconds(30), "the sweep to sleep until the TTL");
        Assert.Equal(granted + TimeSpan.FromSeconds(30), Sweeper.NextDue());

        // One tick before its TTL it is held; at its TTL it is gone.
        _engine.Time.Advance(TimeSpan.FromSeconds(30) - Sweeper.MinimumGap - TimeSpan.FromMilliseconds(1));
        Assert.Equal([lease.LeaseId], Leases.All.Select(l => l.LeaseId));
        _engine.Time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.TrueAsync(() => Leases.All.Count == 0, "the lease to expire");
        Assert.Null(Sweeper.NextDue());

        await stop.CancelAsync();
        await loop.WaitAsync(Eventually.Deadline, ct);
    }
}
