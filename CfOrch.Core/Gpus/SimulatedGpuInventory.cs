using CfOrch.Core.Configuration;

namespace CfOrch.Core.Gpus;

/// <summary>
/// GPUs from configuration, for demos and tests. Per-process usage can be set at run time, the way a program
/// started behind cf-orch's back would show up in NVML.
/// </summary>
public sealed class SimulatedGpuInventory : IGpuInventory, IMirrorsMeasuredUsage
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

    /// <summary>
    /// Replaces what the simulated GPUs show for services measured some other way (Ollama's <c>/api/ps</c>): a real GPU
    /// would show that memory as used by the service's process, so the simulation does too. Entries set with
    /// <see cref="SetProcessUsage"/> for the same process win.
    /// </summary>
    public void ReflectMeasured(IEnumerable<(int GpuIndex, int Pid, long UsedMb, string Name)> usage)
    {
        ArgumentNullException.ThrowIfNull(usage);
        var byGpu = usage.Where(u => u.UsedMb > 0 && u.GpuIndex >= 0 && u.GpuIndex < _gpus.Length).ToLookup(u => u.GpuIndex);
        lock (_lock)
        {
            foreach (var gpu in _gpus)
            {
                gpu.Reflected = byGpu[gpu.Index].GroupBy(u => u.Pid).ToDictionary(g => g.Key, g => new GpuProcess(g.Key, g.Sum(u => u.UsedMb), g.First().Name));
            }
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
        public long BaseUsedMb { get; } = options.UsedMb;

        public int Index => index;

        public Dictionary<int, GpuProcess> Processes { get; } = [];

        public Dictionary<int, GpuProcess> Reflected { get; set; } = [];

        public GpuInfo Snapshot()
        {
            var processes = Reflected.Values.Where(p => !Processes.ContainsKey(p.Pid)).Concat(Processes.Values).ToList();
            var used = BaseUsedMb + processes.Sum(p => p.UsedMb ?? 0);
            return new GpuInfo
            {
                Index = index,
                Name = options.Name,
                Uuid = $"GPU-simulated-{index:D4}",
                TotalMb = options.TotalMb,
                UsedMb = Math.Min(used, options.TotalMb),
                TemperatureC = options.TemperatureC,
                UtilizationPercent = options.UtilizationPercent,
                Processes = processes.OrderBy(p => p.Pid).ToArray(),
            };
        }
    }
}
