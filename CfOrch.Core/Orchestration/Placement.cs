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
                : PinRefusal(service, gpus.Select(g => g.Index).ToList(), null, "this node")!.Message;
    }

    /// <summary>Whether the service's GPU pins (its profile's <c>gpus:</c>; none: every GPU) allow GPU <paramref name="gpu"/>, on any node.</summary>
    public static bool Allows(ServiceProfile service, int gpu)
    {
        ArgumentNullException.ThrowIfNull(service);
        return service.Gpus.Count == 0 || service.Gpus.Contains(gpu);
    }

    /// <summary>
    /// The GPU pins' refusal of a start on a node whose GPUs are <paramref name="gpus"/> (<paramref name="node"/>: "this
    /// node", "node 'heimdall'"), on <paramref name="wanted"/> when one is asked for: a GPU of the node outside the pins
    /// is <see cref="OrchestrationError.Invalid"/>, a node with none of the pinned GPUs
    /// <see cref="OrchestrationError.NoCapacity"/>; null when the pins allow the start (a GPU the node lacks is for the
    /// caller to refuse).
    /// </summary>
    public static OrchestrationException? PinRefusal(ServiceProfile service, IReadOnlyCollection<int> gpus, int? wanted, string node)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(gpus);
        var pinned = $"{service.Name} is pinned to GPU {string.Join(", ", service.Gpus)}";
        if (wanted is { } gpu)
        {
            return gpus.Contains(gpu) && !Allows(service, gpu) ? new OrchestrationException(OrchestrationError.Invalid, $"{pinned} by its profile") : null;
        }

        return gpus.Count > 0 && !gpus.Any(g => Allows(service, g))
            ? new OrchestrationException(OrchestrationError.NoCapacity, $"{pinned}, which {node} does not have (it has {string.Join(", ", gpus)}).")
            : null;
    }
}
