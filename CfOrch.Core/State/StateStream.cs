using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CfOrch.Core.State;

/// <summary>
/// The live state stream (Aspire's pattern): subscribe → an immutable snapshot plus the changes after it, in batches,
/// one channel per subscriber. The stream keeps its own <see cref="EngineState"/> by applying every published change,
/// so a snapshot and the changes that follow it never overlap or leave a gap.
/// </summary>
public sealed class StateStream
{
    private readonly Lock _lock = new();
    private readonly List<Channel<StateChange>> _subscribers = [];
    private readonly EngineState _state = new();

    public int SubscriberCount
    {
        get
        {
            lock (_lock)
            {
                return _subscribers.Count;
            }
        }
    }

    public EngineSnapshot Snapshot()
    {
        lock (_lock)
        {
            return _state.Snapshot();
        }
    }

    public void Publish(StateChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            _state.Apply(change);
            foreach (var subscriber in _subscribers)
            {
                subscriber.Writer.TryWrite(change);
            }
        }
    }

    /// <summary>The current state and every change after it, until <paramref name="cancellationToken"/> is cancelled.</summary>
    public StateSubscription Subscribe(CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<StateChange>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        EngineSnapshot snapshot;
        lock (_lock)
        {
            snapshot = _state.Snapshot();
            _subscribers.Add(channel);
        }

        // A subscriber that stops without enumerating to the end is removed when its token is cancelled.
        cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                _subscribers.Remove(channel);
            }

            channel.Writer.TryComplete();
        });

        return new StateSubscription(snapshot, ReadBatches(channel, cancellationToken));
    }

    private async IAsyncEnumerable<IReadOnlyList<StateChange>> ReadBatches(Channel<StateChange> channel, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken))
            {
                // Everything already queued goes out together: bursts are batched, a lone change is not delayed.
                var batch = new List<StateChange>();
                while (batch.Count < 1000 && channel.Reader.TryRead(out var change))
                {
                    batch.Add(change);
                }

                if (batch.Count > 0)
                {
                    yield return batch;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _subscribers.Remove(channel);
            }
        }
    }
}

/// <summary>An immutable snapshot and the batches of changes that follow it.</summary>
public sealed record StateSubscription(EngineSnapshot Initial, IAsyncEnumerable<IReadOnlyList<StateChange>> Changes);
