using CfOrch.Core.Allocations;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;

namespace CfOrch.Core.State;

/// <summary>The whole engine state at one moment: what a new subscriber starts from.</summary>
public sealed record EngineSnapshot(
    long Version,
    IReadOnlyList<InstanceSnapshot> Instances,
    IReadOnlyList<Lease> Leases,
    IReadOnlyList<Allocation> Allocations,
    GpuSnapshot Gpus,
    IReadOnlyList<GpuAccount> Accounts);
