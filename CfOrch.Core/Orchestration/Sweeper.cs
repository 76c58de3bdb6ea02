using System.Globalization;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Core.Allocations;

namespace CfOrch.Core.Orchestration;

/// <summary>The periodic sweep: leases and allocations whose TTL passed, and managed services idle for longer than their idle_stop_after_s.</summary>
public sealed class Sweeper(
    LeaseManager leases,
    AllocationTable allocations,
    InstanceAllocations counts,
    InstanceRegistry registry,
    InstanceStopper stopper,
    ProfileRegistry profiles,
    TimeProvider time)
{
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        leases.ExpireDue();
        var now = time.GetUtcNow();
        foreach (var allocation in allocations.Expired(now))
        {
            if (allocations.Remove(allocation.AllocationId, "its TTL passed") is not null)
            {
                counts.Recount(new InstanceKey(allocation.Service, allocation.NodeId, allocation.GpuIndex));
            }
        }

        foreach (var instance in registry.All.Where(i => i is { State: InstanceState.Idle, Origin: InstanceOrigin.Managed }))
        {
            var service = profiles.Active.Profile.Services.GetValueOrDefault(instance.Service);
            var idleAfter = service is { AlwaysOn: false } ? service.IdleStopAfterS : 0;
            if (idleAfter > 0 && now - instance.StateSince >= TimeSpan.FromSeconds(idleAfter))
            {
                var idleSince = instance.StateSince;
                await stopper.StopAsync(instance.Key, HistoryKind.Stopped, string.Create(CultureInfo.InvariantCulture, $"idle for {idleAfter:0.#} s"), cancellationToken,
                    onlyIf: i => i.State == InstanceState.Idle && i.StateSince == idleSince);
            }
        }
    }
}
