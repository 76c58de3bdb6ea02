using CfOrch.Core.Gpus;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;

namespace CfOrch.Web.Api;

public static class NodesApi
{
    /// <summary><c>GET|POST /api/nodes</c>: this node with its GPUs, and the agents that registered.</summary>
    public static IEndpointRouteBuilder MapNodesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/nodes").WithTags("Nodes");
        group.MapGet("", (Orchestrator orchestrator, GpuMonitor gpus, NodeDirectory nodes, HttpContext http) =>
        {
            var local = new
            {
                node_id = orchestrator.NodeId,
                agent_url = $"{http.Request.Scheme}://{http.Request.Host}",
                last_heartbeat = LeaseRow.Unix(gpus.Current.At == DateTimeOffset.MinValue ? DateTimeOffset.UtcNow : gpus.Current.At),
                online = true,
                local = true,
                gpus = gpus.Current.Gpus.Select(NodeGpuRow.From).ToList(),
            };
            var remote = nodes.All.Select(n => new
            {
                node_id = n.NodeId,
                agent_url = n.AgentUrl,
                last_heartbeat = LeaseRow.Unix(n.LastHeartbeat),
                online = true,
                local = false,
                gpus = n.Gpus.ToList(),
            });
            return Results.Json(new { nodes = new object[] { local }.Concat(remote) }, ApiJson.Options);
        }).RequireAuthorization(AccessPolicies.Read);

        group.MapPost("", async (HttpRequest request, NodeDirectory nodes, Orchestrator orchestrator, CancellationToken ct) =>
        {
            var body = await ApiJson.ReadBodyAsync<NodeRegisterBody>(request, ct);
            if (string.IsNullOrWhiteSpace(body.NodeId) || !ProfileParser.IsValidName(body.NodeId))
            {
                throw new ApiException(422, $"node_id must be letters, digits, '.', '_' or '-' (got '{body.NodeId}')");
            }

            if (body.NodeId == orchestrator.NodeId)
            {
                throw new ApiException(422, $"node_id '{body.NodeId}' is this cf-orch's own node");
            }

            if (!Uri.TryCreate(body.AgentUrl, UriKind.Absolute, out var agentUrl) || agentUrl.Scheme is not ("http" or "https"))
            {
                throw new ApiException(422, $"agent_url must be an http:// or https:// URL (got '{body.AgentUrl}')");
            }

            var node = await nodes.RegisterAsync(body.NodeId, agentUrl, ct);
            return Results.Json(new { registered = true, node_id = node.NodeId }, ApiJson.Options);
        }).RequireAuthorization(AccessPolicies.Control);
        return endpoints;
    }
}
