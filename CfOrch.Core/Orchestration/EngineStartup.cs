using System.Globalization;
using CfOrch.Core.Adoption;
using CfOrch.Core.Configuration;
using CfOrch.Core.Health;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Processes;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// What happens once at start-up, before the first request is served: managed services that survived a restart of
/// cf-orch are re-attached (not started twice), then every adoptable service that already runs is adopted.
/// </summary>
public sealed partial class EngineStartup(
    IInstanceStore store,
    ILeaseStore leaseStore,
    Gpus.GpuMonitor gpus,
    ServiceRuntimes runtimes,
    ProfileRegistry profiles,
    InstanceRegistry registry,
    LeaseManager leases,
    HealthMonitor health,
    AdoptionService adoption,
    IHistorySink history,
    ProfileWatcher profileWatcher,
    TimeProvider time,
    IOptions<CfOrchOptions> options,
    ILogger<EngineStartup> logger) : IDisposable
{
    private int _watching;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _watching, 1) == 0)
        {
            profiles.Changed += NoteProfileChanges;
            profileWatcher.Start();
            foreach (var runtime in runtimes.All)
            {
                // An engine that comes back (or answers for the first time): its runs are taken back without a restart.
                runtime.StatusChanged += ServiceRuntimes.WhenAvailableAgain(runtime, status => _ = RecoverQuietlyAsync(runtime));
            }
        }

        // Memory an Ollama lent is lent again as its leases come back, whichever comes back first.
        leases.ExpectLoans(await leaseStore.LoadLoansAsync(cancellationToken));
        await ReattachAsync(cancellationToken);
        foreach (var runtime in runtimes.All)
        {
            await RecoverAsync(runtime, cancellationToken);
        }

        await ReattachUnrecordedAsync(cancellationToken);
        var settled = await RestoreClientLeasesAsync(cancellationToken);
        await CloseLeasesThatEndedAsync(settled, cancellationToken);
        await adoption.CheckAllAsync(cancellationToken);
        foreach (var ended in leases.SettleExpectedLoans())
        {
            LogLoanEnded(ended.Lender, ended.Mb, ended.ForHolder, ended.GpuIndex);
        }
    }

    /// <summary>
    /// A profile change never stops a running service: one that left the profile, or whose budget changed, keeps
    /// running and says so on its row until the user stops or restarts it.
    /// </summary>
    public void NoteProfileChanges()
    {
        var profile = profiles.Active.Profile;
        foreach (var instance in registry.All.Where(i => i.IsActive))
        {
            var service = profile.Services.GetValueOrDefault(instance.Service);
            var note = service is null
                ? $"service '{instance.Service}' is not in profile '{profile.Name}' any more; it keeps running until you stop it"
                : service.MaxMb != instance.BudgetMb
                    ? $"the profile now gives it {service.MaxMb} MB (it holds {instance.BudgetMb} MB); restart it to apply"
                    : null;
            if (note is not null)
            {
                registry.Update(instance.Key, i => i with { Message = note });
            }
        }
    }

    /// <summary>Re-attaches every recorded managed instance whose process is still the same process (PID and start time).</summary>
    public async Task<int> ReattachAsync(CancellationToken cancellationToken)
    {
        var attached = 0;
        foreach (var record in await store.LoadAsync(cancellationToken))
        {
            // Records are of processes this machine ran (the runtime of type: process).
            if (runtimes.OfKind(ProcessSpec.TypeName) is not { } runtime || !runtime.StillRuns(record))
            {
                store.Remove(record.Key);
                history.Record(new HistoryEvent
                {
                    At = time.GetUtcNow(),
                    Kind = HistoryKind.Lost,
                    NodeId = record.Key.NodeId,
                    GpuIndex = record.Key.GpuIndex,
                    Service = record.Key.Service,
                    Holder = record.Key.Service,
                    Origin = "managed",
                    BudgetMb = record.BudgetMb,
                    Reason = $"PID {record.Pid} exited while cf-orch was not running",
                });
                LogGone(record.Key, record.Pid);
                continue;
            }

            var service = profiles.Active.Profile.Services.GetValueOrDefault(record.Key.Service);
            await AttachAsync(runtime, record, service?.Priority ?? 1, service is null
                ? $"re-attached to PID {record.Pid} after a restart of cf-orch; its service is not in profile '{profiles.Active.Profile.Name}' any more"
                : $"re-attached to PID {record.Pid} after a restart of cf-orch");
            attached++;
        }

        return attached;
    }

    /// <summary>
    /// A process cf-orch started but could not record before it stopped (killed between the spawn and the write): it
    /// runs as cf-orch's user, runs the service's executable and carries cf-orch's marker for that service
    /// (<see cref="LocalProcessRuntime.InstanceMarker"/>) and this cf-orch's data directory, so it is re-attached as that service — whether it listens on
    /// its port yet or is still loading — instead of being orphaned or refused as "port in use", and recorded now.
    /// </summary>
    public async Task<int> ReattachUnrecordedAsync(CancellationToken cancellationToken)
    {
        if (runtimes.OfKind(ProcessSpec.TypeName) is not { } runtime)
        {
            return 0;
        }

        var missing = profiles.Active.Profile.Services.Values
            .Where(s => s.Managed is ProcessSpec { EffectivePort: > 0 } && !registry.ForService(s.Name).Any(i => i.IsActive))
            .ToList();
        if (missing.Count == 0)
        {
            // Nothing to look for: /proc is not read.
            return 0;
        }

        // Only a process of cf-orch's own user (anyone else could plant the marker: it is no secret), and only one this
        // cf-orch started: the same data directory, not another cf-orch's on this machine.
        var ownUid = ProcFs.EffectiveUid(Environment.ProcessId);
        var dataDir = options.Value.ResolvedDataDir();
        var markers = ProcFs.WithEnvironmentVariable(LocalProcessRuntime.InstanceMarker).ToDictionary(m => m.Pid, m => m.Value);
        var ours = markers.Keys
            .Select(pid => MarkedLeader(pid, markers))
            .Distinct()
            .Where(m => ProcFs.EffectiveUid(m.Pid) is { } uid && uid == ownUid && ProcFs.IsRunning(m.Pid)
                && ProcFs.EnvironmentVariable(m.Pid, LocalProcessRuntime.DataDirMarker) == dataDir)
            .OrderBy(m => m.Pid)
            .ToList();
        var attached = 0;
        foreach (var service in missing)
        {
            var spec = (ProcessSpec)service.Managed!;
            foreach (var leader in ours)
            {
                if (!Marks(leader.Marker, service.Name, out var key) || !RunsExecutable(leader.Pid, spec))
                {
                    continue;
                }

                var startTime = ProcFs.StartTime(leader.Pid);
                var record = new ManagedInstanceRecord(key, leader.Pid, startTime, spec.LocalUrl, spec.HealthPath,
                    null, service.MaxMb, startTime is { } ticks ? ProcFs.StartedAt(ticks) ?? time.GetUtcNow() : time.GetUtcNow());
                await AttachAsync(runtime, record, service.Priority, $"re-attached to PID {leader.Pid}: cf-orch had started it and stopped before it could record it");
                try
                {
                    await store.SaveAsync(record, cancellationToken);
                }
                catch (IOException)
                {
                    // Storage says why elsewhere; the instance is tracked for this run either way.
                }

                attached++;
                break;
            }
        }

        return attached;

        bool Marks(string marker, string name, out InstanceKey key)
        {
            key = default!;
            var parts = marker.Split('/');
            if (parts.Length != 3 || parts[0] != options.Value.NodeId || parts[1] != name
                || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var gpu))
            {
                return false;
            }

            key = new InstanceKey(name, parts[0], gpu);
            return true;
        }
    }

    /// <summary>
    /// Attaches again the runs <paramref name="runtime"/> keeps the record of itself (containers, by their labels) that
    /// cf-orch does not track: after a restart of cf-orch, or of the engine.
    /// </summary>
    public async Task<int> RecoverAsync(IServiceRuntime runtime, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var attached = 0;
        await _recoverLock.WaitAsync(cancellationToken);
        try
        {
            foreach (var record in await runtime.RecoverAsync(cancellationToken))
            {
                if (registry.ForService(record.Key.Service).Any(i => i.IsActive) || !runtime.StillRuns(record))
                {
                    continue;
                }

                var service = profiles.Active.Profile.Services.GetValueOrDefault(record.Key.Service);
                await AttachAsync(runtime, record, service?.Priority ?? 1, service is null
                    ? $"re-attached after a restart; its service is not in profile '{profiles.Active.Profile.Name}' any more"
                    : "re-attached after a restart");
                attached++;
            }
        }
        finally
        {
            _recoverLock.Release();
        }

        return attached;
    }

    private readonly SemaphoreSlim _recoverLock = new(1, 1);

    public void Dispose() => _recoverLock.Dispose();

    private async Task RecoverQuietlyAsync(IServiceRuntime runtime)
    {
        try
        {
            await RecoverAsync(runtime, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogRecoverFailed(runtime.Kind, ex);
        }
    }

    /// <summary>Tracks the process of <paramref name="record"/> as its instance again, with its lease where it fits, and probes it soon.</summary>
    [LoggerMessage(Level = LogLevel.Warning, Message = "Taking back the runs of the {Kind} runtime failed")]
    private partial void LogRecoverFailed(string kind, Exception exception);

    private async Task AttachAsync(IServiceRuntime runtime, ManagedInstanceRecord record, int priority, string message)
    {
        var request = new LeaseRequest(record.Key.Service, record.Key.Service, record.Key.GpuIndex, record.BudgetMb, priority, HolderOrigin.Managed) { AlreadyRunning = true };
        var leaseId = leases.Request(request) is Admission.Granted granted ? granted.Lease.LeaseId : null;
        await runtime.AttachAsync(record, priority, leaseId, message);
        health.ProbeSoon(record.Key);
        LogReattached(record.Key, record.Pid);
    }

    /// <summary>The topmost process (the one cf-orch spawned) above marked <paramref name="pid"/> that carries cf-orch's marker (<paramref name="markers"/>: every marked process), and the marker.</summary>
    private static (int Pid, string Marker) MarkedLeader(int pid, Dictionary<int, string> markers)
    {
        var leader = pid;
        while (ProcFs.ParentPid(leader) is { } parent && parent > 1 && markers.ContainsKey(parent))
        {
            leader = parent;
        }

        return (leader, markers[leader]);
    }

    private static bool RunsExecutable(int pid, ProcessSpec spec) =>
        Executables.Resolve(spec.ExecPath, string.IsNullOrEmpty(spec.Cwd) ? null : spec.Cwd) is { } expected
        && ProcFs.Executable(pid) is { } actual
        && string.Equals(RealPath(expected), RealPath(actual), StringComparison.Ordinal);

    private static string RealPath(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return Path.GetFullPath(path);
        }
    }

    /// <summary>
    /// The clients' leases held when cf-orch stopped are held again, with the same ids (a client can still release
    /// them); one whose TTL ran out meanwhile ends, with its line in the history dated when it ran out. One whose GPU
    /// cannot be seen now (the reading failed) is kept for the next start rather than ended. Returns the ids it dealt
    /// with (held again, ended or kept), which the closing of open leases then leaves alone.
    /// </summary>
    public async Task<IReadOnlySet<string>> RestoreClientLeasesAsync(CancellationToken cancellationToken)
    {
        var settled = new HashSet<string>(StringComparer.Ordinal);
        var restored = 0;
        var now = time.GetUtcNow();
        foreach (var lease in await leaseStore.LoadClientLeasesAsync(cancellationToken))
        {
            settled.Add(lease.LeaseId);
            if (lease.ExpiresAt is { } expires && expires <= now)
            {
                history.Record(lease.ToHistory(HistoryKind.Expired, expires, "its TTL passed while cf-orch was not running"));
                continue;
            }

            var request = new LeaseRequest(lease.Holder, null, lease.GpuIndex, lease.Mb, lease.Priority, HolderOrigin.Client) { NodeId = lease.NodeId, Restoring = lease, AlreadyRunning = true };
            switch (leases.Request(request))
            {
                case Admission.Granted:
                    restored++;
                    break;
                case Admission.Refused { Why: RefusalKind.UnknownGpu } when gpus.Current.ReadError is not null || gpus.Current.Gpus.Count == 0:
                    // The GPUs cannot be read right now: the lease is not ended for that; the next start tries again.
                    LogKeptForLater(lease.LeaseId, lease.GpuIndex);
                    break;
                case Admission.NeedsEviction refused:
                    history.Record(lease.ToHistory(HistoryKind.Released, now, $"could not be held again after cf-orch restarted: {refused.Reason}"));
                    break;
                case Admission.Refused refused:
                    history.Record(lease.ToHistory(HistoryKind.Released, now, $"could not be held again after cf-orch restarted: {refused.Reason}"));
                    break;
            }
        }

        if (restored > 0)
        {
            LogRestored(restored);
        }

        return settled;
    }

    /// <summary>
    /// A lease the history still shows open but that is not held now ended when cf-orch stopped (a crash leaves no line
    /// for it): it gets its closing line, dated at the last moment the history knew of, so that a replay of the history
    /// never shows leases that were not there.
    /// </summary>
    public async Task<int> CloseLeasesThatEndedAsync(IReadOnlySet<string> settled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settled);
        var open = await leaseStore.OpenLeasesAsync(cancellationToken);
        var ended = open.Where(o => leases.Get(o.LeaseId) is null && !settled.Contains(o.LeaseId)).ToList();
        if (ended.Count == 0)
        {
            return 0;
        }

        var at = await leaseStore.LastEventAtAsync(cancellationToken) ?? time.GetUtcNow();
        foreach (var lease in ended)
        {
            history.Record(new HistoryEvent
            {
                At = at < lease.GrantedAt ? lease.GrantedAt : at,
                Kind = HistoryKind.Lost,
                LeaseId = lease.LeaseId,
                NodeId = lease.NodeId,
                GpuIndex = lease.GpuIndex,
                Service = lease.Service,
                Holder = lease.Holder,
                Origin = lease.Origin,
                BudgetMb = lease.BudgetMb,
                Reason = "cf-orch stopped while it was held; it ended then",
                GrantedAt = lease.GrantedAt,
            });
        }

        LogClosed(ended.Count);
        return ended.Count;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client lease {LeaseId} on GPU {Gpu} is not held again now (the GPUs cannot be read); it is kept for the next start")]
    private partial void LogKeptForLater(string leaseId, int gpu);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} client leases held again after the restart")]
    private partial void LogRestored(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} leases open in the history ended when cf-orch last stopped; they were closed there")]
    private partial void LogClosed(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-attached {Key} (PID {Pid}) instead of starting it again")]
    private partial void LogReattached(InstanceKey key, int pid);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key}: PID {Pid} is gone; it exited while cf-orch was not running")]
    private partial void LogGone(InstanceKey key, int pid);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Lender} takes back the {Mb} MB it lent to {Holder} on GPU {Gpu}: that lease did not come back after the restart")]
    private partial void LogLoanEnded(string lender, long mb, string holder, int gpu);
}
