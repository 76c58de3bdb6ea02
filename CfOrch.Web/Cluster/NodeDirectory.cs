using System.Collections.Concurrent;
using System.Text.Json;
using CfOrch.Web.Data;
using CfOrch.Web.Protocol;
using Microsoft.EntityFrameworkCore;

namespace CfOrch.Web.Cluster;

/// <summary>
/// The cf-orch agents that registered (<c>POST /api/nodes</c>), as the original coordinator keeps them: each is polled
/// (<c>GET {agent_url}/gpu-info</c>, then <c>/resident-info</c>) every <c>CfOrch:Cluster:PollSeconds</c>; two missed
/// polls make it offline, an answer makes it online again. One that does not answer when it registers is recorded
/// offline, not refused. Nodes are kept in SQLite and come back (offline until they answer) after a restart.
/// </summary>
public sealed partial class NodeDirectory(
    AgentClient agents,
    IDbContextFactory<CfOrchDb> databases,
    Core.Changes.IStatePublisher publisher,
    TimeProvider time,
    ILogger<NodeDirectory> logger) : Core.Nodes.IRemoteNodes, IDisposable
{
    public const string ClientName = "cf-orch-agents";

    /// <summary>The largest <c>/gpu-info</c> answer read from an agent.</summary>
    public const int MaxAnswerBytes = 1024 * 1024;

    /// <summary>How many nodes may register: a LAN has a handful; more is a script gone wrong.</summary>
    public const int MaxNodes = 256;

    /// <summary>Polls in a row without an answer after which a node is offline.</summary>
    public const int OfflineAfter = 2;

    private static readonly TimeSpan AgentTimeout = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, RemoteNode> _nodes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _pollGate = new(16, 16);

    public IReadOnlyList<RemoteNode> All => _nodes.Values.OrderBy(n => n.NodeId, StringComparer.Ordinal).ToList();

    public RemoteNode? Find(string nodeId) => _nodes.GetValueOrDefault(nodeId);

    Core.Nodes.RemoteNodeState? Core.Nodes.IRemoteNodes.Find(string nodeId) => Find(nodeId) is { } node ? StateOf(node) : null;

    IReadOnlyList<Core.Nodes.RemoteNodeState> Core.Nodes.IRemoteNodes.All => All.Select(StateOf).ToList();

    private Func<RemoteNode, Task>? _follow;

    /// <summary>
    /// What runs after every poll of a node, answered or not, before the poll counts as done: the services placed there
    /// follow its state (and may ask the agent about one it does not list).
    /// </summary>
    public void AfterEachPoll(Func<RemoteNode, Task> follow) => _follow = follow;

    private Task FollowAsync(RemoteNode node) => _follow?.Invoke(node) ?? Task.CompletedTask;

    private static Core.Nodes.RemoteNodeState StateOf(RemoteNode n) => new(
        n.NodeId, n.AgentUrl, n.Online, n.LastHeartbeat, n.Problem,
        n.Gpus.Select(g => new Core.Nodes.RemoteGpu(g.GpuId, g.Name, g.VramTotalMb, g.VramUsedMb, g.VramFreeMb)).ToList());

    /// <summary>Reads the nodes kept in SQLite (at start-up): each is offline until its agent answers a poll.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await databases.CreateDbContextAsync(cancellationToken);
        foreach (var row in await db.Nodes.AsNoTracking().ToListAsync(cancellationToken))
        {
            _nodes.TryAdd(row.NodeId, new RemoteNode(row.NodeId, row.AgentUrl, row.LastSeenUnixMs is { } seen ? DateTimeOffset.FromUnixTimeMilliseconds(seen) : null, false, OfflineAfter, [], [], "not polled yet since cf-orch started"));
        }

        Publish();
    }

    /// <summary>The nodes as the dashboard and the event stream see them.</summary>
    private void Publish() => publisher.Publish(new Core.Nodes.NodesChanged(All.Select(StateOf).ToList()));

    /// <summary>Registers (or re-registers) an agent and polls it once; one that does not answer is recorded offline.</summary>
    public async Task<RemoteNode> RegisterAsync(string nodeId, Uri agentUrl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agentUrl);
        if (!_nodes.ContainsKey(nodeId) && _nodes.Count >= MaxNodes)
        {
            throw new ApiException(StatusCodes.Status422UnprocessableEntity, $"{MaxNodes} nodes are registered already; cf-orch takes no more");
        }

        var url = agentUrl.ToString().TrimEnd('/');
        var node = _nodes.AddOrUpdate(
            nodeId,
            _ => new RemoteNode(nodeId, url, null, false, 0, [], [], null),
            (_, known) => known.AgentUrl == url ? known : known with { AgentUrl = url });
        var polled = await PollAsync(node, cancellationToken);
        Publish();
        await FollowAsync(polled);
        await SaveAsync(polled, cancellationToken);
        if (!polled.Online)
        {
            LogRegisteredOffline(nodeId, url, polled.Problem ?? "");
        }

        return polled;
    }

    /// <summary>Polls one agent now (after an eviction there, for its freed memory); returns it as polled, or null when it is not registered.</summary>
    public async Task<RemoteNode?> RefreshAsync(string nodeId, CancellationToken cancellationToken)
    {
        if (Find(nodeId) is not { } node)
        {
            return null;
        }

        var polled = await PollAsync(node, cancellationToken);
        Publish();
        await FollowAsync(polled);
        return polled;
    }

    /// <summary>Polls every registered agent once, at most 16 at a time.</summary>
    public async Task PollAllAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_nodes.Values.Select(async node =>
        {
            await _pollGate.WaitAsync(cancellationToken);
            try
            {
                var before = node.Online;
                var after = await PollAsync(node, cancellationToken);
                await FollowAsync(after);
                if (after.Online != before)
                {
                    if (after.Online)
                    {
                        LogOnline(after.NodeId);
                    }
                    else
                    {
                        LogOffline(after.NodeId, after.Problem ?? "");
                    }

                    await SaveAsync(after, cancellationToken);
                }
            }
            finally
            {
                _pollGate.Release();
            }
        }));
        if (!_nodes.IsEmpty)
        {
            Publish();
        }
    }

    /// <summary>Asks one agent for its GPUs (required) and residents (best effort, as older agents lack it); records the answer.</summary>
    private async Task<RemoteNode> PollAsync(RemoteNode node, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(AgentTimeout);
        RemoteNode next;
        try
        {
            var baseUrl = new Uri(node.AgentUrl + "/");
            var gpus = await agents.GetAsync<GpuInfoBody>(new Uri(baseUrl, "gpu-info"), cts.Token) ?? throw new JsonException("GET /gpu-info answered nothing");
            ResidentInfoBody? residents = null;
            var asked = time.GetUtcNow();
            try
            {
                residents = await agents.GetAsync<ResidentInfoBody>(new Uri(baseUrl, "resident-info"), cts.Token);
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException)
            {
                // An older agent without /resident-info is still online.
            }

            next = node with
            {
                LastHeartbeat = time.GetUtcNow(),
                Online = true,
                Missed = 0,
                Gpus = gpus.Gpus,
                Residents = residents?.Residents ?? node.Residents,
                ResidentsAt = residents is null ? node.ResidentsAt : asked,
                Problem = null,
            };
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or UriFormatException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            var missed = node.Missed + 1;
            next = node with
            {
                Missed = missed,

                // Registered without ever answering: offline at once. Known online: offline after two missed polls.
                Online = node.Online && missed < OfflineAfter,
                Problem = ex is OperationCanceledException ? $"no answer within {AgentTimeout.TotalSeconds:0} s" : ex.Message,
            };
        }

        // A re-registration meanwhile (a new URL) wins over this poll's result for the old one.
        return _nodes.AddOrUpdate(node.NodeId, next, (_, current) => current.AgentUrl == node.AgentUrl ? next : current);
    }

    /// <summary>Keeps the node in SQLite; a database that cannot be written loses only its survival of a restart (storage health says why).</summary>
    private async Task SaveAsync(RemoteNode node, CancellationToken cancellationToken)
    {
        try
        {
            await using var db = await databases.CreateDbContextAsync(cancellationToken);
            var row = await db.Nodes.FindAsync([node.NodeId], cancellationToken);
            if (row is null)
            {
                row = new RegisteredNodeRow { NodeId = node.NodeId, AgentUrl = node.AgentUrl, RegisteredAtUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds() };
                db.Nodes.Add(row);
            }

            row.AgentUrl = node.AgentUrl;
            row.LastSeenUnixMs = node.LastHeartbeat?.ToUnixTimeMilliseconds() ?? row.LastSeenUnixMs;
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is DbUpdateException or Microsoft.Data.Sqlite.SqliteException or IOException or InvalidOperationException)
        {
            LogNotSaved(node.NodeId, ex.Message);
        }
    }

    public void Dispose() => _pollGate.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} registered from {AgentUrl}, offline: {Problem}")]
    private partial void LogRegisteredOffline(string nodeId, string agentUrl, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} is online")]
    private partial void LogOnline(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} is offline: {Problem}")]
    private partial void LogOffline(string nodeId, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} could not be kept in the database: {Message}")]
    private partial void LogNotSaved(string nodeId, string message);

    /// <summary>
    /// A registered agent as last seen: when it last answered (null: never), whether it counts as online, the polls it
    /// missed in a row, its GPUs and residents as it last reported them, and why its last poll failed.
    /// </summary>
    public sealed record RemoteNode(
        string NodeId, string AgentUrl, DateTimeOffset? LastHeartbeat, bool Online, int Missed,
        IReadOnlyList<NodeGpuRow> Gpus, IReadOnlyList<ResidentRow> Residents, string? Problem)
    {
        /// <summary>When the residents were asked for (null: never answered): what ran there before this is not in them.</summary>
        public DateTimeOffset? ResidentsAt { get; init; }
    }

    /// <summary>A warm service an agent reports (<c>/resident-info</c>).</summary>
    public sealed record ResidentRow(string Service, string? ModelName)
    {
        /// <summary>
        /// Whether the row is <paramref name="service"/>: its name, or one of the rows the original agent makes of one
        /// service with several models loaded (<c>ollama/0</c>, <c>ollama/1</c>).
        /// </summary>
        public bool Is(string service) =>
            Service == service
            || (Service.Length > service.Length + 1 && Service.StartsWith(service, StringComparison.Ordinal) && Service[service.Length] == '/'
                && int.TryParse(Service.AsSpan(service.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _));
    }

    private sealed class GpuInfoBody
    {
        public List<NodeGpuRow> Gpus { get; set; } = [];
    }

    private sealed class ResidentInfoBody
    {
        public List<ResidentRow> Residents { get; set; } = [];
    }
}
