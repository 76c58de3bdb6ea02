namespace CfOrch.Core.Gpus;

/// <summary>No GPUs: mode <c>none</c>, or <c>auto</c> on a machine without NVML and without simulated GPUs.</summary>
public sealed class NoGpuInventory(string reason) : IGpuInventory
{
    public GpuSource Source => GpuSource.None;

    public string Detail { get; } = reason;

    public IReadOnlyList<GpuInfo> Read() => [];

    public void Dispose()
    {
    }
}
