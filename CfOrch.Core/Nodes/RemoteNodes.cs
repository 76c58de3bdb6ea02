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
