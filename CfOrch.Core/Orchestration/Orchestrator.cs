using System.Collections.Concurrent;
using System.Globalization;
using CfOrch.Core.Adoption;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Health;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// The one façade the API and the dashboard call: ensure, allocate, start and stop services, lease VRAM, read the
/// state. Rules live in the parts it coordinates (leases, launcher, health monitor, adoption); nothing outside Core
/// changes leases or instances directly.
/// </summary>
public sealed partial class Orchestrator(
    ProfileRegistry profiles,
    InstanceRegistry registry,
    LeaseManager leases,
    AllocationTable allocations,
    GpuMonitor gpus,
    StateStream stream,
    ServiceLauncher launcher,
    InstanceLifecycle lifecycle,
    ManagedProcesses processes,
    AdoptionService adoption,
    HealthMonitor health,
    ModelResolver models,
    TimeProvider time,
    IOptions<CfOrchOptions> options,
    ILogger<Orchestrator> logger) : IDisposable
{
    private static readonly TimeSpan FreeMemoryPoll = TimeSpan.FromMilliseconds(250);
    private readonly KeyedLock _serviceLocks = new();
    private readonly ConcurrentDictionary<string, (DateTimeOffset At, int? Gpu)> _stopRequests = new(StringComparer.Ordinal);

    public string NodeId => options.Value.NodeId;

    public EngineSnapshot Snapshot() => stream.Snapshot();

    public StateSubscription Subscribe(CancellationToken cancellationToken, int? maxBacklog = null) => stream.Subscribe(cancellationToken, maxBacklog);

    public IReadOnlyList<InstanceSnapshot> Instances => registry.All;

    public IReadOnlyList<Lease> Leases => leases.All;

    public IReadOnlyList<Allocation> Allocations => allocations.All;

    public IReadOnlyList<GpuAccount> Accounts => leases.Accounts();

    /// <summary>The output of a managed instance (null for adopted ones and unknown keys).</summary>
    public LogRing? Logs(InstanceKey key) => processes.Get(key)?.Output;

    /// <summary>The service as the active profile defines it; throws <see cref="OrchestrationError.UnknownService"/>.</summary>
    public ServiceProfile Service(string service) =>
        profiles.Active.Profile.Services.GetValueOrDefault(service)
        ?? throw new OrchestrationException(OrchestrationError.UnknownService,
            $"unknown service '{service}': profile '{profiles.Active.Profile.Name}' has {string.Join(", ", profiles.Active.Profile.Services.Keys.Order(StringComparer.Ordinal))}");

    /// <summary>
    /// Returns a serving instance of the service: one already running (warm), one that already runs outside cf-orch
    /// (adopted now), or one started from its spec (waiting until its health path answers).
    /// </summary>
    public async Task<EnsureResult> EnsureAsync(string service, int? gpuIndex, string? model, CancellationToken cancellationToken)
    {
        var profile = Service(service);
        InstanceSnapshot starting;
        using (await _serviceLocks.AcquireAsync(service, cancellationToken))
        {
            var existing = registry.ForService(service)
                .Where(i => i.IsActive && i.State != InstanceState.Stopping && (gpuIndex is null || i.Key.GpuIndex == gpuIndex))
                .OrderBy(i => i.State == InstanceState.Unhealthy)
                .ThenByDescending(i => i.IsServing)
                .FirstOrDefault();
            if (existing is { IsServing: true })
            {
                return new EnsureResult(existing, Started: false, Warm: true);
            }

            if (existing is { State: InstanceState.Unhealthy })
            {
                throw new OrchestrationException(OrchestrationError.StartFailed, $"{existing.Key} is unhealthy: {existing.Message}");
            }

            if (existing is { State: InstanceState.Starting })
            {
                starting = existing;
            }
            else
            {
                if (profile.Managed is { Adopt: true })
                {
                    adoption.Unrelease(service);
                    if (await adoption.CheckAsync(profile, cancellationToken, beforeStart: true) is { } adopted)
                    {
                        return new EnsureResult(adopted, Started: false, Warm: true);
                    }

                    // The periodic adoption pass may have adopted it meanwhile (the check then finds it tracked).
                    if (registry.ForService(service).FirstOrDefault(i => i is { IsServing: true, Origin: InstanceOrigin.Adopted } && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)) is { } adoptedMeanwhile)
                    {
                        return new EnsureResult(adoptedMeanwhile, Started: false, Warm: true);
                    }
                }

                starting = await StartNewAsync(profile, gpuIndex, model, cancellationToken);
            }
        }

        return new EnsureResult(await WaitUntilServingAsync(starting, cancellationToken), Started: true, Warm: false);
    }

    /// <summary>cf-orch's allocate: a serving instance (started when needed) and a claim on it for the caller.</summary>
    public async Task<AllocationResult> AllocateAsync(string service, IReadOnlyList<string> modelCandidates, int? gpuIndex, double ttlSeconds, string caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(modelCandidates);
        var ensured = await EnsureAsync(service, gpuIndex, modelCandidates.FirstOrDefault(m => !string.IsNullOrWhiteSpace(m)), cancellationToken);
        var model = await models.ResolveAsync(ensured.Instance, modelCandidates, cancellationToken);
        var now = time.GetUtcNow();
        var allocation = new Allocation
        {
            AllocationId = "alloc-" + Guid.NewGuid().ToString("N")[..16],
            Service = service,
            NodeId = NodeId,
            GpuIndex = ensured.Instance.Key.GpuIndex,
            Model = model ?? ensured.Instance.Model,
            Url = ClientUrl(ensured.Instance.Url),
            Caller = string.IsNullOrWhiteSpace(caller) ? "anonymous" : caller,
            CreatedAt = now,
            ExpiresAt = ttlSeconds > 0 ? now + TimeSpan.FromSeconds(ttlSeconds) : null,
        };
        allocations.Add(allocation);
        var instance = CountAllocations(ensured.Instance.Key) ?? ensured.Instance;
        return new AllocationResult(allocation, instance, ensured.Started, ensured.Warm);
    }

    /// <summary>The model a serving instance will use for these candidates (see <see cref="ModelResolver"/>).</summary>
    public Task<string?> ResolveModelAsync(InstanceSnapshot instance, IReadOnlyList<string> candidates, CancellationToken cancellationToken) =>
        models.ResolveAsync(instance, candidates, cancellationToken);

    /// <summary>Releases an allocation; the last one makes its instance idle.</summary>
    public Allocation ReleaseAllocation(string service, string allocationId, string reason = "released by the caller")
    {
        var allocation = allocations.Get(allocationId);
        if (allocation is null || allocation.Service != service)
        {
            throw new OrchestrationException(OrchestrationError.NotFound, $"no allocation {allocationId} of service '{service}'");
        }

        allocations.Remove(allocationId, reason);
        CountAllocations(new InstanceKey(service, allocation.NodeId, allocation.GpuIndex));
        return allocation;
    }

    /// <summary>
    /// Stops the service's instances (on one GPU when given). A managed one gets SIGTERM, a grace of the profile's
    /// eviction_timeout_s, then SIGKILL; an adopted one is only released from tracking — its process keeps running.
    /// </summary>
    public async Task<IReadOnlyList<StopOutcome>> StopAsync(string service, int? gpuIndex, CancellationToken cancellationToken)
    {
        var outcomes = new List<StopOutcome>();

        // A process may crash just before this stop and have its restart scheduled just after: the restart checks this.
        _stopRequests[service] = (time.GetUtcNow(), gpuIndex);

        // First a crashed instance waiting for its automatic restart: stopping the service means it stays down. Under
        // the service's lock, so a restart that is launching right now finishes first and is stopped below.
        if (registry.ForService(service).Any(i => i.PendingRestart is not null))
        {
            using var serviceLock = await _serviceLocks.AcquireAsync(service, cancellationToken);
            foreach (var failed in registry.ForService(service).Where(i => i.PendingRestart is not null && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList())
            {
                if (EndPendingRestart(failed, "its restart was cancelled (stopped on request)") is { } cancelled)
                {
                    outcomes.Add(new StopOutcome(cancelled, $"{service} on GPU {failed.Key.GpuIndex} will not be restarted (restart cancelled); it stays failed"));
                }
            }
        }

        var targets = registry.ForService(service).Where(i => i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (targets.Count == 0 && outcomes.Count == 0 && !profiles.Active.Profile.Services.ContainsKey(service) && registry.ForService(service).Count == 0)
        {
            Service(service);
        }

        foreach (var instance in targets)
        {
            outcomes.Add(await StopInstanceAsync(instance.Key, HistoryKind.Stopped, "stopped on request", cancellationToken));
        }

        return outcomes;
    }

    /// <summary>
    /// The restart that <c>restart: on-failure</c> scheduled for <paramref name="failed"/>: started on the same GPU with the
    /// same model, unless it was cancelled (the service was stopped), it was started again meanwhile, or the service runs
    /// elsewhere now; then null. Serialised with starts and stops of the service, like a start on request.
    /// </summary>
    public async Task<EnsureResult?> RestartCrashedAsync(InstanceSnapshot failed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(failed);
        InstanceSnapshot starting;
        using (await _serviceLocks.AcquireAsync(failed.Service, cancellationToken))
        {
            var current = registry.Get(failed.Key);
            if (current is not { State: InstanceState.Failed, PendingRestart: { } pending } || current.Since != failed.Since)
            {
                return null;
            }

            string? skip = null;
            if (_stopRequests.TryGetValue(failed.Service, out var stop) && stop.At >= current.StateSince && (stop.Gpu is null || stop.Gpu == failed.Key.GpuIndex))
            {
                skip = "its restart was cancelled (stopped on request)";
            }
            else if (registry.ForService(failed.Service).FirstOrDefault(i => i.IsActive) is { } other)
            {
                skip = $"not restarted: it runs again on GPU {other.Key.GpuIndex}";
            }

            if (skip is not null)
            {
                EndPendingRestart(failed, skip);
                return null;
            }

            try
            {
                starting = await StartNewAsync(Service(failed.Service), failed.Key.GpuIndex, failed.Model, cancellationToken, pending.Number);
            }
            catch (OrchestrationException ex)
            {
                // The launch did not happen (no room on its GPU, the executable is gone): it stays failed, and says why.
                EndPendingRestart(failed, $"restart {pending.Number} of {pending.Of} failed: {ex.Message}");
                throw;
            }
        }

        return new EnsureResult(await WaitUntilServingAsync(starting, cancellationToken), Started: true, Warm: false);
    }

    /// <summary>Clears the scheduled restart of <paramref name="failed"/> (that very run), noting why.</summary>
    public InstanceSnapshot? EndPendingRestart(InstanceSnapshot failed, string why)
    {
        ArgumentNullException.ThrowIfNull(failed);
        return registry.Update(failed.Key, i => i with { PendingRestart = null, Message = $"{i.Message}; {why}" }, i => i.Since == failed.Since && i.PendingRestart is not null);
    }

    /// <summary>Stops the service's managed instance (on one GPU when given) and starts it again from its spec.</summary>
    public async Task<EnsureResult> RestartAsync(string service, int? gpuIndex, CancellationToken cancellationToken)
    {
        var profile = Service(service);
        var running = registry.ForService(service).Where(i => i.IsActive && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList();
        if (running.Any(i => i.Origin == InstanceOrigin.Adopted))
        {
            throw new OrchestrationException(OrchestrationError.Invalid, $"{service} runs outside cf-orch (adopted): restart it with its own service manager (for Ollama: systemctl restart ollama)");
        }

        foreach (var instance in running)
        {
            await StopInstanceAsync(instance.Key, HistoryKind.Stopped, "restart", cancellationToken);
        }

        return await EnsureAsync(profile.Name, gpuIndex ?? running.FirstOrDefault()?.Key.GpuIndex, running.FirstOrDefault()?.Model, cancellationToken);
    }

    /// <summary>A client's lease on a GPU (cf-orch's POST /api/leases); refused with what holds the GPU when it does not fit.</summary>
    public Lease RequestLease(string holder, int gpuIndex, long mb, int priority, TimeSpan? ttl)
    {
        if (string.IsNullOrWhiteSpace(holder))
        {
            throw new OrchestrationException(OrchestrationError.Invalid, "a lease needs a holder");
        }

        return leases.Request(new LeaseRequest(holder, null, gpuIndex, mb, priority, HolderOrigin.Client, ttl)) switch
        {
            Admission.Granted g => g.Lease,
            Admission.NeedsEviction e => throw new OrchestrationException(OrchestrationError.NoCapacity, $"{e.Reason}; a client lease never evicts services — stop them first"),
            Admission.Refused r => throw new OrchestrationException(r.Why switch
            {
                RefusalKind.UnknownGpu => OrchestrationError.NotFound,
                RefusalKind.Invalid => OrchestrationError.Invalid,
                _ => OrchestrationError.NoCapacity,
            }, r.Reason),
            _ => throw new InvalidOperationException("unknown admission"),
        };
    }

    /// <summary>Releases any lease; a service's lease is released by stopping the service instead.</summary>
    public Lease ReleaseLease(string leaseId)
    {
        var lease = leases.Get(leaseId) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"no lease {leaseId}");
        if (lease.Origin != HolderOrigin.Client && registry.All.FirstOrDefault(i => i.LeaseId == leaseId) is { } instance)
        {
            throw new OrchestrationException(OrchestrationError.Invalid, $"lease {leaseId} belongs to {instance.Key}; stop the service to release it");
        }

        leases.Release(leaseId, HistoryKind.Released, "released on request");
        return lease;
    }

    /// <summary>
    /// Starts the <c>always_on</c> services among <paramref name="services"/> (all of the active profile's when null) that
    /// have no active instance: each one adopted if it already runs, else started from its spec, one after another in
    /// priority order. A container (<c>type: docker</c>) is not started — cf-orch does not start containers yet — and a
    /// start that fails leaves its instance failed with the reason; neither stops the others. Returns what happened to
    /// each, for the log.
    /// </summary>
    public async Task<IReadOnlyList<string>> StartAlwaysOnAsync(IReadOnlyCollection<string>? services, CancellationToken cancellationToken)
    {
        var outcomes = new List<string>();
        var wanted = profiles.Active.Profile.Services.Values
            .Where(s => s.AlwaysOn && (services is null || services.Contains(s.Name)))
            .OrderBy(s => s.Priority).ThenBy(s => s.Name, StringComparer.Ordinal);
        foreach (var service in wanted)
        {
            if (registry.ForService(service.Name).Any(i => i.IsActive))
            {
                continue;
            }

            if (service.Managed is not ProcessSpec)
            {
                if (service.Managed is { Adopt: true } && await adoption.CheckAsync(service, cancellationToken) is not null)
                {
                    outcomes.Add($"{service.Name}: adopted (always_on)");
                    continue;
                }

                outcomes.Add(service.Managed is null
                    ? $"{service.Name}: always_on, but it has no managed block, so cf-orch cannot start it"
                    : $"{service.Name}: always_on, but it is a container (type: {service.Managed.Type}) and cf-orch does not start containers yet; start it yourself{(service.Managed.Adopt ? " and cf-orch adopts it" : "")}");
                continue;
            }

            try
            {
                var result = await EnsureAsync(service.Name, null, null, cancellationToken);
                outcomes.Add($"{service.Name}: {(result.Started ? "started" : "adopted")} on GPU {result.Instance.Key.GpuIndex} (always_on)");
            }
            catch (OrchestrationException ex)
            {
                outcomes.Add($"{service.Name}: always_on, but it could not be started: {ex.Message}");
            }
        }

        return outcomes;
    }

    /// <summary>Expires leases and allocations whose TTL passed and stops managed services idle for longer than their idle_stop_after_s.</summary>
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        leases.ExpireDue();
        var now = time.GetUtcNow();
        foreach (var allocation in allocations.Expired(now))
        {
            if (allocations.Remove(allocation.AllocationId, "its TTL passed") is not null)
            {
                CountAllocations(new InstanceKey(allocation.Service, allocation.NodeId, allocation.GpuIndex));
            }
        }

        foreach (var instance in registry.All.Where(i => i is { State: InstanceState.Idle, Origin: InstanceOrigin.Managed }))
        {
            var service = profiles.Active.Profile.Services.GetValueOrDefault(instance.Service);
            var idleAfter = service is { AlwaysOn: false } ? service.IdleStopAfterS : 0;
            if (idleAfter > 0 && now - instance.StateSince >= TimeSpan.FromSeconds(idleAfter))
            {
                var idleSince = instance.StateSince;
                await StopInstanceAsync(instance.Key, HistoryKind.Stopped, string.Create(CultureInfo.InvariantCulture, $"idle for {idleAfter:0.#} s"), cancellationToken,
                    onlyIf: i => i.State == InstanceState.Idle && i.StateSince == idleSince);
            }
        }
    }

    /// <summary>
    /// Stops one instance (see <see cref="StopAsync"/>), recording <paramref name="kind"/> in the history. Serialised with
    /// starts of the same service (a stop never lands between a start's registration and its spawn). A stop, once begun,
    /// runs to its end even when the caller stops waiting: its process gets SIGTERM, the grace, SIGKILL, and the
    /// instance ends with its lease released — it never stays "stopping". <paramref name="onlyIf"/> is checked again
    /// once the stop may begin (the idle sweep stops only what is still idle).
    /// </summary>
    public async Task<StopOutcome> StopInstanceAsync(InstanceKey key, HistoryKind kind, string reason, CancellationToken cancellationToken, Func<InstanceSnapshot, bool>? onlyIf = null)
    {
        using var serviceLock = await _serviceLocks.AcquireAsync(key.Service, cancellationToken);
        var instance = registry.Get(key) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"no instance {key}");
        if (onlyIf is not null && !onlyIf(instance))
        {
            return new StopOutcome(instance, $"{key} is {instance.State.ToString().ToLowerInvariant()} now; left as it is");
        }

        if (instance.Origin == InstanceOrigin.Adopted)
        {
            adoption.Release(key.Service);
            var message = $"{reason}: cf-orch stopped tracking {key.Service} and released its lease; the service itself keeps running (it was started outside cf-orch)";
            var released = lifecycle.End(key, InstanceState.Stopped, HistoryKind.Released, message) ?? registry.Get(key)!;
            return new StopOutcome(released, message);
        }

        var run = instance.Since;
        if (lifecycle.Transition(key, InstanceState.Stopping, i => i with { Message = $"stopping: {reason}" }, i => i.IsActive && i.State != InstanceState.Stopping && i.Since == run) is null)
        {
            return new StopOutcome(registry.Get(key)!, $"{key} is already {registry.Get(key)!.State.ToString().ToLowerInvariant()}");
        }

        var grace = TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS);
        try
        {
            if (processes.Of(instance) is { } process)
            {
                await process.StopAsync(grace, CancellationToken.None);
            }
        }
        finally
        {
            lifecycle.End(key, InstanceState.Stopped, kind, reason, run: run);
        }

        var stopped = registry.Get(key)!;
        LogStopped(key, reason);
        return new StopOutcome(stopped, $"{key.Service} stopped ({reason})");
    }

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

    public void Dispose() => _serviceLocks.Dispose();

    private async Task<InstanceSnapshot> StartNewAsync(ServiceProfile profile, int? gpuIndex, string? model, CancellationToken cancellationToken, int restartNumber = 0)
    {
        if (profile.Managed is null)
        {
            throw new OrchestrationException(OrchestrationError.NotStartable, $"service '{profile.Name}' has no managed block in profile '{profiles.Active.Profile.Name}': cf-orch keeps its budget but cannot start it");
        }

        if (profile.Managed is not ProcessSpec spec)
        {
            throw new OrchestrationException(OrchestrationError.NotStartable, $"service '{profile.Name}' is type: {profile.Managed.Type}; cf-orch cannot start containers yet — start it yourself and set adopt: true to track it");
        }

        var (gpu, leaseId, onGpu) = await LeaseForStartAsync(profile, gpuIndex, cancellationToken);
        var instance = await launcher.LaunchAsync(profile, spec, gpu, onGpu, leaseId, model, cancellationToken, restartNumber);
        health.ProbeSoon(instance.Key);
        if (instance.State == InstanceState.Failed)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{profile.Name} cannot start: {instance.Message}");
        }

        return instance;
    }

    private async Task<InstanceSnapshot> WaitUntilServingAsync(InstanceSnapshot starting, CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromSeconds(options.Value.Probes.StartTimeoutSeconds) + TimeSpan.FromSeconds(10);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        InstanceSnapshot done;
        try
        {
            done = await registry.WaitAsync(starting.Key, i => i.Since != starting.Since || i.State != InstanceState.Starting, cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{starting.Key} did not become ready within {limit.TotalSeconds:0} s");
        }

        return done switch
        {
            { IsServing: true } => done,
            { State: InstanceState.Stopping or InstanceState.Stopped } => throw new OrchestrationException(OrchestrationError.StartFailed,
                $"{starting.Service} was stopped before it was ready ({done.Message})"),
            _ => throw new OrchestrationException(OrchestrationError.StartFailed,
                $"{starting.Service} failed to start: {done.Message}{(done.ExitCode is { } code ? $" (exit code {code})" : "")}"),
        };
    }

    private async Task<(int Gpu, string? LeaseId, bool OnGpu)> LeaseForStartAsync(ServiceProfile profile, int? gpuIndex, CancellationToken cancellationToken)
    {
        // One reading for every decision below: a new one may be published meanwhile.
        var all = gpus.Current.Gpus;
        var inventory = all.Where(g => g.Error is null).ToList();
        if (inventory.Count == 0)
        {
            if (profile.MaxMb > 0)
            {
                throw new OrchestrationException(OrchestrationError.NoCapacity, Placement.WhyNone(profile, all)!);
            }

            return (0, null, false);
        }

        var allowed = Placement.Candidates(profile, all);
        if (gpuIndex is { } wanted)
        {
            if (inventory.All(g => g.Index != wanted))
            {
                throw new OrchestrationException(OrchestrationError.NotFound, $"node '{NodeId}' has no GPU {wanted} (it has {string.Join(", ", inventory.Select(g => g.Index))})");
            }

            if (allowed.All(g => g.Index != wanted))
            {
                throw new OrchestrationException(OrchestrationError.Invalid, $"{profile.Name} is pinned to GPU {string.Join(", ", profile.Gpus)} by its profile");
            }

            allowed = allowed.Where(g => g.Index == wanted).ToList();
        }

        if (allowed.Count == 0)
        {
            throw new OrchestrationException(OrchestrationError.NoCapacity, Placement.WhyNone(profile, all)!);
        }

        var accounts = leases.Accounts().ToDictionary(a => a.GpuIndex);
        var ordered = allowed.OrderByDescending(g => accounts.TryGetValue(g.Index, out var a) ? a.AvailableMb : 0).ThenBy(g => g.Index).ToList();
        var refusals = new List<string>();
        (int Gpu, Admission.NeedsEviction Plan)? eviction = null;
        foreach (var gpu in ordered)
        {
            switch (leases.Request(Request(profile, gpu.Index)))
            {
                case Admission.Granted granted:
                    return (gpu.Index, granted.Lease.LeaseId, true);
                case Admission.NeedsEviction plan:
                    eviction ??= (gpu.Index, plan);
                    refusals.Add(plan.Reason);
                    break;
                case Admission.Refused refused:
                    refusals.Add(refused.Reason);
                    break;
            }
        }

        if (eviction is not { } evict)
        {
            throw new OrchestrationException(OrchestrationError.NoCapacity, string.Join("; ", refusals));
        }

        return (evict.Gpu, await EvictAndLeaseAsync(profile, evict.Gpu, evict.Plan, cancellationToken), true);
    }

    private async Task<string> EvictAndLeaseAsync(ServiceProfile profile, int gpu, Admission.NeedsEviction plan, CancellationToken cancellationToken)
    {
        foreach (var victim in plan.Victims)
        {
            var reason = $"evicted from GPU {gpu} for {profile.Name} (priority {profile.Priority} over {victim.Priority})";
            if (registry.All.FirstOrDefault(i => i.LeaseId == victim.LeaseId) is { } instance)
            {
                await StopInstanceAsync(instance.Key, HistoryKind.Evicted, reason, cancellationToken);
            }
            else
            {
                leases.Release(victim.LeaseId, HistoryKind.Evicted, reason);
            }
        }

        // Start the newcomer only once the GPU reports the memory free again (bounded).
        var deadline = time.GetUtcNow() + TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS + 10);
        while (true)
        {
            gpus.Refresh();
            var admission = leases.Request(Request(profile, gpu));
            if (admission is Admission.Granted granted)
            {
                return granted.Lease.LeaseId;
            }

            if (time.GetUtcNow() >= deadline)
            {
                var why = admission is Admission.Refused r ? r.Reason : ((Admission.NeedsEviction)admission).Reason;
                throw new OrchestrationException(OrchestrationError.NoCapacity, $"evicted {string.Join(", ", plan.Victims.Select(v => v.Holder))} but GPU {gpu} still does not have room: {why}");
            }

            await Task.Delay(FreeMemoryPoll, time, cancellationToken);
        }
    }

    private static LeaseRequest Request(ServiceProfile profile, int gpu) =>
        new(profile.Name, profile.Name, gpu, profile.MaxMb, profile.Priority, HolderOrigin.Managed);

    private InstanceSnapshot? CountAllocations(InstanceKey key)
    {
        var count = allocations.CountFor(key.Service, key.GpuIndex);
        return registry.Get(key)?.State switch
        {
            InstanceState.Idle when count > 0 => lifecycle.Transition(key, InstanceState.Running, i => i with { Allocations = count }),
            InstanceState.Running when count == 0 => lifecycle.Transition(key, InstanceState.Idle, i => i with { Allocations = 0 }),
            _ => registry.Update(key, i => i.Allocations == count ? i : i with { Allocations = count }),
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key} stopped: {Reason}")]
    private partial void LogStopped(InstanceKey key, string reason);
}
