using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using CfOrch.Core.State;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Options;
using CfOrch.Core.Allocations;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// The one façade the API and the dashboard call: ensure, allocate, start and stop services, lease VRAM, read the
/// state. It only coordinates; the rules live in the parts it calls — <see cref="ServiceEnsurer"/> (ensure),
/// <see cref="GpuPlacer"/> (placement and eviction), <see cref="InstanceStopper"/>, <see cref="CrashRestarter"/>,
/// <see cref="AlwaysOnStarter"/>, <see cref="Sweeper"/>, the lease manager and the allocation table. Nothing outside
/// Core changes leases or instances directly.
/// </summary>
public sealed class Orchestrator(
    ProfileRegistry profiles,
    InstanceRegistry registry,
    ServiceLocks locks,
    LeaseManager leases,
    AllocationTable allocations,
    InstanceAllocations allocationCounts,
    StateStream stream,
    ServiceEnsurer ensurer,
    InstanceStopper stopper,
    CrashRestarter crashes,
    AlwaysOnStarter alwaysOn,
    Sweeper sweeper,
    ServiceRuntimes runtimes,
    ModelResolver models,
    ModelUnloader unloader,
    IdleModelEviction idleModels,
    TimeProvider time,
    IOptions<CfOrchOptions> options)
{
    public string NodeId => options.Value.NodeId;

    public EngineSnapshot Snapshot() => stream.Snapshot();

    public StateSubscription Subscribe(CancellationToken cancellationToken, int? maxBacklog = null) => stream.Subscribe(cancellationToken, maxBacklog);

    public IReadOnlyList<InstanceSnapshot> Instances => registry.All;

    public IReadOnlyList<Lease> Leases => leases.All;

    public IReadOnlyList<Allocation> Allocations => allocations.All;

    public IReadOnlyList<GpuAccount> Accounts => leases.Accounts();

    /// <summary>The output of a managed instance (null for adopted ones and unknown keys).</summary>
    public LogRing? Logs(InstanceKey key) => runtimes.Logs(key);

    /// <summary>The service as the active profile defines it; throws <see cref="OrchestrationError.UnknownService"/>.</summary>
    public ServiceProfile Service(string service) => ActiveServices.Get(profiles, service);

    /// <summary>
    /// Returns a serving instance of the service: one already running (warm), one that already runs outside cf-orch
    /// (adopted now), or one started from its spec (waiting until its health path answers). The API's and the
    /// dashboard's Start.
    /// </summary>
    public Task<EnsureResult> EnsureAsync(string service, int? gpuIndex, string? model, CancellationToken cancellationToken) =>
        ensurer.EnsureAsync(Service(service), gpuIndex, model, cancellationToken);

    /// <summary>cf-orch's allocate: a serving instance (started when needed) and a claim on it for the caller.</summary>
    public async Task<AllocationResult> AllocateAsync(string service, IReadOnlyList<string> modelCandidates, int? gpuIndex, double ttlSeconds, string caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(modelCandidates);

        // Every check that can refuse runs before anything is evicted or started: a refused allocation changes nothing.
        await models.PrecheckAsync(ActiveServices.Get(profiles, service), modelCandidates, cancellationToken);
        var ensured = await EnsureAsync(service, gpuIndex, modelCandidates.FirstOrDefault(m => !string.IsNullOrWhiteSpace(m)), cancellationToken);
        return await AllocateOnAsync(ensured, modelCandidates, ttlSeconds, caller, cancellationToken);
    }

    /// <summary>
    /// Before an allocation on another node evicts or starts anything there: the models of the service where it answers
    /// on that node (<paramref name="where"/>: null when it does not run there yet), as <see cref="AllocateAsync"/>
    /// checks them here.
    /// </summary>
    public Task PrecheckModelsAsync(ServiceProfile profile, IReadOnlyList<string> modelCandidates, Func<CancellationToken, Task<string?>> where, CancellationToken cancellationToken) =>
        models.PrecheckAsync(profile, modelCandidates, cancellationToken, where);

    /// <summary>
    /// The claim of an allocation on an instance already ensured (on this node or, placed by the coordinator, on
    /// another: <paramref name="elsewhere"/>): the model picked from the candidates, the URL handed to the caller, the
    /// TTL. The allocation is added under the instance's lock, and only while the instance still runs the run it was
    /// ensured as — one stopped meanwhile (the undo of another allocation's start) is refused, never handed out. Refused
    /// after this allocation started the instance (an Ollama that did not run could not be asked for its models before),
    /// the start is undone — stopped, its lease released — unless another allocation holds it by then, so that a refused
    /// allocation leaves no service behind.
    /// </summary>
    public async Task<AllocationResult> AllocateOnAsync(EnsureResult ensured, IReadOnlyList<string> modelCandidates, double ttlSeconds, string caller, CancellationToken cancellationToken, IRemoteInstances? elsewhere = null)
    {
        ArgumentNullException.ThrowIfNull(ensured);
        ArgumentNullException.ThrowIfNull(modelCandidates);
        var service = ensured.Instance.Service;
        Allocation allocation;
        bool claimed;
        try
        {
            var model = await models.ResolveAsync(ensured.Instance, modelCandidates, cancellationToken);
            if (model is not null)
            {
                await idleModels.MakeRoomForModelAsync(ensured.Instance, model, string.IsNullOrWhiteSpace(caller) ? "anonymous" : caller, cancellationToken);
            }

            var now = time.GetUtcNow();
            allocation = new Allocation
            {
                AllocationId = "alloc-" + Guid.NewGuid().ToString("N")[..16],
                Service = service,
                NodeId = ensured.Instance.Key.NodeId,
                GpuIndex = ensured.Instance.Key.GpuIndex,
                Model = model ?? ensured.Instance.Model,
                Url = ClientUrl(ensured.Instance.Url),
                Caller = string.IsNullOrWhiteSpace(caller) ? "anonymous" : caller,
                CreatedAt = now,
                ExpiresAt = ttlSeconds > 0 ? now + TimeSpan.FromSeconds(ttlSeconds) : null,
            };
            void Claim()
            {
                allocations.Add(allocation);
                allocationCounts.Recount(ensured.Instance.Key);
            }

            claimed = elsewhere is not null
                ? await elsewhere.ClaimAsync(ensured.Instance, Claim, cancellationToken)
                : await ClaimHereAsync(ensured.Instance, Claim, cancellationToken);
        }
        catch (OrchestrationException refused) when (ensured.Started)
        {
            throw await UndoStartAsync(ensured.Instance, refused, elsewhere);
        }
        catch (OperationCanceledException) when (ensured.Started)
        {
            // The caller hung up: what it started is not left running without an allocation (with idle_stop_after_s 0,
            // nothing would ever stop it). The stop runs to its end whatever the caller's token says.
            try
            {
                await StopStartedAsync(ensured.Instance, "started for an allocation whose caller hung up", elsewhere);
            }
            catch (OrchestrationException)
            {
                // Not stopped (its agent did not answer): it stays as any running service does, its lease counted.
            }

            throw;
        }

        if (!claimed)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{service} on {ensured.Instance.Key.NodeId} GPU {ensured.Instance.Key.GpuIndex} stopped while this allocation was made; nothing is allocated, ask again");
        }

        var instance = allocationCounts.Recount(ensured.Instance.Key) ?? ensured.Instance;
        return new AllocationResult(allocation, instance, ensured.Started, ensured.Warm);
    }

    /// <summary>An allocation's claim on an instance of this node: under the service's lock (as its stops are), while the instance still runs that run.</summary>
    private async Task<bool> ClaimHereAsync(InstanceSnapshot ensured, Action claim, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(ensured.Key.Service, cancellationToken);
        if (registry.Get(ensured.Key) is not { IsActive: true } current || current.State == InstanceState.Stopping || current.Since != ensured.Since)
        {
            return false;
        }

        claim();
        return true;
    }

    /// <summary>Stops an instance an allocation started and then refused; the refusal, saying what became of it.</summary>
    private async Task<OrchestrationException> UndoStartAsync(InstanceSnapshot started, OrchestrationException refused, IRemoteInstances? elsewhere)
    {
        string what;
        try
        {
            what = await StopStartedAsync(started, $"started for an allocation that was refused: {refused.Message}", elsewhere) switch
            {
                UndoOutcome.Stopped => $"{started.Service}, started for it, is stopped again",
                UndoOutcome.Allocated => $"{started.Service} was started for it and is left running, allocated meanwhile",
                UndoOutcome.Replaced => $"{started.Service} was started for it and ended meanwhile; the one running now was started since and is left as it is",
                _ => $"{started.Service} was started for it and ended meanwhile",
            };
        }
        catch (OrchestrationException ex)
        {
            what = $"{started.Service} was started for it and could not be stopped again: {ex.Message}";
        }

        return new OrchestrationException(refused.Error, $"{refused.Message}; {what}");
    }

    /// <summary>Stops an instance an allocation started, unless it is allocated meanwhile, ended meanwhile or another run by now; says which.</summary>
    private Task<UndoOutcome> StopStartedAsync(InstanceSnapshot started, string reason, IRemoteInstances? elsewhere) =>
        elsewhere is not null ? elsewhere.UndoStartAsync(started, reason) : StopStartedHereAsync(started, reason);

    private async Task<UndoOutcome> StopStartedHereAsync(InstanceSnapshot started, string reason)
    {
        var outcome = UndoOutcome.Ended;

        // Checked under the service's lock, as an allocation's claim is made (ClaimHereAsync).
        bool Unclaimed(InstanceSnapshot i)
        {
            outcome = i.Since != started.Since ? (i.IsActive ? UndoOutcome.Replaced : UndoOutcome.Ended)
                : !i.IsActive || i.State == InstanceState.Stopping ? UndoOutcome.Ended
                : allocations.Holds(i.Key.Service, i.Key.NodeId, i.Key.GpuIndex) ? UndoOutcome.Allocated
                : UndoOutcome.Stopped;
            return outcome == UndoOutcome.Stopped;
        }

        try
        {
            await stopper.StopAsync(started.Key, HistoryKind.Stopped, reason, CancellationToken.None, Unclaimed);
        }
        catch (OrchestrationException ex) when (ex.Error == OrchestrationError.NotFound)
        {
            return UndoOutcome.Ended;
        }

        return outcome;
    }

    /// <summary>Asks a serving Ollama to unload one model (it keeps running); says what happened.</summary>
    public Task<string> UnloadModelAsync(string service, int? gpuIndex, string model, string by, CancellationToken cancellationToken) =>
        unloader.UnloadAsync(service, gpuIndex, model, by, cancellationToken);

    /// <summary>The model a serving instance will use for these candidates (see <see cref="ModelResolver"/>).</summary>
    public Task<string?> ResolveModelAsync(InstanceSnapshot instance, IReadOnlyList<string> candidates, CancellationToken cancellationToken) =>
        models.ResolveAsync(instance, candidates, cancellationToken);

    /// <summary>Releases an allocation; the last one makes its instance idle.</summary>
    public Allocation ReleaseAllocation(string service, string allocationId, string reason = "released by the caller")
    {
        var allocation = allocations.Get(allocationId);
        if (allocation is null || allocation.Service != service)
        {
            throw new OrchestrationException(OrchestrationError.NotFound, $"Allocation '{allocationId}' not found for service '{service}'");
        }

        allocations.Remove(allocationId, reason);
        allocationCounts.Recount(new InstanceKey(service, allocation.NodeId, allocation.GpuIndex));
        return allocation;
    }

    /// <summary>
    /// Stops the service's instances (on one GPU when given). A managed one gets SIGTERM, a grace of the profile's
    /// eviction_timeout_s, then SIGKILL; an adopted one is only released from tracking — its process keeps running; a
    /// crashed one waiting for its automatic restart is not restarted.
    /// </summary>
    public async Task<IReadOnlyList<StopOutcome>> StopAsync(string service, int? gpuIndex, CancellationToken cancellationToken)
    {
        var outcomes = new List<StopOutcome>(await crashes.CancelForStopAsync(service, gpuIndex, cancellationToken));
        var targets = registry.ForService(service).Where(i => i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (targets.Count == 0 && outcomes.Count == 0 && !profiles.Active.Profile.Services.ContainsKey(service) && registry.ForService(service).Count == 0)
        {
            Service(service);
        }

        foreach (var instance in targets)
        {
            outcomes.Add(await stopper.StopAsync(instance.Key, HistoryKind.Stopped, "stopped on request", cancellationToken));
        }

        return outcomes;
    }

    /// <summary>Stops the service's managed instance (on one GPU when given) and starts it again from its spec.</summary>
    public async Task<EnsureResult> RestartAsync(string service, int? gpuIndex, CancellationToken cancellationToken)
    {
        var profile = Service(service);
        var running = registry.ForService(service).Where(i => i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (running.FirstOrDefault(i => i.Origin == InstanceOrigin.Adopted) is { } adopted)
        {
            throw new OrchestrationException(OrchestrationError.Invalid, OutsideControl.WhyNotRestart(adopted, profile.Managed));
        }

        foreach (var instance in running)
        {
            await stopper.StopAsync(instance.Key, HistoryKind.Stopped, "restart", cancellationToken);
        }

        return await EnsureAsync(profile.Name, gpuIndex ?? running.FirstOrDefault()?.Key.GpuIndex, running.FirstOrDefault()?.Model, cancellationToken);
    }

    /// <summary>
    /// A client's lease on a GPU (cf-orch's POST /api/leases) of this node, or of a registered agent's node; refused
    /// with what holds the GPU when it does not fit.
    /// </summary>
    public ValueTask<Lease> RequestLeaseAsync(string holder, int gpuIndex, long mb, int priority, TimeSpan? ttl, CancellationToken cancellationToken, string? nodeId = null)
    {
        if (string.IsNullOrWhiteSpace(holder))
        {
            throw new OrchestrationException(OrchestrationError.Invalid, "a lease needs a holder");
        }

        var request = new LeaseRequest(holder, null, gpuIndex, mb, priority, HolderOrigin.Client, ttl) { NodeId = nodeId };
        return leases.Request(request) switch
        {
            Admission.Granted g => ValueTask.FromResult(g.Lease),
            Admission.NeedsEviction e => UnloadingIdleModelsAsync(request, $"{e.Reason}; a client lease never evicts services — stop them first", cancellationToken),
            Admission.Refused { Why: RefusalKind.NoCapacity } r => UnloadingIdleModelsAsync(request, r.Reason, cancellationToken),
            Admission.Refused r => throw new OrchestrationException(r.Why switch
            {
                RefusalKind.UnknownGpu or RefusalKind.UnknownNode => OrchestrationError.NotFound,
                RefusalKind.Invalid => OrchestrationError.Invalid,
                _ => OrchestrationError.NoCapacity,
            }, r.Reason),
            _ => throw new InvalidOperationException("unknown admission"),
        };
    }

    /// <summary>A lease that did not fit, granted after a less important Ollama unloaded idle models; else refused with <paramref name="refusal"/>.</summary>
    private async ValueTask<Lease> UnloadingIdleModelsAsync(LeaseRequest request, string refusal, CancellationToken cancellationToken) =>
        await idleModels.LeaseByUnloadingAsync(request, cancellationToken) ?? throw new OrchestrationException(OrchestrationError.NoCapacity, refusal);

    /// <summary>Releases any lease; a service's lease is released by stopping the service instead.</summary>
    public Lease ReleaseLease(string leaseId)
    {
        var lease = leases.Get(leaseId) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"Lease '{leaseId}' not found");
        if (lease.Origin != HolderOrigin.Client && registry.All.FirstOrDefault(i => i.LeaseId == leaseId) is { } instance)
        {
            throw new OrchestrationException(OrchestrationError.Invalid, $"lease {leaseId} belongs to {instance.Key}; stop the service to release it");
        }

        leases.Release(leaseId, HistoryKind.Released, "released on request");
        return lease;
    }

    /// <summary>Starts the <c>always_on</c> services that do not run (see <see cref="AlwaysOnStarter"/>).</summary>
    public Task<IReadOnlyList<string>> StartAlwaysOnAsync(IReadOnlyCollection<string>? services, CancellationToken cancellationToken) =>
        alwaysOn.StartAsync(services, cancellationToken);

    /// <summary>Expires what outlived its TTL and stops what was idle too long (see <see cref="Sweeper"/>).</summary>
    public Task SweepAsync(CancellationToken cancellationToken) => sweeper.SweepAsync(cancellationToken);

    /// <summary>Sweeps whenever a TTL or an idle stop is due, for the life of the app (see <see cref="Sweeper.RunAsync"/>).</summary>
    public Task RunSweepsAsync(CancellationToken stopping) => sweeper.RunAsync(stopping);

    /// <summary>The URL handed to clients: the service's own, with <c>CfOrch:AdvertiseHost</c> in place of a loopback host.</summary>
    public string ClientUrl(string url)
    {
        var advertise = options.Value.AdvertiseHost;
        if (string.IsNullOrWhiteSpace(advertise) || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || !uri.IsLoopback)
        {
            return url;
        }

        return new UriBuilder(uri) { Host = advertise }.Uri.ToString().TrimEnd('/');
    }
}
