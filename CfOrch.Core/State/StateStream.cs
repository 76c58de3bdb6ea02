using System.Runtime.CompilerServices;
using System.Threading.Channels;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;

namespace CfOrch.Core.State;

/// <summary>
/// The live state stream (Aspire's pattern): subscribe → an immutable snapshot plus the changes after it, in batches,
/// one channel per subscriber. The stream keeps its own copy of the state by applying every published change, so a
/// snapshot and the changes that follow it never overlap or leave a gap.
/// </summary>
public sealed class StateStream
{
    private readonly Lock _lock = new();
    private readonly List<Channel<StateChange>> _subscribers = [];
    private readonly Dictionary<InstanceKey, InstanceSnapshot> _instances = [];
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Allocation> _allocations = new(StringComparer.Ordinal);
    private GpuSnapshot _gpus = GpuSnapshot.Empty(GpuSource.None, null);
    private IReadOnlyList<GpuAccount> _accounts = [];
    private long _version;

    public long Version => Interlocked.Read(ref _version);

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
            return TakeSnapshot();
        }
    }

    public void Publish(StateChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            Apply(change);
            Interlocked.Increment(ref _version);
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
            snapshot = TakeSnapshot();
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

    private EngineSnapshot TakeSnapshot() => new(
        _version,
        _instances.Values.OrderBy(i => i.Key.Service, StringComparer.Ordinal).ThenBy(i => i.Key.GpuIndex).ToArray(),
        _leases.Values.OrderBy(l => l.GpuIndex).ThenBy(l => l.GrantedAt).ToArray(),
        _allocations.Values.OrderBy(a => a.CreatedAt).ToArray(),
        _gpus,
        _accounts);

    private void Apply(StateChange change)
    {
        switch (change)
        {
            case InstanceChanged c:
                _instances[c.Instance.Key] = c.Instance;
                break;
            case InstanceRemoved c:
                _instances.Remove(c.Key);
                break;
            case LeaseGranted c:
                _leases[c.Lease.LeaseId] = c.Lease;
                break;
            case LeaseUpdated c:
                _leases[c.Lease.LeaseId] = c.Lease;
                break;
            case LeaseReleased c:
                _leases.Remove(c.Lease.LeaseId);
                break;
            case AllocationChanged c:
                _allocations[c.Allocation.AllocationId] = c.Allocation;
                break;
            case AllocationReleased c:
                _allocations.Remove(c.Allocation.AllocationId);
                break;
            case GpusChanged c:
                _gpus = c.Gpus;
                _accounts = c.Accounts;
                break;
        }
    }
}

/// <summary>An immutable snapshot and the batches of changes that follow it.</summary>
public sealed record StateSubscription(EngineSnapshot Initial, IAsyncEnumerable<IReadOnlyList<StateChange>> Changes);
