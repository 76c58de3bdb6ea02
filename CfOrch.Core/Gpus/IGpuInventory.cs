namespace CfOrch.Core.Gpus;

/// <summary>Where GPUs come from: NVML on a real machine, configuration for simulated ones, or nothing.</summary>
public interface IGpuInventory : IDisposable
{
    GpuSource Source { get; }

    /// <summary>What this inventory is, in words: the driver version, or why there are no GPUs.</summary>
    string Detail { get; }

    /// <summary>Reads every GPU now. Never throws for a device problem: the device carries <see cref="GpuInfo.Error"/>.</summary>
    IReadOnlyList<GpuInfo> Read();
}
