using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Allocations;
using CfOrch.Core.Changes;

namespace CfOrch.Core.State;

/// <summary>
/// The engine's state rebuilt from changes: the state stream keeps one to hand snapshots to new subscribers, and each
/// subscriber (a dashboard circuit) can keep its own from the snapshot it started with. Not thread-safe.
/// </summary>
public sealed class EngineState
{
    private readonly Dictionary<InstanceKey, InstanceSnapshot> _instances = [];
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Allocation> _allocations = new(StringComparer.Ordinal);
    private GpuSnapshot _gpus = GpuSnapshot.Empty(GpuSource.None, null);
    private IReadOnlyList<GpuAccount> _accounts = [];
    private readonly SortedDictionary<string, Runtimes.RuntimeStatus> _runtimes = new(StringComparer.Ordinal);
    private IReadOnlyList<Nodes.RemoteNodeState> _nodes = [];

    public EngineState()
    {
    }

    public EngineState(EngineSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Version = snapshot.Version;
        foreach (var i in snapshot.Instances)
        {
            _instances[i.Key] = i;
        }

        foreach (var l in snapshot.Leases)
        {
            _leases[l.LeaseId] = l;
        }

        foreach (var a in snapshot.Allocations)
        {
            _allocations[a.AllocationId] = a;
        }

        _gpus = snapshot.Gpus;
        _accounts = snapshot.Accounts;
        foreach (var r in snapshot.Runtimes)
        {
            _runtimes[r.Kind] = r;
        }

        _nodes = snapshot.Nodes;
    }

    public long Version { get; private set; }

    public void Apply(StateChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        Version++;
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
            case Runtimes.RuntimeStatusChanged c:
                _runtimes[c.Status.Kind] = c.Status;
                break;
            case Nodes.NodesChanged c:
                _nodes = c.Nodes;
                break;
        }
    }

    public EngineSnapshot Snapshot() => new(
        Version,
        _instances.Values.OrderBy(i => i.Key.Service, StringComparer.Ordinal).ThenBy(i => i.Key.GpuIndex).ToArray(),
        _leases.Values.OrderBy(l => l.GpuIndex).ThenBy(l => l.GrantedAt).ToArray(),
        _allocations.Values.OrderBy(a => a.CreatedAt).ToArray(),
        _gpus,
        _accounts)
    {
        Runtimes = _runtimes.Values.ToArray(),
        Nodes = _nodes,
    };
}
