namespace CfOrch.Core.Gpus;

/// <summary>
/// An inventory that cannot see the memory services really hold (simulated GPUs): it is told what they measurably use
/// (Ollama's size_vram) and shows it as used by their processes, as NVML would on a real GPU. Real inventories do not
/// implement it; the meter needs to know nothing more about the inventory than this.
/// </summary>
public interface IMirrorsMeasuredUsage
{
    void ReflectMeasured(IEnumerable<(int GpuIndex, int Pid, long UsedMb, string Name)> usage);
}
