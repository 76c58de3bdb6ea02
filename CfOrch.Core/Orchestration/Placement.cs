using System.Globalization;
using CfOrch.Core.Gpus;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>Which GPUs a service may run on; shared by the engine's start and the dashboard's Start button.</summary>
public static class Placement
{
    /// <summary>The GPUs <paramref name="service"/> may run on: readable, and among its pins when it has any.</summary>
    public static IReadOnlyList<GpuInfo> Candidates(ServiceProfile service, IReadOnlyList<GpuInfo> gpus)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(gpus);
        return gpus.Where(g => g.Error is null && Allows(service, g.Index)).ToList();
    }

    /// <summary>Why <paramref name="service"/> has no GPU to run on, in words; null when it has one.</summary>
    public static string? WhyNone(ServiceProfile service, IReadOnlyList<GpuInfo> gpus)
    {
        if (Candidates(service, gpus).Count > 0)
        {
            return null;
        }

        var unreadable = gpus.Where(g => g.Error is not null && Allows(service, g.Index)).ToList();
        return gpus.Count == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{service.Name} needs {service.MaxMb:N0} MB of VRAM and no GPU is tracked.")
            : unreadable.Count > 0
                ? $"{service.Name} can only run on GPU {string.Join(", ", unreadable.Select(g => g.Index))}, which cannot be read right now: {string.Join("; ", unreadable.Select(g => $"GPU {g.Index}: {g.Error}"))}."
                : $"{service.Name} is pinned to GPU {string.Join(", ", service.Gpus)}, which this node does not have.";
    }

    private static bool Allows(ServiceProfile service, int gpu) => service.Gpus.Count == 0 || service.Gpus.Contains(gpu);
}
