using CfOrch.Core.Allocations;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Nodes;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Cluster;

/// <summary>
/// The coordinator's façade over every node: the API and the dashboard ensure, allocate, start, stop and restart
/// through it. A request that names a node goes to that node (this one: <see cref="Orchestrator"/>; another: its agent,
/// through <see cref="RemoteServices"/>); one that names none is placed — on the node with a warm instance, else on the
/// node whose GPU has the most room under the same admission rule, else here (where eviction may make room).
/// </summary>
public sealed class ClusterControl(Orchestrator local, RemoteServices remote, NodeDirectory nodes, LeaseManager leases)
{
    /// <summary>"GPU 0" on this node, "heimdall GPU 0" on another.</summary>
    public string Where(InstanceKey key) => key.NodeId == local.NodeId ? $"GPU {key.GpuIndex}" : $"{key.NodeId} GPU {key.GpuIndex}";

    /// <summary>The books of another node's GPUs (or this node's), as the lease manager keeps them.</summary>
    public IReadOnlyList<GpuAccount> Accounts(string nodeId) => leases.Accounts(nodeId);

    /// <summary>Every instance: this node's, then those placed on other nodes.</summary>
    public IReadOnlyList<InstanceSnapshot> Instances => [.. local.Instances, .. remote.All];

    /// <summary>
    /// Checks a node named by a request: null or this node's id means this node (null is returned); a registered node
    /// is returned as is; any other name is refused with a 422 that says which nodes there are.
    /// </summary>
    public string? Node(string? nodeId)
    {
        if (string.IsNullOrEmpty(nodeId) || nodeId == local.NodeId)
        {
            return null;
        }

        return nodes.Find(nodeId) is not null
            ? nodeId
            : throw new ApiException(StatusCodes.Status422UnprocessableEntity, ((IRemoteNodes)nodes).UnknownNode(nodeId, local.NodeId));
    }

    public Task<EnsureResult> EnsureAsync(string service, string? nodeId, int? gpuIndex, string? model, CancellationToken cancellationToken) =>
        Target(local.Service(service), nodeId, gpuIndex) is { } node
            ? remote.EnsureAsync(local.Service(service), node, gpuIndex, model, cancellationToken)
            : local.EnsureAsync(service, gpuIndex, model, cancellationToken);

    /// <summary>cf-orch's allocate across nodes: placed as <see cref="EnsureAsync"/> places, then claimed as on this node.</summary>
    public async Task<AllocationResult> AllocateAsync(string service, IReadOnlyList<string> candidates, string? nodeId, int? gpuIndex, double ttlSeconds, string caller, CancellationToken cancellationToken)
    {
        var profile = local.Service(service);
        if (Target(profile, nodeId, gpuIndex) is not { } node)
        {
            return await local.AllocateAsync(service, candidates, gpuIndex, ttlSeconds, caller, cancellationToken);
        }

        // As on this node: the models are checked where the service already answers there before anything is evicted
        // or started; one started to be asked is stopped again when it lacks them.
        await local.PrecheckModelsAsync(profile, candidates, ct => remote.ServingUrlAsync(profile, node, ct), cancellationToken);
        var ensured = await remote.EnsureAsync(profile, node, gpuIndex, candidates.FirstOrDefault(m => !string.IsNullOrWhiteSpace(m)), cancellationToken);
        return await local.AllocateOnAsync(ensured, candidates, ttlSeconds, caller, cancellationToken, remote);
    }

    /// <summary>Stops the service on one node (with a node), or everywhere it runs (without).</summary>
    public async Task<IReadOnlyList<StopOutcome>> StopAsync(string service, string? nodeId, int? gpuIndex, CancellationToken cancellationToken)
    {
        var named = Node(nodeId);
        if (named is not null)
        {
            local.Service(service);
            return await remote.StopAsync(service, named, gpuIndex, cancellationToken);
        }

        var outcomes = new List<StopOutcome>(await local.StopAsync(service, gpuIndex, cancellationToken));
        if (string.IsNullOrEmpty(nodeId))
        {
            foreach (var elsewhere in remote.All.Where(i => i.Service == service).Select(i => i.Key.NodeId).Distinct(StringComparer.Ordinal).ToList())
            {
                outcomes.AddRange(await remote.StopAsync(service, elsewhere, gpuIndex, cancellationToken));
            }
        }

        return outcomes;
    }

    public async Task<EnsureResult> RestartAsync(string service, string? nodeId, int? gpuIndex, CancellationToken cancellationToken)
    {
        if (Node(nodeId) is not { } node)
        {
            return await local.RestartAsync(service, gpuIndex, cancellationToken);
        }

        var running = remote.All.FirstOrDefault(i => i.Service == service && i.Key.NodeId == node && (gpuIndex is null || i.Key.GpuIndex == gpuIndex));
        await remote.StopAsync(service, node, gpuIndex, cancellationToken);
        return await remote.EnsureAsync(local.Service(service), node, gpuIndex ?? running?.Key.GpuIndex, running?.Model, cancellationToken);
    }

    /// <summary>A client's lease on a GPU of any node; refused with what holds the GPU when it does not fit.</summary>
    public ValueTask<Lease> RequestLeaseAsync(string holder, string? nodeId, int gpuIndex, long mb, int priority, TimeSpan? ttl, CancellationToken cancellationToken) =>
        local.RequestLeaseAsync(holder, gpuIndex, mb, priority, ttl, cancellationToken, Node(nodeId));

    /// <summary>Releases any lease; a running service's lease is released by stopping it, an unknown one's (its node is offline) here.</summary>
    public Lease ReleaseLease(string leaseId)
    {
        if (remote.HolderOf(leaseId) is { } instance)
        {
            var lease = leases.Get(leaseId) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"Lease '{leaseId}' not found");
            remote.Release(instance);
            return lease;
        }

        return local.ReleaseLease(leaseId);
    }

    /// <summary>
    /// The node a request goes to (null: this node): the one it names, or — naming none — the node it is placed on: a
    /// node already serving the service, else the node (with the GPU asked for) with the most room that fits the
    /// service's budget; this node when none fits, so that eviction or a refusal that names the holders follows.
    /// </summary>
    private string? Target(ServiceProfile profile, string? nodeId, int? gpuIndex) =>
        string.IsNullOrEmpty(nodeId) ? Place(profile, gpuIndex) : Node(nodeId);

    private string? Place(ServiceProfile profile, int? gpuIndex)
    {
        var online = nodes.All.Where(n => n.Online).ToList();
        if (online.Count == 0 || local.Instances.Any(i => i.Service == profile.Name && i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)))
        {
            return null;
        }

        if (remote.All.FirstOrDefault(i => i.Service == profile.Name && i.IsServing && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)) is { } warm)
        {
            return warm.Key.NodeId;
        }

        // A node whose agent reports the service warm (it runs there already: its agent adopts or reuses it); the
        // original agent lists an Ollama with several models loaded as ollama/0, ollama/1.
        if (online.FirstOrDefault(n => n.Residents.Any(r => r.Is(profile.Name))) is { } resident)
        {
            return resident.NodeId;
        }

        long Room(IEnumerable<GpuAccount> accounts) => accounts
            .Where(a => (gpuIndex is null || a.GpuIndex == gpuIndex) && Placement.Allows(profile, a.GpuIndex))
            .Select(a => a.AvailableMb)
            .DefaultIfEmpty(-1)
            .Max();

        var here = Room(leases.Accounts());
        var best = online
            .Select(n => (n.NodeId, Room: Room(leases.Accounts(n.NodeId))))
            .Where(n => n.Room >= profile.MaxMb && n.Room > here)
            .OrderByDescending(n => n.Room)
            .ThenBy(n => n.NodeId, StringComparer.Ordinal)
            .FirstOrDefault();
        return best.NodeId;
    }
}
