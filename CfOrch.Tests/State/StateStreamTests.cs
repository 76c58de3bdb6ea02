using CfOrch.Core.Changes;
using CfOrch.Core.Instances;
using CfOrch.Core.State;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.State;

public sealed class StateStreamTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_bounded_subscriber_that_stops_reading_is_dropped_after_reading_what_it_had_while_others_go_on()
    {
        var stream = new StateStream();
        var registry = new InstanceRegistry(stream);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var slow = stream.Subscribe(cts.Token, maxBacklog: 10);
        var steady = stream.Subscribe(cts.Token);

        for (var i = 0; i < 25; i++)
        {
            registry.Set(TestInstances.Running($"s{i}"));
        }

        Assert.Equal(1, stream.SubscriberCount);
        var read = 0;
        var overflow = await Assert.ThrowsAsync<StateStreamOverflowException>(async () =>
        {
            await foreach (var batch in slow.Changes.WithCancellation(cts.Token))
            {
                read += batch.Count;
            }
        }).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.Equal(10, read);
        Assert.Contains("subscribe again for a fresh snapshot", overflow.Message, StringComparison.Ordinal);

        await using var changes = steady.Changes.GetAsyncEnumerator(cts.Token);
        Assert.True(await changes.MoveNextAsync().AsTask().WaitAsync(Deadline, TestContext.Current.CancellationToken));
        Assert.Equal(25, changes.Current.Count);
    }

    [Fact]
    public async Task A_subscriber_gets_a_snapshot_and_then_every_later_change_in_order()
    {
        var stream = new StateStream();
        var registry = new InstanceRegistry(stream);
        registry.Set(TestInstances.Running("before"));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var subscription = stream.Subscribe(cts.Token);
        registry.Set(TestInstances.Running("after-1"));
        registry.Set(TestInstances.Running("after-2"));
        registry.Remove(new InstanceKey("before", "local", 0));

        Assert.Equal(["before"], subscription.Initial.Instances.Select(i => i.Service));
        var seen = new List<StateChange>();
        await foreach (var batch in subscription.Changes.WithCancellation(cts.Token))
        {
            seen.AddRange(batch);
            if (seen.Count >= 3)
            {
                break;
            }
        }

        Assert.Equal(["after-1", "after-2"], seen.OfType<InstanceChanged>().Select(c => c.Instance.Service));
        Assert.IsType<InstanceRemoved>(seen[2]);
        Assert.Equal(["after-1", "after-2"], stream.Snapshot().Instances.Select(i => i.Service));
    }

    [Fact]
    public async Task Changes_queued_together_arrive_as_one_batch()
    {
        var stream = new StateStream();
        var registry = new InstanceRegistry(stream);
        var subscription = stream.Subscribe(TestContext.Current.CancellationToken);
        for (var i = 0; i < 50; i++)
        {
            registry.Set(TestInstances.Running($"s{i}"));
        }

        await using var changes = subscription.Changes.GetAsyncEnumerator(TestContext.Current.CancellationToken);
        Assert.True(await changes.MoveNextAsync().AsTask().WaitAsync(Deadline, TestContext.Current.CancellationToken));

        Assert.Equal(50, changes.Current.Count);
    }

    [Fact]
    public async Task A_cancelled_subscriber_is_removed()
    {
        var stream = new StateStream();
        using var cts = new CancellationTokenSource();
        var subscription = stream.Subscribe(cts.Token);
        Assert.Equal(1, stream.SubscriberCount);

        await cts.CancelAsync();

        Assert.Equal(0, stream.SubscriberCount);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in subscription.Changes.WithCancellation(cts.Token))
            {
            }
        });
    }
}
