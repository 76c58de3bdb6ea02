using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;

namespace CfOrch.Web.Components.Controls;

/// <summary>Why a service cannot be started from the dashboard now, in words, or null when it can.</summary>
public static class StartCheck
{
    public static string? WhyNot(ServiceProfile? service, EngineSnapshot state, string name)
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
            case { } spec when state.Runtime(spec.Type) is { Available: false } runtime:
                return $"{name} is a container (type: {spec.Type}), and {runtime.Problem}.";
        }

        // An adoptable service may already run outside cf-orch: Start adopts it then, whatever the room.
        if (service.Managed.Adopt || service.MaxMb == 0)
        {
            return null;
        }

        var gpus = Placement.Candidates(service, state.Gpus.Gpus);
        if (gpus.Count == 0)
        {
            return Placement.WhyNone(service, state.Gpus.Gpus);
        }

        var room = gpus.Select(g =>
        {
            var account = state.Accounts.FirstOrDefault(a => a.GpuIndex == g.Index);
            var evictable = state.Leases.Where(l => l.GpuIndex == g.Index && l.Origin == HolderOrigin.Managed && l.Priority > service.Priority).Sum(l => l.HeldMb);
            return (Gpu: g.Index, Room: (account?.AvailableMb ?? g.FreeMb) + evictable);
        }).ToList();
        if (room.Any(r => r.Room >= service.MaxMb))
        {
            return null;
        }

        var holders = state.Leases.Where(l => gpus.Any(g => g.Index == l.GpuIndex))
            .Select(l => $"{l.Holder} {VramSegment.Format(l.HeldMb)} on GPU {l.GpuIndex} ({l.Origin.ToString().ToLowerInvariant()}, priority {l.Priority})");
        return $"No GPU has room for {VramSegment.Format(service.MaxMb)}: {string.Join(", ", holders.DefaultIfEmpty("memory in use by programs cf-orch does not track"))}.";
    }
}
