using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Placement and eviction for a start: the GPU a service runs on (the one asked for, else among its pins the one with
/// the most room) and its lease there — after unloading a less important Ollama's idle models, or else evicting less
/// important managed services, when that is what it takes, and only once the GPU reports their memory free again.
/// </summary>
public sealed class GpuPlacer(
    GpuMonitor gpus,
    LeaseManager leases,
    InstanceRegistry registry,
    InstanceStopper stopper,
    RoomWaiter room,
    IdleModelEviction idleModels,
    IOptions<CfOrchOptions> options)
{

    /// <summary>
    /// The GPU and lease for a start of <paramref name="profile"/>, and the instances evicted for it; no lease (and not on
    /// a GPU) for a service that needs no VRAM on a node without GPUs.
    /// </summary>
    public async Task<(int Gpu, string? LeaseId, bool OnGpu, IReadOnlyList<Displaced> Evicted)> LeaseForStartAsync(ServiceProfile profile, int? gpuIndex, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);

        // One reading for every decision below: a new one may be published meanwhile.
        var all = gpus.Current.Gpus;
        var inventory = all.Where(g => g.Error is null).ToList();
        if (inventory.Count == 0)
        {
            if (profile.MaxMb > 0)
            {
                throw new OrchestrationException(OrchestrationError.NoCapacity, Placement.WhyNone(profile, all)!);
            }

            return (0, null, false, []);
        }

        var allowed = Placement.Candidates(profile, all);
        if (gpuIndex is { } wanted)
        {
            if (inventory.All(g => g.Index != wanted))
            {
                throw new OrchestrationException(OrchestrationError.NotFound, $"node '{options.Value.NodeId}' has no GPU {wanted} (it has {string.Join(", ", inventory.Select(g => g.Index))})");
            }

            if (Placement.PinRefusal(profile, inventory.Select(g => g.Index).ToList(), wanted, "this node") is { } pinned)
            {
                throw pinned;
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
                    return (gpu.Index, granted.Lease.LeaseId, true, []);
                case Admission.NeedsEviction plan:
                    eviction ??= (gpu.Index, plan);
                    refusals.Add(plan.Reason);
                    break;
                case Admission.Refused refused:
                    refusals.Add(refused.Reason);
                    break;
            }
        }

        // Idle models of a less important Ollama give way first: nothing is stopped for them. When the memory does not
        // come back in time, the next GPU, then eviction, is tried.
        foreach (var gpu in ordered)
        {
            try
            {
                if (await idleModels.LeaseByUnloadingAsync(Request(profile, gpu.Index), cancellationToken) is { } unloadedFor)
                {
                    return (gpu.Index, unloadedFor.LeaseId, true, []);
                }
            }
            catch (OrchestrationException ex) when (ex.Error == OrchestrationError.NoCapacity)
            {
                refusals.Add(ex.Message);
            }
        }

        if (eviction is not { } evict)
        {
            throw new OrchestrationException(OrchestrationError.NoCapacity, string.Join("; ", refusals));
        }

        var evicted = new List<Displaced>();
        var leaseId = await EvictAndLeaseAsync(profile, evict.Gpu, evict.Plan, evicted, cancellationToken);
        return (evict.Gpu, leaseId, true, evicted);
    }

    private async Task<string> EvictAndLeaseAsync(ServiceProfile profile, int gpu, Admission.NeedsEviction plan, List<Displaced> evicted, CancellationToken cancellationToken)
    {
        foreach (var victim in plan.Victims)
        {
            var reason = $"evicted from GPU {gpu} for {profile.Name} (priority {profile.Priority} over {victim.Priority})";
            if (registry.All.FirstOrDefault(i => i.LeaseId == victim.LeaseId) is { } instance)
            {
                await stopper.StopAsync(instance.Key, HistoryKind.Evicted, reason, cancellationToken);
                evicted.Add(new Displaced(instance.Key, instance.Model));
            }
            else
            {
                leases.Release(victim.LeaseId, HistoryKind.Evicted, reason);
            }
        }

        // Start the newcomer only once the GPU reports the memory free again (bounded).
        return (await room.LeaseOnceFreedAsync(Request(profile, gpu), RoomWaiter.Evicted(plan.Victims), $"GPU {gpu}", _ =>
        {
            gpus.Refresh();
            return Task.CompletedTask;
        }, RoomWaiter.LocalPoll, cancellationToken)).LeaseId;
    }

    /// <summary>The lease a managed start of <paramref name="profile"/> asks for on a GPU of this node (or of <paramref name="nodeId"/>).</summary>
    public static LeaseRequest Request(ServiceProfile profile, int gpu, string? nodeId = null) =>
        new(profile.Name, profile.Name, gpu, profile.MaxMb, profile.Priority, HolderOrigin.Managed) { NodeId = nodeId };
}
