using CfOrch.Core.Gpus;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;

namespace CfOrch.Core.State;

/// <summary>One change of the engine's state, as pushed to the dashboard and the event stream.</summary>
public abstract record StateChange;

public sealed record InstanceChanged(InstanceSnapshot Instance) : StateChange;

public sealed record InstanceRemoved(InstanceKey Key) : StateChange;

public sealed record LeaseGranted(Lease Lease) : StateChange;

public sealed record LeaseUpdated(Lease Lease) : StateChange;

public sealed record LeaseReleased(Lease Lease, HistoryKind Kind, string Reason) : StateChange;

public sealed record AllocationChanged(Allocation Allocation) : StateChange;

public sealed record AllocationReleased(Allocation Allocation, string Reason) : StateChange;

public sealed record GpusChanged(GpuSnapshot Gpus, IReadOnlyList<GpuAccount> Accounts) : StateChange;

/// <summary>The whole engine state at one moment: what a new subscriber starts from.</summary>
public sealed record EngineSnapshot(
    long Version,
    IReadOnlyList<InstanceSnapshot> Instances,
    IReadOnlyList<Lease> Leases,
    IReadOnlyList<Allocation> Allocations,
    GpuSnapshot Gpus,
    IReadOnlyList<GpuAccount> Accounts);
