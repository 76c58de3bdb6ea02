using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Orchestration;

/// <summary>The sweep runs when a TTL is due, not on a timer: asleep while nothing has a deadline.</summary>
public sealed class SweeperTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
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
        await UntilAsync(() => Sweeper.SleepingUntil == DateTimeOffset.MaxValue);

        // A lease with a TTL wakes it; a burst of changes is gathered for the minimum gap, then it sleeps until the TTL.
        var granted = _engine.Time.GetUtcNow();
        var lease = Assert.IsType<Admission.Granted>(Leases.Request(new LeaseRequest("script", null, 0, 1000, 5, HolderOrigin.Client, TimeSpan.FromSeconds(30)))).Lease;
        await UntilAsync(() => Sweeper.SleepingUntil == granted + Sweeper.MinimumGap);
        _engine.Time.Advance(Sweeper.MinimumGap);
        await UntilAsync(() => Sweeper.SleepingUntil == granted + TimeSpan.FromSeconds(30));
        Assert.Equal(granted + TimeSpan.FromSeconds(30), Sweeper.NextDue());

        // One tick before its TTL it is held; at its TTL it is gone.
        _engine.Time.Advance(TimeSpan.FromSeconds(30) - Sweeper.MinimumGap - TimeSpan.FromMilliseconds(1));
        Assert.Equal([lease.LeaseId], Leases.All.Select(l => l.LeaseId));
        _engine.Time.Advance(TimeSpan.FromMilliseconds(1));
        await UntilAsync(() => Leases.All.Count == 0);
        Assert.Null(Sweeper.NextDue());

        await stop.CancelAsync();
        await loop.WaitAsync(Deadline, ct);
    }

    /// <summary>Waits (on the real clock, bounded) for a condition another thread makes true.</summary>
    private static async Task UntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "the condition did not come true in time");
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
    }
}
