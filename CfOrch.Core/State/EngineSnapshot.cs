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
    IReadOnlyList<GpuAccount> Accounts)
{
    /// <summary>Whether each runtime (process, docker) can start services now, and why not.</summary>
    public IReadOnlyList<Runtimes.RuntimeStatus> Runtimes { get; init; } = [];

    /// <summary>The other nodes (cf-orch agents) that registered, as last polled.</summary>
    public IReadOnlyList<Nodes.RemoteNodeState> Nodes { get; init; } = [];

    /// <summary>The status of the runtime of <paramref name="kind"/>, or null when it has not reported one.</summary>
    public Runtimes.RuntimeStatus? Runtime(string kind) => Runtimes.FirstOrDefault(r => r.Kind == kind);
}
