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
/// <see cref="AlwaysOnStarter"/>, <see cref="Sweeper"/>, <see cref="Allocator"/> (allocate), the lease manager and
/// the allocation table. Nothing outside
/// Core changes leases or instances directly.
/// </summary>
public sealed class Orchestrator(
    ProfileRegistry profiles,
    InstanceRegistry registry,
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
    Allocator allocator,
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
    /// The claim of an allocation on an instance already ensured, here or (<paramref name="elsewhere"/>) on another
    /// node; a refused claim undoes the start it made (see <see cref="Allocator"/>).
    /// </summary>
    public Task<AllocationResult> AllocateOnAsync(EnsureResult ensured, IReadOnlyList<string> modelCandidates, double ttlSeconds, string caller, CancellationToken cancellationToken, IRemoteInstances? elsewhere = null) =>
        allocator.AllocateOnAsync(ensured, modelCandidates, ttlSeconds, caller, cancellationToken, elsewhere);

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
    /// Stops the service's instances (on one GPU when given). A managed one gets SIGTERM, a grace (<paramref name="grace"/>,
    /// else the profile's eviction_timeout_s), then SIGKILL; an adopted one is only released from tracking — its process
    /// keeps running; a crashed one waiting for its automatic restart is not restarted.
    /// </summary>
    public async Task<IReadOnlyList<StopOutcome>> StopAsync(string service, int? gpuIndex, CancellationToken cancellationToken, TimeSpan? grace = null)
    {
        var outcomes = new List<StopOutcome>(await crashes.CancelForStopAsync(service, gpuIndex, cancellationToken));
        var targets = registry.ForService(service).Where(i => i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (targets.Count == 0 && outcomes.Count == 0 && !profiles.Active.Profile.Services.ContainsKey(service) && registry.ForService(service).Count == 0)
        {
            Service(service);
        }

        foreach (var instance in targets)
        {
            outcomes.Add(await stopper.StopAsync(instance.Key, HistoryKind.Stopped, "stopped on request", cancellationToken, grace: grace));
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
    public string ClientUrl(string url) => Allocator.ClientUrl(url, options.Value.AdvertiseHost);
}
