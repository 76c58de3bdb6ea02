using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Ollama;
using CfOrch.Core.Processes;
using CfOrch.Core.Runtimes;

namespace CfOrch.Core.Measurement;

/// <summary>
/// Measures the VRAM each instance really uses: Ollama's own <c>/api/ps</c> (Σ size_vram), else NVML's per-process
/// figures for the instance's process tree (the PID listening on its port, or the one cf-orch started, and every
/// descendant — Ollama's runners are children of <c>ollama serve</c>).
/// </summary>
public sealed class UsageMeter(OllamaClient ollama, GpuMonitor gpus, InstanceRegistry registry, LeaseManager leases, ServiceRuntimes runtimes, TimeProvider time)
{
    // What this meter last put into a simulated inventory (a handful of entries): never read back as a measurement.
    private readonly Lock _reflectLock = new();
    private (int GpuIndex, int Pid, long UsedMb, string Name)[] _reflection = [];

    /// <summary>
    /// The processes of an instance: what its runtime says it runs as (an adopted container too); otherwise (a process
    /// adopted on this machine) the tree under its PID, or under whatever listens on its port.
    /// </summary>
    public IReadOnlyList<int> ProcessesOf(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return runtimes.Of(instance.Key) is { } runtime
            ? runtime.ProcessesOf(instance)
            : ProcFs.ServiceProcesses(instance.Pid, instance.Url);
    }

    /// <summary>Whether a process on a GPU is one this meter put into a simulated inventory (never read back as a measurement).</summary>
    private static bool IsReflection((int GpuIndex, int Pid, long UsedMb, string Name)[] reflected, int gpu, int pid) =>
        reflected.Any(r => r.GpuIndex == gpu && r.Pid == pid);

    private static int FirstOrNone(IReadOnlyList<int> pids) => pids.Count > 0 ? pids[0] : 0;

    /// <summary>The processes the GPUs report (what this meter put into a simulated inventory aside).</summary>
    private HashSet<int> GpuProcessPids()
    {
        var reflected = Volatile.Read(ref _reflection);
        return gpus.Current.Gpus
            .SelectMany(g => g.Processes.Where(p => !IsReflection(reflected, g.Index, p.Pid)).Select(p => p.Pid))
            .ToHashSet();
    }

    /// <summary>
    /// Those of an instance's processes that matter for what its GPUs hold: none when the GPUs report no process (no
    /// GPU, or an idle one); for a process on this machine, its root and the reported processes that descend from it,
    /// read up from each of those (a few reads, where the whole tree would read every process on the machine every poll).
    /// </summary>
    private IReadOnlyList<int> ProcessesOnGpus(InstanceSnapshot instance, HashSet<int> onGpus)
    {
        if (onGpus.Count == 0)
        {
            return [];
        }

        if (runtimes.Of(instance.Key) is { } runtime and not LocalProcessRuntime)
        {
            return runtime.ProcessesOf(instance);
        }

        return instance.Pid is { } pid && ProcFs.IsRunning(pid)
            ? [pid, .. onGpus.Where(p => p != pid && ProcFs.DescendsFrom(p, pid)).Order()]
            : ProcessesOf(instance);
    }

    /// <summary>
    /// What these processes hold per GPU, from the latest NVML reading: (GPU, MB) sorted by MB, largest first; empty when
    /// the driver reports nothing for them.
    /// </summary>
    public IReadOnlyList<(int GpuIndex, long Mb)> GpuUsage(IReadOnlyCollection<int> pids)
    {
        ArgumentNullException.ThrowIfNull(pids);
        if (pids.Count == 0)
        {
            return [];
        }

        var set = pids as ISet<int> ?? pids.ToHashSet();
        var reflected = Volatile.Read(ref _reflection);
        bool Counts(int gpu, GpuProcess p) => set.Contains(p.Pid) && p.UsedMb is not null && !IsReflection(reflected, gpu, p.Pid);
        return gpus.Current.Gpus
            .Select(g => (g.Index, Mb: g.Processes.Where(p => Counts(g.Index, p)).Sum(p => p.UsedMb!.Value), Known: g.Processes.Any(p => Counts(g.Index, p))))
            .Where(x => x.Known)
            .OrderByDescending(x => x.Mb)
            .Select(x => (x.Index, x.Mb))
            .ToList();
    }

    /// <summary>
    /// Measures one service now, from the per-GPU usage of its processes: the larger of NVML's figure on its GPU and,
    /// for Ollama, the size_vram it reports (each is a lower bound: NVML may not see every process, Ollama counts only
    /// loaded models).
    /// </summary>
    public async Task<long?> MeasureAsync(string service, string healthPath, string url, IReadOnlyList<(int GpuIndex, long Mb)> usage, int gpuIndex, CancellationToken cancellationToken) =>
        (await MeasureWithModelsAsync(service, healthPath, url, usage, gpuIndex, cancellationToken)).Mb;

    /// <summary>As <see cref="MeasureAsync"/>, with the models the service reports loaded (Ollama's <c>/api/ps</c>; none for others).</summary>
    private async Task<(long? Mb, IReadOnlyList<LoadedModel> Models)> MeasureWithModelsAsync(string service, string healthPath, string url, IReadOnlyList<(int GpuIndex, long Mb)> usage, int gpuIndex, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(usage);
        long? nvml = usage.Where(u => u.GpuIndex == gpuIndex).Select(u => (long?)u.Mb).FirstOrDefault();
        var loaded = OllamaClient.IsOllama(service, healthPath) ? await ollama.LoadedAsync(url, cancellationToken) : null;
        long? reported = loaded?.VramMb;
        var models = loaded?.Models.Select(m => new LoadedModel(m.Name, m.SizeVram / BytesPerMb, m.ExpiresAt)).ToList() ?? [];
        return (nvml is null ? reported : reported is null ? nvml : Math.Max(nvml.Value, reported.Value), models);
    }

    private const long BytesPerMb = 1024 * 1024;

    /// <summary>Whether a new reading of the models says what the last one did (the dates cf-orch added aside).</summary>
    private static bool SameReading(IReadOnlyList<LoadedModel> before, IReadOnlyList<LoadedModel> now)
    {
        if (before.Count != now.Count)
        {
            return false;
        }

        for (var i = 0; i < now.Count; i++)
        {
            if (before[i] is not { } b || b.Name != now[i].Name || b.VramMb != now[i].VramMb || b.ExpiresAt != now[i].ExpiresAt)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Measures every running instance and records the figures on the instance and its lease.</summary>
    public async Task MeasureAllAsync(CancellationToken cancellationToken)
    {
        var active = registry.All.Where(i => i.State is InstanceState.Running or InstanceState.Idle or InstanceState.Unhealthy or InstanceState.Starting).ToList();
        var onGpus = GpuProcessPids();
        var results = await Task.WhenAll(active.Select(async i =>
        {
            var pids = ProcessesOnGpus(i, onGpus);
            var usage = GpuUsage(pids);
            var (mb, models) = await MeasureWithModelsAsync(i.Service, i.HealthPath, i.Url, usage, i.Key.GpuIndex, cancellationToken);
            return (Instance: i, Mb: mb, Pids: pids, SeenByGpu: usage.Any(u => u.GpuIndex == i.Key.GpuIndex), Models: models);
        }));
        if (gpus.Inventory is IMirrorsMeasuredUsage simulated)
        {
            // A simulated GPU cannot see the memory a service really holds: show what the service says it holds
            // (Ollama's size_vram) as used by its process, as NVML would on a real GPU.
            var reflect = results
                .Where(r => r is { Mb: > 0, SeenByGpu: false })
                .Select(r => (r.Instance.Key.GpuIndex, Pid: r.Instance.Pid is { } pid && (r.Pids.Contains(pid) || ProcFs.IsRunning(pid)) ? pid : FirstOrNone(ProcessesOf(r.Instance)), UsedMb: r.Mb!.Value, Name: r.Instance.Service))
                .Where(r => r.Pid > 0)
                .Order()
                .ToArray();
            lock (_reflectLock)
            {
                if (!reflect.SequenceEqual(_reflection))
                {
                    Volatile.Write(ref _reflection, reflect);
                    simulated.ReflectMeasured(reflect);
                    gpus.Refresh();
                }
            }
        }

        var now = time.GetUtcNow();
        foreach (var (instance, mb, _, _, models) in results)
        {
            var updated = registry.Update(
                instance.Key,
                i => i.MeasuredMb == mb && SameReading(i.LoadedModels, models) ? i : i with
                {
                    MeasuredMb = mb,
                    LoadedModels = models.Select(m => m.Following(i.LoadedModels.FirstOrDefault(p => p.Name == m.Name), now)).ToList(),
                },
                i => i.IsActive);
            if (updated?.LeaseId is { } leaseId)
            {
                leases.UpdateMeasured(leaseId, mb);
            }
        }
    }
}
