using System.Runtime.CompilerServices;
using System.Threading.Channels;
using CfOrch.Core.Changes;

namespace CfOrch.Core.State;

/// <summary>
/// The live state stream (Aspire's pattern): subscribe → an immutable snapshot plus the changes after it, in batches,
/// one channel per subscriber. The stream keeps its own <see cref="EngineState"/> by applying every published change,
/// so a snapshot and the changes that follow it never overlap or leave a gap.
/// </summary>
public sealed class StateStream : IStatePublisher
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

    /// <summary>Raised after each change is applied (under the stream's lock: a handler only signals, it never blocks).</summary>
    public event Action<StateChange>? Published;

    public void Publish(StateChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            _state.Apply(change);
            Published?.Invoke(change);
            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                if (!_subscribers[i].Writer.TryWrite(change))
                {
                    // A bounded subscriber that fell too far behind: it is dropped, and told so once it has read what
                    // it has; it subscribes again for a fresh snapshot.
                    _subscribers[i].Writer.TryComplete(new StateStreamOverflowException());
                    _subscribers.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>
    /// The current state and every change after it, until <paramref name="cancellationToken"/> is cancelled. With
    /// <paramref name="maxBacklog"/>, a subscriber that lets more changes than that wait unread (a stalled network client)
    /// is dropped: reading on ends with <see cref="StateStreamOverflowException"/> instead of memory growing forever.
    /// </summary>
    public StateSubscription Subscribe(CancellationToken cancellationToken, int? maxBacklog = null)
    {
        var channel = maxBacklog is { } max
            ? Channel.CreateBounded<StateChange>(new BoundedChannelOptions(max) { SingleReader = true, SingleWriter = false, FullMode = BoundedChannelFullMode.Wait })
            : Channel.CreateUnbounded<StateChange>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
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

/// <summary>A subscriber fell too far behind the changes and was dropped; a new subscription starts from a fresh snapshot.</summary>
public sealed class StateStreamOverflowException : Exception
{
    public StateStreamOverflowException()
        : base("the subscriber fell too far behind the changes and was dropped; subscribe again for a fresh snapshot")
    {
    }

    public StateStreamOverflowException(string message)
        : base(message)
    {
    }

    public StateStreamOverflowException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>An immutable snapshot and the batches of changes that follow it.</summary>
public sealed record StateSubscription(EngineSnapshot Initial, IAsyncEnumerable<IReadOnlyList<StateChange>> Changes);
