using System.Collections.Concurrent;
using System.Globalization;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Health;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Measurement;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using CfOrch.Core.Threading;

namespace CfOrch.Core.Adoption;

/// <summary>
/// Adopt-if-running: a service whose managed spec says <c>adopt: true</c> and that already answers its health path is
/// registered as <c>adopted</c>, <c>running</c>, with a lease of its budget on the GPU where its processes hold memory.
/// cf-orch never starts a second copy of it and never signals its process.
/// </summary>
public sealed partial class AdoptionService(
    ProfileRegistry profiles,
    InstanceRegistry registry,
    InstanceLifecycle lifecycle,
    LeaseManager leases,
    GpuMonitor gpus,
    HealthProber prober,
    UsageMeter meter,
    ServiceRuntimes runtimes,
    IOptions<CfOrchOptions> options,
    ILogger<AdoptionService> logger) : IDisposable
{
    private readonly KeyedLock _serviceLocks = new();
    private int _passRunning;
    private readonly ConcurrentDictionary<string, byte> _released = new(StringComparer.Ordinal);

    /// <summary>
    /// Stops adopting <paramref name="service"/> until it stops answering (or it is started through cf-orch): the user
    /// asked cf-orch to stop tracking it, so the next check must not take it straight back.
    /// </summary>
    public void Release(string service) => _released[service] = 0;

    public void Unrelease(string service) => _released.TryRemove(service, out _);

    /// <summary>Checks every adoptable service that cf-orch does not track yet; one pass at a time, probes concurrent.</summary>
    public async Task<int> CheckAllAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _passRunning, 1) != 0)
        {
            return 0;
        }

        try
        {
            var candidates = Adoptable().ToList();
            var adopted = await Task.WhenAll(candidates.Select(s => CheckAsync(s, cancellationToken)));
            RetryLeases();
            return adopted.Count(a => a is not null);
        }
        finally
        {
            Volatile.Write(ref _passRunning, 0);
        }
    }

    /// <summary>
    /// How long the check just before a start waits for an answer: a service that holds its port but is slow to answer
    /// (Ollama busy loading a model, a loaded machine) must be adopted, not refused as "port in use" or started twice.
    /// </summary>
    public static readonly TimeSpan BeforeStartTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Adopts one service if it answers and is not tracked yet; returns the adopted instance, or null.</summary>
    /// <param name="service">The service to look for.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <param name="beforeStart">
    /// True for the check just before cf-orch would start the service: it waits up to <see cref="BeforeStartTimeout"/>
    /// (or the configured timeout, when longer) instead of the periodic pass's short timeout.
    /// </param>
    public async Task<InstanceSnapshot?> CheckAsync(ServiceProfile service, CancellationToken cancellationToken, bool beforeStart = false)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (service.Managed is not { Adopt: true, EffectivePort: > 0 } spec
            || registry.ForService(service.Name).Any(i => i.IsActive))
        {
            return null;
        }

        // One check per service at a time (the periodic job and a first allocation may race): never two adoptions.
        using var serviceLock = await _serviceLocks.AcquireAsync(service.Name, cancellationToken);
        if (registry.ForService(service.Name).Any(i => i.IsActive))
        {
            return null;
        }

        var url = spec.LocalUrl;
        var timeout = TimeSpan.FromSeconds(options.Value.Adoption.TimeoutSeconds);
        if (beforeStart && timeout < BeforeStartTimeout)
        {
            timeout = BeforeStartTimeout;
        }

        var probe = await prober.ProbeAsync(url, spec.HealthPath, timeout, cancellationToken);
        if (!probe.Ok)
        {
            // It went away: once it answers again it is adopted again, even if the user had released it.
            _released.TryRemove(service.Name, out _);
            return null;
        }

        if (_released.ContainsKey(service.Name) || registry.ForService(service.Name).Any(i => i.IsActive))
        {
            return null;
        }

        // What answers, as its runtime sees it: the processes listening on the port, the container publishing it.
        var runtime = runtimes.For(spec);
        var outside = runtime is null ? null : await runtime.FindOutsideAsync(service, cancellationToken);
        if (outside is { StartedByCfOrch: true })
        {
            // cf-orch's own container, not tracked yet (its engine just came back): it is re-attached as managed, not adopted.
            return null;
        }

        return await AdoptAsync(service, spec, url, probe, runtime, outside, cancellationToken);
    }

    private async Task<InstanceSnapshot> AdoptAsync(ServiceProfile service, ManagedSpec spec, string url, ProbeOutcome probe, IServiceRuntime? runtime, OutsideRun? outside,
        CancellationToken cancellationToken)
    {
        var pids = outside?.Processes ?? [];
        var usage = meter.GpuUsage(pids);
        var gpuIndex = usage.Count > 0 ? usage[0].GpuIndex : service.Gpus.Count > 0 ? service.Gpus[0] : 0;
        var measured = await meter.MeasureAsync(service.Name, spec.HealthPath, url, usage, gpuIndex, cancellationToken);
        var key = new InstanceKey(service.Name, options.Value.NodeId, gpuIndex);
        var (leaseId, note) = LeaseFor(service, gpuIndex, measured);
        if (outside?.Description is { } what)
        {
            note = $"{note} ({what})";
        }

        var instance = lifecycle.Register(key, InstanceOrigin.Adopted, InstanceState.Running, url, spec.HealthPath, service.MaxMb, service.Priority, i => i with
        {
            Pid = pids.Count > 0 ? pids[0] : null,
            Container = outside?.Container,
            MeasuredMb = measured,
            LeaseId = leaseId,
            LastProbe = probe,
            Message = note,
        });
        if (leaseId is not null)
        {
            leases.UpdateMeasured(leaseId, measured);
        }

        if (outside is not null)
        {
            runtime?.TrackOutside(key, outside);
        }

        LogAdopted(service.Name, url, gpuIndex, note);
        return instance;
    }

    /// <summary>
    /// True when a pass could do nothing: every adoptable service has a live instance (none is released by the user, who
    /// is watched until it stops answering) and every adopted instance holds its lease. The periodic pass then sleeps
    /// until an instance or the profile changes (see <see cref="Changed"/>).
    /// </summary>
    public bool NothingToCheck =>
        Adoptable().All(s => !_released.ContainsKey(s.Name) && registry.ForService(s.Name).Any(i => i.IsActive))
        && !AdoptedWithoutLease().Any();

    /// <summary>The services of the active profile a pass looks for.</summary>
    private IEnumerable<ServiceProfile> Adoptable() =>
        profiles.Active.Profile.Services.Values.Where(s => s.Managed is { Adopt: true, EffectivePort: > 0 });

    /// <summary>Adopted instances that serve without a lease (the GPU was full when they were adopted).</summary>
    private IEnumerable<InstanceSnapshot> AdoptedWithoutLease() =>
        registry.All.Where(i => i is { Origin: InstanceOrigin.Adopted, LeaseId: null } && i.IsServing);

    /// <summary>Raised when what <see cref="NothingToCheck"/> depends on may have changed (an instance, the profile).</summary>
    public event Action? Changed
    {
        add
        {
            registry.Changed += value;
            profiles.Changed += value;
        }

        remove
        {
            registry.Changed -= value;
            profiles.Changed -= value;
        }
    }

    /// <summary>Adopted instances that got no lease (the GPU was full) try again on every pass.</summary>
    private void RetryLeases()
    {
        foreach (var instance in AdoptedWithoutLease())
        {
            if (profiles.Active.Profile.Services.GetValueOrDefault(instance.Service) is not { } service)
            {
                continue;
            }

            var (leaseId, note) = LeaseFor(service, instance.Key.GpuIndex, instance.MeasuredMb);
            if (leaseId is not null
                && registry.Update(instance.Key, i => i with { LeaseId = leaseId, Message = note }, i => i.LeaseId is null && i.IsServing) is null)
            {
                // It changed meanwhile (stopped, or got a lease another way): do not leave this lease behind.
                leases.Release(leaseId, History.HistoryKind.Released, "not needed any more");
            }
        }
    }

    private (string? LeaseId, string Note) LeaseFor(ServiceProfile service, int gpuIndex, long? measured)
    {
        if (gpus.Current.Gpus.All(g => g.Index != gpuIndex))
        {
            return (null, "running outside cf-orch; no GPU is tracked here, so it holds no lease");
        }

        var admission = leases.Request(new LeaseRequest(service.Name, service.Name, gpuIndex, service.MaxMb, service.Priority, HolderOrigin.Adopted)
        {
            AlreadyRunning = true,
            AlreadyInUseMb = measured ?? 0,
        });
        return admission switch
        {
            Admission.Granted g => (g.Lease.LeaseId, "running outside cf-orch; adopted"),
            Admission.NeedsEviction e => (null, $"adopted without a lease: {e.Reason}. Its memory counts as use outside cf-orch; cf-orch never evicts for an adopted service"),
            Admission.Refused r => (null, $"adopted without a lease: {r.Reason}. Its memory counts as use outside cf-orch"),
            _ => (null, "adopted"),
        };
    }

    public void Dispose() => _serviceLocks.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Adopted {Service} at {Url} on GPU {Gpu}: {Note}")]
    private partial void LogAdopted(string service, string url, int gpu, string note);
}
