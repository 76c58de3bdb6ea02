using CfOrch.Core.Configuration;

namespace CfOrch.Core.Gpus;

/// <summary>
/// GPUs from configuration, for demos and tests. Per-process usage can be set at run time, the way a program
/// started behind cf-orch's back would show up in NVML.
/// </summary>
public sealed class SimulatedGpuInventory : IGpuInventory
{
    private readonly Lock _lock = new();
    private readonly SimulatedGpu[] _gpus;

    public SimulatedGpuInventory(IEnumerable<SimulatedGpuOptions> gpus)
    {
        ArgumentNullException.ThrowIfNull(gpus);
        _gpus = gpus.Select((g, i) => new SimulatedGpu(i, g)).ToArray();
    }

    public GpuSource Source => GpuSource.Simulated;

    public string Detail => $"{_gpus.Length} simulated GPU{(_gpus.Length == 1 ? "" : "s")} from configuration";

    public int Count => _gpus.Length;

    public IReadOnlyList<GpuInfo> Read()
    {
        lock (_lock)
        {
            return _gpus.Select(g => g.Snapshot()).ToArray();
        }
    }

    /// <summary>Sets how much memory a process holds on a GPU (0 removes it).</summary>
    public void SetProcessUsage(int gpuIndex, int pid, long usedMb, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(usedMb);
        lock (_lock)
        {
            var gpu = Gpu(gpuIndex);
            if (usedMb == 0)
            {
                gpu.Processes.Remove(pid);
            }
            else
            {
                gpu.Processes[pid] = new GpuProcess(pid, usedMb, name);
            }
        }
    }

    /// <summary>Sets the memory in use that no process accounts for (driver, desktop).</summary>
    public void SetBaseUsage(int gpuIndex, long usedMb)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(usedMb);
        lock (_lock)
        {
            Gpu(gpuIndex).BaseUsedMb = usedMb;
        }
    }

    public void Dispose()
    {
    }

    private SimulatedGpu Gpu(int index) =>
        index >= 0 && index < _gpus.Length
            ? _gpus[index]
            : throw new ArgumentOutOfRangeException(nameof(index), index, $"there are {_gpus.Length} simulated GPUs");

    private sealed class SimulatedGpu(int index, SimulatedGpuOptions options)
    {
        public long BaseUsedMb { get; set; } = options.UsedMb;

        public Dictionary<int, GpuProcess> Processes { get; } = [];

        public GpuInfo Snapshot()
        {
            var used = BaseUsedMb + Processes.Values.Sum(p => p.UsedMb ?? 0);
            return new GpuInfo
            {
                Index = index,
                Name = options.Name,
                Uuid = $"GPU-simulated-{index:D4}",
                TotalMb = options.TotalMb,
                UsedMb = Math.Min(used, options.TotalMb),
                TemperatureC = options.TemperatureC,
                UtilizationPercent = options.UtilizationPercent,
                Processes = Processes.Values.OrderBy(p => p.Pid).ToArray(),
            };
        }
    }
}
