using CfOrch.Core.Changes;

namespace CfOrch.Core.Nodes;

/// <summary>A GPU of another node, as its agent last reported it.</summary>
public sealed record RemoteGpu(int GpuId, string Name, long TotalMb, long UsedMb, long FreeMb);

/// <summary>
/// Another node (a cf-orch agent) as the coordinator last saw it: whether it counts as online, when it last answered
/// (null: never), why its last poll failed, and its GPUs as it last reported them.
/// </summary>
public sealed record RemoteNodeState(string NodeId, string AgentUrl, bool Online, DateTimeOffset? LastHeartbeat, string? Problem, IReadOnlyList<RemoteGpu> Gpus);

/// <summary>The registered nodes changed (one registered, went offline, came back, reported new figures).</summary>
public sealed record NodesChanged(IReadOnlyList<RemoteNodeState> Nodes) : StateChange;

/// <summary>The other nodes as the coordinator last saw them: what leases on their GPUs are decided against.</summary>
public interface IRemoteNodes
{
    /// <summary>The registered node of that id (null: none is).</summary>
    RemoteNodeState? Find(string nodeId);

    IReadOnlyList<RemoteNodeState> All { get; }
}

public static class RemoteNodesExtensions
{
    /// <summary>Why a node id is refused: "unknown node_id 'nas': this cf-orch is node 'tower', and knows heimdall".</summary>
    public static string UnknownNode(this IRemoteNodes nodes, string nodeId, string localNodeId)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var known = nodes.All;
        return $"unknown node_id '{nodeId}': this cf-orch is node '{localNodeId}'{(known.Count == 0 ? "" : $", and knows {string.Join(", ", known.Select(n => n.NodeId))}")}";
    }
}

/// <summary>No other node: a cf-orch on its own (and the agent role).</summary>
public sealed class NoRemoteNodes : IRemoteNodes
{
    public IReadOnlyList<RemoteNodeState> All => [];

    public RemoteNodeState? Find(string nodeId) => null;
}

/// <summary>
/// The instances the coordinator placed on other nodes, as an allocation claims one (see
/// <see cref="Orchestration.Orchestrator.AllocateOnAsync"/>): a claim and the undo of a start exclude each other per
/// instance, so an undo never stops what a claim made meanwhile holds, and a claim never lands on what an undo stopped.
/// </summary>
public interface IRemoteInstances
{
    /// <summary>
    /// Runs <paramref name="claim"/> under the instance's lock while the instance still runs the run of
    /// <paramref name="ensured"/> (the same <c>Since</c>, not stopping); false, with nothing run, when that run ended or
    /// is being stopped.
    /// </summary>
    Task<bool> ClaimAsync(Instances.InstanceSnapshot ensured, Action claim, CancellationToken cancellationToken);

    /// <summary>
    /// Stops an instance an allocation started there and then refused (through its agent, its lease released), unless
    /// it is allocated meanwhile, ended meanwhile or is another run by now; says which.
    /// </summary>
    Task<Orchestration.UndoOutcome> UndoStartAsync(Instances.InstanceSnapshot started, string reason);
}
