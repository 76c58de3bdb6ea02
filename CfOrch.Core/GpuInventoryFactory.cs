using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Gpus.Nvml;

namespace CfOrch.Core;

/// <summary>
/// Chooses the inventory for <c>CfOrch:Gpus:Mode</c>, and says in one sentence why. Composition, beside
/// <see cref="CoreServiceCollectionExtensions"/>: it knows every inventory (NVML, simulated, none), which know only <c>Gpus</c>.
/// </summary>
public static class GpuInventoryFactory
{
    /// <summary>The category its explanation is logged under (the one it had while it lived in <c>Gpus</c>).</summary>
    public const string LogCategory = "CfOrch.Core.Gpus.GpuInventoryFactory";

    public static (IGpuInventory Inventory, string Explanation) Create(GpuOptions options, INvmlApi nvml)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(nvml);
        switch (options.ParsedMode())
        {
            case GpuMode.None:
                return (new NoGpuInventory("CfOrch:Gpus:Mode is 'none'"), "GPU mode 'none': no GPUs are tracked.");

            case GpuMode.Simulated:
                var simulated = new SimulatedGpuInventory(options.Simulated);
                return (simulated, $"GPU mode 'simulated': {simulated.Detail}.");

            case GpuMode.Nvml:
                if (NvmlGpuInventory.TryCreate(nvml, null, out var required, out var failure))
                {
                    return (required!, $"GPU mode 'nvml': {required!.Detail}.");
                }

                return (new NoGpuInventory($"NVML is unavailable: {failure}"), $"GPU mode 'nvml', but NVML is unavailable: {failure}. No GPUs are tracked.");

            default:
                if (NvmlGpuInventory.TryCreate(nvml, null, out var found, out var reason))
                {
                    return (found!, $"GPU mode 'auto': using {found!.Detail}.");
                }

                if (options.Simulated.Count > 0)
                {
                    var sim = new SimulatedGpuInventory(options.Simulated);
                    return (sim, $"GPU mode 'auto': NVML is unavailable ({reason}); using {sim.Detail}.");
                }

                return (new NoGpuInventory($"NVML is unavailable: {reason}"), $"GPU mode 'auto': NVML is unavailable ({reason}) and no simulated GPUs are configured, so no GPUs are tracked.");
        }
    }
}
