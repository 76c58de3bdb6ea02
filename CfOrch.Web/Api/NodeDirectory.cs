using System.Collections.Concurrent;
using System.Text.Json;

namespace CfOrch.Web.Api;

/// <summary>
/// Nodes that registered through <c>POST /api/nodes</c> (cf-orch agents): their URL and the GPUs their agent reported
/// on <c>GET {agent_url}/gpu-info</c>. Kept in memory, as cf-orch's coordinator keeps them.
/// </summary>
public sealed class NodeDirectory(IHttpClientFactory httpClients, TimeProvider time)
{
    public const string ClientName = "cf-orch-agents";

    /// <summary>The largest <c>/gpu-info</c> answer read from an agent.</summary>
    public const int MaxAnswerBytes = 1024 * 1024;

    /// <summary>How many nodes may register: a LAN has a handful; more is a script gone wrong.</summary>
    public const int MaxNodes = 256;
    private static readonly TimeSpan AgentTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, RemoteNode> _nodes = new(StringComparer.Ordinal);

    public IReadOnlyList<RemoteNode> All => _nodes.Values.OrderBy(n => n.NodeId, StringComparer.Ordinal).ToList();

    public RemoteNode? Find(string nodeId) => _nodes.GetValueOrDefault(nodeId);

    /// <summary>Asks the agent for its GPUs and registers it; throws <see cref="ApiException"/> 502 when it cannot be reached.</summary>
    public async Task<RemoteNode> RegisterAsync(string nodeId, Uri agentUrl, CancellationToken cancellationToken)
    {
        if (!_nodes.ContainsKey(nodeId) && _nodes.Count >= MaxNodes)
        {
            throw new ApiException(StatusCodes.Status422UnprocessableEntity, $"{MaxNodes} nodes are registered already; cf-orch takes no more");
        }

        var gpus = await PollAsync(agentUrl, cancellationToken);
        var node = new RemoteNode(nodeId, agentUrl.ToString().TrimEnd('/'), time.GetUtcNow(), gpus);
        _nodes[nodeId] = node;
        return node;
    }

    private async Task<IReadOnlyList<NodeGpuRow>> PollAsync(Uri agentUrl, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(AgentTimeout);
        try
        {
            var client = httpClients.CreateClient(ClientName);
            using var response = await client.GetAsync(new Uri(agentUrl, "gpu-info"), cts.Token);
            if (!response.IsSuccessStatusCode)
            {
                throw new ApiException(StatusCodes.Status502BadGateway, $"the agent at {agentUrl} answered GET /gpu-info with {(int)response.StatusCode}");
            }

            var body = await response.Content.ReadFromJsonAsync<GpuInfoBody>(ApiJson.Options, cts.Token);
            return body?.Gpus ?? [];
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ApiException(StatusCodes.Status502BadGateway, $"the agent at {agentUrl} is unreachable: {(ex is OperationCanceledException ? $"no answer within {AgentTimeout.TotalSeconds:0} s" : ex.Message)}");
        }
    }

    public sealed record RemoteNode(string NodeId, string AgentUrl, DateTimeOffset LastHeartbeat, IReadOnlyList<NodeGpuRow> Gpus);

    private sealed class GpuInfoBody
    {
        public List<NodeGpuRow> Gpus { get; set; } = [];
    }
}
