using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;

namespace CfOrch.Web.Components.Controls;

/// <summary>Why a service cannot be started from the dashboard now, in words, or null when it can.</summary>
public static class StartCheck
{
    /// <summary>
    /// Why <paramref name="service"/> cannot be started now, or null. <paramref name="roomByUnloading"/>: whether
    /// unloading a less important Ollama's idle models would make room for it on a GPU of this node (the engine's own
    /// plan, which a start follows before it evicts anything); null when that cannot be asked.
    /// </summary>
    public static string? WhyNot(ServiceProfile? service, EngineSnapshot state, string name, Func<int, bool>? roomByUnloading = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (service is null)
        {
            return $"{name} is not in the active profile any more.";
        }

        switch (service.Managed)
        {
            case null:
                return $"{name} has no managed block: cf-orch keeps its budget but cannot start it.";
            case { } spec when state.Runtime(spec.Type)?.WhyNot(spec) is { } why:
                return $"{name} is a container (type: {spec.Type}), and {why}.";
        }

        // An adoptable service may already run outside cf-orch: Start adopts it then, whatever the room.
        if (service.Managed.Adopt || service.MaxMb == 0)
        {
            return null;
        }

        // Another node with a GPU that has the room free: the coordinator places it there.
        if (state.Nodes.Any(n => n.Online && n.Gpus.Any(g => g.FreeMb >= service.MaxMb && Placement.Allows(service, g.GpuId))))
        {
            return null;
        }

        // This node's leases only: the other nodes' GPUs have the same indexes.
        var leases = state.Leases.Where(l => state.Nodes.All(n => n.NodeId != l.NodeId)).ToList();
        var gpus = Placement.Candidates(service, state.Gpus.Gpus);
        if (gpus.Count == 0)
        {
            return Placement.WhyNone(service, state.Gpus.Gpus);
        }

        var room = gpus.Select(g =>
        {
            var account = state.Accounts.FirstOrDefault(a => a.GpuIndex == g.Index);
            var evictable = leases.Where(l => l.GpuIndex == g.Index && l.Origin == HolderOrigin.Managed && l.Priority > service.Priority).Sum(l => l.HeldMb);
            return (Gpu: g.Index, Room: (account?.AvailableMb ?? g.FreeMb) + evictable);
        }).ToList();
        if (room.Any(r => r.Room >= service.MaxMb) || (roomByUnloading is not null && gpus.Any(g => roomByUnloading(g.Index))))
        {
            return null;
        }

        var holders = leases.Where(l => gpus.Any(g => g.Index == l.GpuIndex))
            .Select(l => $"{l.Holder} {VramSegment.Format(l.HeldMb)} on GPU {l.GpuIndex} ({l.Origin.ToString().ToLowerInvariant()}, priority {l.Priority})");
        return $"No GPU has room for {VramSegment.Format(service.MaxMb)}: {string.Join(", ", holders.DefaultIfEmpty("memory in use by programs cf-orch does not track"))}.";
    }
}
