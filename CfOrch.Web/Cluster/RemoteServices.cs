using System.Collections.Concurrent;
using CfOrch.Core.Allocations;
using CfOrch.Core.Changes;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Nodes;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Cluster;

/// <summary>
/// The services this coordinator placed on other nodes: each started through its node's agent
/// (<c>POST /services/{s}/start</c>) under a lease on that node's GPU, stopped through it (<c>/stop</c>), and followed by
/// the agent's polls — an agent that stops answering makes its instances <c>unknown</c> (their leases stay counted),
/// and once it answers again they are running if it reports them resident or running, else gone (their leases released).
/// </summary>
public sealed partial class RemoteServices(
    ServiceLocks locks, NodeDirectory nodes, AgentClient agents, LeaseManager leases, AllocationTable allocations, Sweeper sweeper, RoomWaiter room, ProfileRegistry profiles, IStatePublisher publisher, StateStream stream, TimeProvider time, ILogger<RemoteServices> logger) : IRemoteInstances
{
    private readonly ConcurrentDictionary<InstanceKey, InstanceSnapshot> _instances = new();

    /// <summary>
    /// The runs (by their start) each agent has listed at least once: the Python agent answers a start with
    /// <c>running: true</c> at once but lists the service only once its port answers, so a run not listed yet may still be
    /// loading, not gone.
    /// </summary>
    private readonly ConcurrentDictionary<InstanceKey, DateTimeOffset> _listed = new();

    /// <summary>From now on, the instances on each node follow its polls (once, at start-up).</summary>
    public void FollowPolls()
    {
        nodes.AfterEachPoll(FollowAsync);
        stream.Published -= OnChange;
        stream.Published += OnChange;
    }

    /// <summary>An allocation of an instance placed on another node came or went: it follows at once, not at the next poll.</summary>
    private void OnChange(StateChange change)
    {
        var allocation = change switch
        {
            AllocationChanged c => c.Allocation,
            AllocationReleased r => r.Allocation,
            _ => null,
        };
        if (allocation is not null && new InstanceKey(allocation.Service, allocation.NodeId, allocation.GpuIndex) is var key && _instances.ContainsKey(key))
        {
            // Published under the state stream's lock: the change it makes is published from outside it.
            ThreadPool.QueueUserWorkItem(static s => s.Self.Recount(s.Key), (Self: this, Key: key), preferLocal: false);
        }
    }

    private void Recount(InstanceKey key)
    {
        if (_instances.TryGetValue(key, out var instance))
        {
            FollowAllocations(instance);
        }
    }

    public IReadOnlyList<InstanceSnapshot> All => _instances.Values.OrderBy(i => i.Key.NodeId, StringComparer.Ordinal).ThenBy(i => i.Service, StringComparer.Ordinal).ThenBy(i => i.Key.GpuIndex).ToList();

    /// <summary>The instance that holds <paramref name="leaseId"/>, if a remote one does.</summary>
    public InstanceSnapshot? HolderOf(string leaseId) => _instances.Values.FirstOrDefault(i => i.LeaseId == leaseId);

    /// <summary>
    /// A serving instance of the service on <paramref name="nodeId"/>: the one placed there already (warm), else a lease
    /// on the GPU asked for (or the one with the most room) and a start through the agent; a failed start releases the lease.
    /// </summary>
    public async Task<EnsureResult> EnsureAsync(ServiceProfile profile, string nodeId, int? gpuIndex, string? model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var node = NodeOf(nodeId);
        using var held = await locks.AcquireAsync(LockOf(profile.Name, nodeId), cancellationToken);
        var existing = _instances.Values.FirstOrDefault(i => i.Service == profile.Name && i.Key.NodeId == nodeId && (gpuIndex is null || i.Key.GpuIndex == gpuIndex));
        if (existing is { IsServing: true })
        {
            return new EnsureResult(existing, Started: false, Warm: true);
        }

        if (existing is { State: InstanceState.Unknown })
        {
            throw new OrchestrationException(OrchestrationError.NoCapacity, $"{existing.Key} is unknown: node '{nodeId}' does not answer ({node.Problem ?? "offline"})");
        }

        var evicted = new List<Displaced>();
        var (gpu, leaseId) = await LeaseAsync(profile, nodeId, gpuIndex, evicted, cancellationToken);
        var now = time.GetUtcNow();
        var key = new InstanceKey(profile.Name, nodeId, gpu);
        var starting = new InstanceSnapshot
        {
            Key = key,
            Origin = InstanceOrigin.Managed,
            State = InstanceState.Starting,
            Url = "",
            HealthPath = profile.Managed?.HealthPath ?? "/health",
            Model = model,
            BudgetMb = profile.MaxMb,
            Priority = profile.Priority,
            LeaseId = leaseId,
            Since = now,
            StateSince = now,
            Message = $"starting through the agent of {nodeId}",
            Displaced = evicted,
        };
        Put(starting);
        AgentStartAnswer answer;
        try
        {
            // Not the caller's token: a client that hangs up must not leave the agent starting a service nobody leases
            // (the agent goes on once asked). The agent's answer, or its start timeout, ends the wait.
            var parameters = model is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["model"] = model };
            answer = await agents.PostAsync<AgentStartAnswer>(AgentUri(node, $"services/{Uri.EscapeDataString(profile.Name)}/start"), new { gpu_id = gpu, @params = parameters }, AgentClient.StartTimeout, CancellationToken.None)
                ?? throw new HttpRequestException("the agent answered nothing");
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or OperationCanceledException)
        {
            Forget(key);
            leases.Release(leaseId, HistoryKind.Stopped, $"the start on {nodeId} failed: {ex.Message}");
            if (ex is OperationCanceledException)
            {
                throw;
            }

            // A start that fails for good leaves the node as it found it: what it evicted there starts again.
            var restarted = Displacement.GivesRoomBack(profile, evicted) ? "; " + await StartDisplacedAsync(starting) : "";
            throw new OrchestrationException(OrchestrationError.StartFailed, $"node '{nodeId}' did not start {profile.Name}: {ex.Message}{restarted}");
        }

        var ready = time.GetUtcNow();
        var running = starting with
        {
            Origin = answer.Adopted ? InstanceOrigin.Adopted : InstanceOrigin.Managed,
            State = answer.Running ? InstanceState.Running : InstanceState.Starting,
            Url = Reachable(answer.Url, node.AgentUrl),
            StateSince = ready,
            ReadyAt = answer.Running ? ready : null,
            Message = answer.Adopted ? $"already ran on {nodeId}: adopted by its agent" : null,
        };
        Put(running);
        LogStarted(profile.Name, nodeId, gpu, running.Url);
        return new EnsureResult(running, Started: !answer.Adopted, Warm: answer.Adopted);
    }

    /// <inheritdoc/>
    public async Task<bool> ClaimAsync(InstanceSnapshot ensured, Action claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ensured);
        ArgumentNullException.ThrowIfNull(claim);
        using var held = await locks.AcquireAsync(LockOf(ensured.Key), cancellationToken);
        if (!_instances.TryGetValue(ensured.Key, out var current) || current.State == InstanceState.Stopping || current.Since != ensured.Since)
        {
            return false;
        }

        claim();
        return true;
    }

    /// <inheritdoc/>
    public async Task<UndoOutcome> UndoStartAsync(InstanceSnapshot started, string reason)
    {
        ArgumentNullException.ThrowIfNull(started);
        var node = NodeOf(started.Key.NodeId);
        using var held = await locks.AcquireAsync(LockOf(started.Key), CancellationToken.None);
        if (!_instances.TryGetValue(started.Key, out var current) || current.State == InstanceState.Stopping)
        {
            return UndoOutcome.Ended;
        }

        if (current.Since != started.Since)
        {
            return UndoOutcome.Replaced;
        }

        if (allocations.Holds(started.Key.Service, started.Key.NodeId, started.Key.GpuIndex))
        {
            return UndoOutcome.Allocated;
        }

        await StoppingAsync([current], () => TellStopAsync(node, started.Service, why => new OrchestrationException(OrchestrationError.StartFailed, $"node '{started.Key.NodeId}' did not stop {started.Service}: {why}; its lease stays until it answers or you release it"), CancellationToken.None));
        End(current, HistoryKind.Stopped, reason);
        return UndoOutcome.Stopped;
    }

    /// <inheritdoc/>
    public Task<string> StartDisplacedAsync(InstanceSnapshot undone)
    {
        ArgumentNullException.ThrowIfNull(undone);
        return Displacement.StartAgainAsync(undone.Displaced, async displaced =>
            (await EnsureAsync(ActiveServices.Get(profiles, displaced.Key.Service), displaced.Key.NodeId, displaced.Key.GpuIndex, displaced.Model, CancellationToken.None)).Started);
    }

    /// <summary>
    /// Where the service answers on <paramref name="nodeId"/> now, as this node reaches it — the instance placed there, else
    /// what its agent says (<c>GET /services/{s}</c>), else, when the agent lists it resident (the original agent
    /// finds an Ollama on its well-known port), the port of the service's spec on the agent's host — or null.
    /// </summary>
    public async Task<string?> ServingUrlAsync(ServiceProfile profile, string nodeId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var node = NodeOf(nodeId);
        if (_instances.Values.FirstOrDefault(i => i.Service == profile.Name && i.Key.NodeId == nodeId && i.IsServing) is { } warm)
        {
            return warm.Url;
        }

        if (!node.Online)
        {
            return null;
        }

        if (await AskAsync(node, profile.Name, cancellationToken) is { Running: true, Url: { Length: > 0 } url })
        {
            return Reachable(url, node.AgentUrl);
        }

        return node.Residents.Any(r => r.Is(profile.Name)) && profile.Managed is { } spec
            ? Reachable(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"http://127.0.0.1:{spec.EffectivePort}"), node.AgentUrl)
            : null;
    }

    /// <summary>Stops the service on <paramref name="nodeId"/> through its agent (on one GPU when given) and releases its leases.</summary>
    public async Task<IReadOnlyList<StopOutcome>> StopAsync(string service, string nodeId, int? gpuIndex, CancellationToken cancellationToken)
    {
        var targets = _instances.Values.Where(i => i.Service == service && i.Key.NodeId == nodeId && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (targets.Count == 0)
        {
            return [];
        }

        var node = NodeOf(nodeId);
        using var held = await locks.AcquireAsync(LockOf(service, nodeId), cancellationToken);
        await StoppingAsync(targets, () => TellStopAsync(node, service, why => new OrchestrationException(OrchestrationError.StartFailed, $"node '{nodeId}' did not stop {service}: {why}; its lease stays until it answers or you release it"), cancellationToken));

        var outcomes = new List<StopOutcome>();
        foreach (var instance in targets)
        {
            End(instance, HistoryKind.Stopped, "stopped on request");
            outcomes.Add(new StopOutcome(instance with { State = InstanceState.Stopped, StateSince = time.GetUtcNow() }, $"{instance.Key} stopped by its agent"));
        }

        return outcomes;
    }

    /// <summary>Stops one instance through its agent for an eviction (its lease released with why).</summary>
    private async Task StopOneAsync(InstanceSnapshot instance, HistoryKind kind, string reason, CancellationToken cancellationToken)
    {
        var node = NodeOf(instance.Key.NodeId);
        await StoppingAsync([instance], () => TellStopAsync(node, instance.Service, why => new OrchestrationException(OrchestrationError.NoCapacity, $"node '{instance.Key.NodeId}' did not stop {instance.Service} to make room: {why}"), cancellationToken));
        End(instance, kind, reason);
    }

    /// <summary>
    /// The instances are stopping while <paramref name="stop"/> asks their agent: a poll meanwhile that no longer finds
    /// them running there does not end them as lost (the stop ends them with its own reason). A stop that fails leaves
    /// them as they were.
    /// </summary>
    private async Task StoppingAsync(IReadOnlyList<InstanceSnapshot> instances, Func<Task> stop)
    {
        foreach (var instance in instances)
        {
            Put(instance with { State = InstanceState.Stopping, StateSince = time.GetUtcNow(), Message = "stopping through its agent" });
        }

        try
        {
            await stop();
        }
        catch
        {
            foreach (var instance in instances.Where(i => _instances.ContainsKey(i.Key)))
            {
                Put(instance);
            }

            throw;
        }
    }

    /// <summary>Asks the agent to stop the service (<c>POST /services/{s}/stop</c>); an agent that refuses or does not answer throws what <paramref name="failed"/> makes of why.</summary>
    private async Task TellStopAsync(NodeDirectory.RemoteNode node, string service, Func<string, OrchestrationException> failed, CancellationToken cancellationToken)
    {
        try
        {
            await agents.PostAsync<AgentStopAnswer>(AgentUri(node, $"services/{Uri.EscapeDataString(service)}/stop"), new { }, AgentClient.CallTimeout, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException)
        {
            throw failed(ex.Message);
        }
    }

    /// <summary>
    /// An operator's release of the lease of an instance whose node does not answer: the instance is forgotten with it.
    /// While its node answers, the service must be stopped instead.
    /// </summary>
    public void Release(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        if (instance.State != InstanceState.Unknown)
        {
            throw new OrchestrationException(OrchestrationError.Invalid, $"lease {instance.LeaseId} belongs to {instance.Key}; stop the service to release it");
        }

        End(instance, HistoryKind.Released, $"released on request while node '{instance.Key.NodeId}' did not answer");
    }

    /// <summary>
    /// After a restart of this coordinator: the services it had placed on other nodes (their leases open in the history)
    /// are held again as <c>unknown</c>, with the same leases, until each node's agent says whether they still run there.
    /// Leases on nodes no longer registered are left for the start-up to close.
    /// </summary>
    public async Task RestoreAsync(ILeaseStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var restored = 0;
        foreach (var open in await store.OpenLeasesAsync(cancellationToken))
        {
            if (open.Service is not { } service || open.Origin == "client" || nodes.Find(open.NodeId) is null)
            {
                continue;
            }

            var priority = profiles.Active.Profile.Services.GetValueOrDefault(service)?.Priority ?? 2;
            var lease = new Lease
            {
                LeaseId = open.LeaseId,
                NodeId = open.NodeId,
                GpuIndex = open.GpuIndex,
                Holder = open.Holder,
                Service = service,
                Mb = open.BudgetMb,
                Priority = priority,
                Origin = Enum.TryParse<HolderOrigin>(open.Origin, ignoreCase: true, out var origin) ? origin : HolderOrigin.Managed,
                GrantedAt = open.GrantedAt,
            };
            if (leases.Request(new LeaseRequest(open.Holder, service, open.GpuIndex, open.BudgetMb, priority, lease.Origin) { NodeId = open.NodeId, Restoring = lease, AlreadyRunning = true }) is not Admission.Granted)
            {
                continue;
            }

            var now = time.GetUtcNow();
            Put(new InstanceSnapshot
            {
                Key = new InstanceKey(service, open.NodeId, open.GpuIndex),
                Origin = lease.Origin == HolderOrigin.Adopted ? InstanceOrigin.Adopted : InstanceOrigin.Managed,
                State = InstanceState.Unknown,
                Url = "",
                HealthPath = "/health",
                BudgetMb = open.BudgetMb,
                Priority = priority,
                LeaseId = open.LeaseId,
                Since = open.GrantedAt,
                StateSince = now,
                Message = $"cf-orch restarted: waiting for the agent of '{open.NodeId}' to say whether it still runs there",
            });
            restored++;
        }

        if (restored > 0)
        {
            LogRestored(restored);
        }
    }

    /// <summary>What the agent says of the service (<c>GET /services/{s}</c>: where it answers): null when it cannot be asked.</summary>
    private Task<AgentServiceAnswer?> AskAsync(NodeDirectory.RemoteNode node, string service, CancellationToken cancellationToken) =>
        ReadAsync<AgentServiceAnswer>(node, $"services/{Uri.EscapeDataString(service)}", notServed: null, cancellationToken);

    /// <summary>
    /// A read from the node's agent, bounded by <see cref="AskTimeout"/>: its answer; <paramref name="notServed"/> when
    /// it does not serve that path (404, 405: an agent without it); null when it does not answer.
    /// </summary>
    private async Task<T?> ReadAsync<T>(NodeDirectory.RemoteNode node, string path, T? notServed, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await agents.GetAsync<T>(AgentUri(node, path), cancellationToken, AskTimeout);
        }
        catch (HttpRequestException ex) when (ex.StatusCode is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.MethodNotAllowed)
        {
            return notServed;
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>A question about one service, asked while a poll waits: as long as a poll's own calls may take.</summary>
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// An instance its agent reports running (listed, or as <paramref name="url"/> when asked): one starting or unknown
    /// runs again — a restored one at the URL the agent gives, as a client here reaches it — and a running one follows
    /// its allocations.
    /// </summary>
    private void Reported(NodeDirectory.RemoteNode node, InstanceSnapshot instance, string? url)
    {
        var now = time.GetUtcNow();
        if (instance.State is InstanceState.Unknown or InstanceState.Starting && instance.Url.Length > 0)
        {
            Put(instance with { State = InstanceState.Running, StateSince = now, ReadyAt = instance.ReadyAt ?? now, Message = null });
        }
        else if (instance is { State: InstanceState.Unknown, Url.Length: 0 })
        {
            // Restored after a restart of this coordinator: its agent says where it answers.
            if (url is { Length: > 0 })
            {
                Put(instance with { State = InstanceState.Running, Url = Reachable(url, node.AgentUrl), StateSince = now, ReadyAt = now, Message = null });
            }
            else
            {
                _ = RunningAgainAsync(node, instance);
            }
        }
        else
        {
            FollowAllocations(instance);
        }
    }

    /// <summary>A restored instance its agent lists warm: running again, at the URL the agent gives (as a client here reaches it).</summary>
    private async Task RunningAgainAsync(NodeDirectory.RemoteNode node, InstanceSnapshot instance)
    {
        if (await AskAsync(node, instance.Service, CancellationToken.None) is { Running: true, Url: { Length: > 0 } url } && _instances.TryGetValue(instance.Key, out var current) && current.State == InstanceState.Unknown)
        {
            var now = time.GetUtcNow();
            Put(current with { State = InstanceState.Running, Url = Reachable(url, node.AgentUrl), StateSince = now, ReadyAt = now, Message = null });
        }
    }

    /// <summary>
    /// At each poll: a running instance whose last allocation here ended is idle, one allocated again runs, and a managed
    /// one idle for longer than its <c>idle_stop_after_s</c> is stopped through its agent (so the precision is the poll
    /// interval, <c>CfOrch:Cluster:PollSeconds</c>).
    /// </summary>
    private void FollowAllocations(InstanceSnapshot instance)
    {
        if (instance.State is not (InstanceState.Running or InstanceState.Idle))
        {
            return;
        }

        var count = allocations.All.Count(a => a.Service == instance.Service && a.NodeId == instance.Key.NodeId && a.GpuIndex == instance.Key.GpuIndex);
        var now = time.GetUtcNow();
        if (count > 0 && (instance.State == InstanceState.Idle || instance.Allocations != count))
        {
            Put(instance with { State = InstanceState.Running, Allocations = count, StateSince = instance.State == InstanceState.Idle ? now : instance.StateSince });
        }
        else if (count == 0 && instance.Allocations > 0)
        {
            Put(instance with { State = InstanceState.Idle, Allocations = 0, StateSince = now });
        }
        else if (sweeper.IdleStop(instance) is { } stop && stop.At <= now)
        {
            _ = StopIdleAsync(instance, stop.Reason);
        }
    }

    private async Task StopIdleAsync(InstanceSnapshot instance, string reason)
    {
        try
        {
            var node = NodeOf(instance.Key.NodeId);
            using var held = await locks.AcquireAsync(LockOf(instance.Key), CancellationToken.None);
            if (!_instances.TryGetValue(instance.Key, out var current) || current != instance || allocations.Holds(instance.Key.Service, instance.Key.NodeId, instance.Key.GpuIndex))
            {
                // Allocated again (its count follows a moment later), or stopped, meanwhile.
                return;
            }

            await StoppingAsync([instance], () => TellStopAsync(node, instance.Service, why => new OrchestrationException(OrchestrationError.StartFailed, why), CancellationToken.None));
            End(instance, HistoryKind.Stopped, reason);
        }
        catch (OrchestrationException ex)
        {
            // The next poll tries again.
            LogIdleStopFailed(instance.Key, ex.Message);
        }
    }

    /// <summary>
    /// After each poll of an agent: its instances follow its state (see the class summary). Those it does not list in
    /// <c>/resident-info</c> — the original agent lists only containers and what answers on a few well-known ports, so
    /// never a process it started — are looked up in what it says it runs (<c>GET /services</c>, once for all of
    /// them): listed there, they follow as listed ones; not listed, they ended there (stopped by hand, crashed, the
    /// agent restarted) and are ended as lost; no answer, the next poll asks again. An agent without <c>/services</c>
    /// (404) cannot say, so not being listed in <c>/resident-info</c> is its word. A start it answered with
    /// <c>running: false</c> runs once it is listed, and is ended as lost when it is not listed by the time
    /// <see cref="AgentClient.StartTimeout"/> has passed since (its lease is not held forever).
    /// </summary>
    private async Task FollowAsync(NodeDirectory.RemoteNode node)
    {
        bool Resident(InstanceSnapshot i) => node.Residents.Any(r => r.Is(i.Service));

        // Its agent answers, and /resident-info was asked after the instance got its state without listing it — for a
        // start the agent answered "not running yet", only once its start timeout has passed too (a model may be loading).
        // A run that was never listed since its start (its agent said "running" at once, as the Python agent does while
        // the service still loads) gets the same start timeout as one the agent answered "not running yet".
        bool Listed(InstanceSnapshot i) => _listed.TryGetValue(i.Key, out var since) && since == i.Since;
        bool Unlisted(InstanceSnapshot i) => !Resident(i) && i.State switch
        {
            InstanceState.Unknown => node.ResidentsAt > i.StateSince,
            InstanceState.Running or InstanceState.Idle => node.ResidentsAt > i.StateSince && (Listed(i) || node.ResidentsAt > i.Since + AgentClient.StartTimeout),
            InstanceState.Starting => i.Url.Length > 0 && node.ResidentsAt > i.StateSince + AgentClient.StartTimeout,
            _ => false,
        };

        var placed = _instances.Values.Where(i => i.Key.NodeId == node.NodeId).ToList();
        // Asked once for all: what is not resident and either looks gone or was never listed since its start.
        bool Unconfirmed(InstanceSnapshot i) => Unlisted(i) || (!Resident(i) && i.State is InstanceState.Running or InstanceState.Idle && !Listed(i));
        var running = node.Online && placed.Any(Unconfirmed) ? await RunningAsync(node) : null;
        foreach (var key in placed.Select(i => i.Key))
        {
            if (!_instances.TryGetValue(key, out var instance))
            {
                continue;
            }

            if (!node.Online)
            {
                if (instance.State != InstanceState.Unknown)
                {
                    Put(instance with
                    {
                        State = InstanceState.Unknown,
                        StateSince = time.GetUtcNow(),
                        Message = $"node '{node.NodeId}' does not answer ({node.Problem ?? "offline"}); its lease stays counted until it answers again or you release it",
                    });
                }
            }
            else if (Resident(instance) || (running is not null && running.Contains(instance.Service)))
            {
                _listed[instance.Key] = instance.Since;
                Reported(node, instance, url: null);
            }
            else if (running is not null && Unlisted(instance))
            {
                // Only as it was when asked: one being stopped meanwhile is ended by its stop, with its own reason.
                End(instance, HistoryKind.Lost, instance.State == InstanceState.Starting || !Listed(instance) && instance.State != InstanceState.Unknown
                    ? $"node '{node.NodeId}' did not report it running within {AgentClient.StartTimeout.TotalMinutes:0} min of its start"
                    : $"node '{node.NodeId}' no longer reports it running", asSeen: true);
            }
        }

        foreach (var key in _listed.Keys.Where(k => k.NodeId == node.NodeId && !_instances.ContainsKey(k)))
        {
            _listed.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// The services the agent says it runs (<c>GET /services</c>: <c>{running: [...]}</c>, as the original agent and
    /// this one answer); none for an agent that does not serve it; null when it does not answer.
    /// </summary>
    private async Task<IReadOnlySet<string>?> RunningAsync(NodeDirectory.RemoteNode node) =>
        (await ReadAsync(node, "services", notServed: new AgentRunningAnswer([]), CancellationToken.None))?.Running.ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// A lease for the service on the node's GPU with the most room; when only evicting less important services this
    /// coordinator placed there makes room, they are stopped through the agent first, and the lease is granted once the
    /// agent reports the memory free (bounded by the profile's <c>eviction_timeout_s</c> + 10 s).
    /// </summary>
    private async Task<(int Gpu, string LeaseId)> LeaseAsync(ServiceProfile profile, string nodeId, int? gpuIndex, List<Displaced> evicted, CancellationToken cancellationToken)
    {
        var accounts = leases.Accounts(nodeId);

        // The profile's GPU pins hold on every node, as on this one (GpuPlacer): refused before anything is evicted.
        if (Placement.PinRefusal(profile, accounts.Select(a => a.GpuIndex).ToList(), gpuIndex, $"node '{nodeId}'") is { } pinned)
        {
            throw pinned;
        }

        var candidates = accounts
            .Where(a => (gpuIndex is null || a.GpuIndex == gpuIndex) && Placement.Allows(profile, a.GpuIndex))
            .OrderByDescending(a => a.AvailableMb)
            .ThenBy(a => a.GpuIndex)
            .Select(a => a.GpuIndex)
            .ToList();
        if (candidates.Count == 0)
        {
            // Let the lease manager name what is wrong (an offline or unknown node, a GPU it lacks).
            candidates.Add(gpuIndex ?? (profile.Gpus.Count > 0 ? profile.Gpus[0] : 0));
        }

        var refusals = new List<string>();
        (int Gpu, Admission.NeedsEviction Plan)? eviction = null;
        foreach (var gpu in candidates)
        {
            switch (leases.Request(GpuPlacer.Request(profile, gpu, nodeId)))
            {
                case Admission.Granted granted:
                    return (gpu, granted.Lease.LeaseId);
                case Admission.Refused { Why: RefusalKind.UnknownGpu or RefusalKind.UnknownNode } unknown:
                    throw new OrchestrationException(OrchestrationError.NotFound, unknown.Reason);
                case Admission.Refused refused:
                    refusals.Add(refused.Reason);
                    break;
                case Admission.NeedsEviction plan:
                    // Only what this coordinator placed there is evicted from here: a lease it cannot trace to a service is left alone.
                    if (plan.Victims.All(v => HolderOf(v.LeaseId) is not null))
                    {
                        eviction ??= (gpu, plan);
                    }

                    refusals.Add(plan.Reason);
                    break;
            }
        }

        if (eviction is not { } evict)
        {
            throw new OrchestrationException(OrchestrationError.NoCapacity, string.Join("; ", refusals));
        }

        foreach (var victim in evict.Plan.Victims.Select(v => HolderOf(v.LeaseId)).OfType<InstanceSnapshot>())
        {
            await StopOneAsync(victim, HistoryKind.Evicted, $"evicted from GPU {evict.Gpu} of {nodeId} for {profile.Name} (priority {profile.Priority} over {victim.Priority})", cancellationToken);
            evicted.Add(new Displaced(victim.Key, victim.Model));
        }

        var lease = await room.LeaseOnceFreedAsync(GpuPlacer.Request(profile, evict.Gpu, nodeId), RoomWaiter.Evicted(evict.Plan.Victims), $"GPU {evict.Gpu} of {nodeId}",
            ct => nodes.RefreshAsync(nodeId, ct), EvictionPoll, cancellationToken);
        return (evict.Gpu, lease.LeaseId);
    }

    /// <summary>How often the agent is asked again after an eviction there (each ask is an HTTP round trip).</summary>
    private static readonly TimeSpan EvictionPoll = TimeSpan.FromMilliseconds(500);


    /// <summary>The lock of a service on a node: its starts, stops and the allocations' claims take it in turn.</summary>
    private static string LockOf(string service, string nodeId) => $"{service}@{nodeId}";

    private static string LockOf(InstanceKey key) => LockOf(key.Service, key.NodeId);

    /// <summary>
    /// Forgets the instance and releases its lease with why. <paramref name="asSeen"/>: only while it is still as
    /// <paramref name="instance"/> (one that changed meanwhile is left to what changed it); false when nothing ended.
    /// </summary>
    private bool End(InstanceSnapshot instance, HistoryKind kind, string reason, bool asSeen = false)
    {
        if (asSeen ? _instances.TryRemove(KeyValuePair.Create(instance.Key, instance)) : _instances.TryRemove(instance.Key, out _))
        {
            publisher.Publish(new InstanceRemoved(instance.Key));
        }
        else if (asSeen)
        {
            return false;
        }

        if (instance.LeaseId is { } leaseId)
        {
            leases.Release(leaseId, kind, reason);
        }

        return true;
    }

    private void Put(InstanceSnapshot instance)
    {
        _instances[instance.Key] = instance;
        publisher.Publish(new InstanceChanged(instance));
    }

    private void Forget(InstanceKey key)
    {
        if (_instances.TryRemove(key, out _))
        {
            publisher.Publish(new InstanceRemoved(key));
        }
    }

    private NodeDirectory.RemoteNode NodeOf(string nodeId) =>
        nodes.Find(nodeId) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"unknown node_id '{nodeId}'");

    private static Uri AgentUri(NodeDirectory.RemoteNode node, string path) => new(new Uri(node.AgentUrl + "/"), path);

    /// <summary>
    /// The URL of a service on another node as a client here can reach it: an agent that reports a loopback address
    /// (its own view) is reached at the host its agent URL names.
    /// </summary>
    public static string Reachable(string url, string agentUrl)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var service) || !service.IsLoopback || !Uri.TryCreate(agentUrl, UriKind.Absolute, out var agent) || agent.IsLoopback)
        {
            return url;
        }

        return new UriBuilder(service) { Host = agent.Host }.Uri.ToString().TrimEnd('/');
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} services placed on other nodes are held again after the restart, unknown until their agents answer")]
    private partial void LogRestored(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} was idle, but its agent did not stop it: {Why}; the next poll tries again")]
    private partial void LogIdleStopFailed(InstanceKey key, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Service} started on node {NodeId} GPU {Gpu} through its agent: {Url}")]
    private partial void LogStarted(string service, string nodeId, int gpu, string url);
}
