using CfOrch.Core.Adoption;
using CfOrch.Core.Health;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Processes;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// What happens once at start-up, before the first request is served: managed services that survived a restart of
/// cf-orch are re-attached (not started twice), then every adoptable service that already runs is adopted.
/// </summary>
public sealed partial class EngineStartup(
    IInstanceStore store,
    ServiceRuntimes runtimes,
    ProfileRegistry profiles,
    InstanceRegistry registry,
    LeaseManager leases,
    HealthMonitor health,
    AdoptionService adoption,
    IHistorySink history,
    TimeProvider time,
    ILogger<EngineStartup> logger)
{
    private int _watching;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _watching, 1) == 0)
        {
            profiles.Changed += NoteProfileChanges;
        }

        await ReattachAsync(cancellationToken);
        await adoption.CheckAllAsync(cancellationToken);
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
            var priority = service?.Priority ?? 1;
            string? leaseId = null;
            if (leases.Request(new LeaseRequest(record.Key.Service, record.Key.Service, record.Key.GpuIndex, record.BudgetMb, priority, HolderOrigin.Managed) { AlreadyRunning = true })
                is Admission.Granted granted)
            {
                leaseId = granted.Lease.LeaseId;
            }

            await runtime.AttachAsync(record, priority, leaseId, service is null
                ? $"re-attached to PID {record.Pid} after a restart of cf-orch; its service is not in profile '{profiles.Active.Profile.Name}' any more"
                : $"re-attached to PID {record.Pid} after a restart of cf-orch");
            health.ProbeSoon(record.Key);
            attached++;
            LogReattached(record.Key, record.Pid);
        }

        return attached;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-attached {Key} (PID {Pid}) instead of starting it again")]
    private partial void LogReattached(InstanceKey key, int pid);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key}: PID {Pid} is gone; it exited while cf-orch was not running")]
    private partial void LogGone(InstanceKey key, int pid);
}
