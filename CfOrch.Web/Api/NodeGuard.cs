using CfOrch.Core.Orchestration;

namespace CfOrch.Web.Api;

/// <summary>
/// cf-orch manages services on its own node only: a request for another node is refused with a clear 422 (unknown
/// node), or says that the registered node is not managed from here.
/// </summary>
public sealed class NodeGuard(Orchestrator orchestrator, NodeDirectory nodes)
{
    public void Check(string? nodeId)
    {
        if (string.IsNullOrEmpty(nodeId) || nodeId == orchestrator.NodeId)
        {
            return;
        }

        throw nodes.Find(nodeId) is null
            ? new ApiException(StatusCodes.Status422UnprocessableEntity, $"unknown node_id '{nodeId}': this cf-orch is node '{orchestrator.NodeId}'")
            : new ApiException(StatusCodes.Status422UnprocessableEntity, $"node '{nodeId}' is registered, but this cf-orch starts and stops services only on its own node '{orchestrator.NodeId}'");
    }
}
