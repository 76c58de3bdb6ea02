using CfOrch.Core.Gpus;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

public static class NodesApi
{
    /// <summary><c>GET|POST /api/nodes</c>: this node with its GPUs, and the agents that registered.</summary>
    public static IEndpointRouteBuilder MapNodesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/nodes").WithTags("Nodes");
        group.MapGet("", (Orchestrator orchestrator, GpuMonitor gpus, NodeDirectory nodes, HttpContext http, TimeProvider time) =>
        {
            var now = time.GetUtcNow();
            var readAt = gpus.Current.At == DateTimeOffset.MinValue ? now : gpus.Current.At;
            var local = new NodeRow(
                orchestrator.NodeId,
                $"{http.Request.Scheme}://{http.Request.Host}",
                LeaseRow.Unix(readAt),
                Online: true,
                Local: true,
                gpus.Current.Gpus.Select(NodeGpuRow.From).ToList(),
                Age(now, readAt),
                null);
            var remote = nodes.All.Select(n => new NodeRow(
                n.NodeId, n.AgentUrl, LeaseRow.Unix(n.LastHeartbeat) ?? LeaseRow.NoExpiry, n.Online, Local: false, n.Gpus.ToList(),
                n.LastHeartbeat is { } seen ? Age(now, seen) : null, n.Problem));
            return TypedResults.Ok(new NodesAnswer([local, .. remote]));
        }).RequireAuthorization(AccessPolicies.Read);

        group.MapPost("", async (HttpRequest request, NodeDirectory nodes, Orchestrator orchestrator, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<NodeRegisterBody>(request, ct);
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
            return TypedResults.Ok(new NodeRegisteredAnswer(true, node.NodeId));
        }).RequireAuthorization(AccessPolicies.RegisterNode);
        return endpoints;
    }

    private static double Age(DateTimeOffset now, DateTimeOffset at) => Math.Round(Math.Max(0, (now - at).TotalSeconds), 1);
}
