using CfOrch.Core.Processes;

namespace CfOrch.Core.Gpus.Nvml;

/// <summary>Real GPUs through NVML. "Not installed" is a state (see <see cref="TryCreate"/>), not an exception.</summary>
public sealed class NvmlGpuInventory : IGpuInventory
{
    private readonly INvmlApi _api;
    private readonly Func<int, string?> _processName;
    private int _disposed;

    private NvmlGpuInventory(INvmlApi api, Func<int, string?> processName, string driverVersion)
    {
        _api = api;
        _processName = processName;
        Detail = string.IsNullOrEmpty(driverVersion) ? "NVML" : $"NVML, driver {driverVersion}";
    }

    public GpuSource Source => GpuSource.Nvml;

    public string Detail { get; }

    /// <summary>Initialises NVML; on failure says why in words a self-hoster can act on.</summary>
    public static bool TryCreate(INvmlApi api, Func<int, string?>? processName, out NvmlGpuInventory? inventory, out string reason)
    {
        ArgumentNullException.ThrowIfNull(api);
        inventory = null;
        NvmlReturn rc;
        try
        {
            rc = api.Init();
        }
        catch (DllNotFoundException)
        {
            reason = $"{NvmlNative.LibraryCandidates[0]} was not found: this machine has no NVIDIA driver, or the container was started without the NVIDIA runtime (NVIDIA_DRIVER_CAPABILITIES must include utility)";
            return false;
        }
        catch (EntryPointNotFoundException ex)
        {
            reason = $"the NVML library on this machine is too old or damaged: {ex.Message}";
            return false;
        }

        if (rc != NvmlReturn.Success)
        {
            reason = $"NVML failed to initialise: {api.ErrorString(rc)}";
            return false;
        }

        api.GetDriverVersion(out var driver);
        inventory = new NvmlGpuInventory(api, processName ?? ProcFs.ProcessName, driver);
        reason = "";
        return true;
    }

    public IReadOnlyList<GpuInfo> Read()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var rc = _api.GetDeviceCount(out var count);
        if (rc != NvmlReturn.Success)
        {
            return [new GpuInfo { Index = 0, Name = "unknown", TotalMb = 0, UsedMb = 0, Error = $"cannot count GPUs: {_api.ErrorString(rc)}" }];
        }

        var gpus = new GpuInfo[count];
        for (var i = 0; i < count; i++)
        {
            gpus[i] = ReadDevice(i);
        }

        return gpus;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _api.Shutdown();
        }
    }

    private GpuInfo ReadDevice(int index)
    {
        var rc = _api.GetDeviceHandle(index, out var device);
        if (rc != NvmlReturn.Success)
        {
            return new GpuInfo { Index = index, Name = "unknown", TotalMb = 0, UsedMb = 0, Error = _api.ErrorString(rc) };
        }

        string? error = null;
        var name = _api.GetName(device, out var n) == NvmlReturn.Success ? n : "NVIDIA GPU";
        var uuid = _api.GetUuid(device, out var u) == NvmlReturn.Success ? u : "";
        long totalMb = 0, usedMb = 0;
        rc = _api.GetMemory(device, out var total, out var free);
        if (rc == NvmlReturn.Success)
        {
            (totalMb, usedMb) = NvmlConventions.Memory(total, free);
        }
        else
        {
            error = $"cannot read memory: {_api.ErrorString(rc)}";
        }

        int? utilization = _api.GetUtilization(device, out var util) == NvmlReturn.Success ? (int)Math.Min(util.Gpu, 100u) : null;
        int? temperature = _api.GetTemperature(device, out var t) == NvmlReturn.Success ? t : null;
        IReadOnlyList<GpuProcess> processes = [];
        if (_api.GetComputeProcesses(device, out var infos) == NvmlReturn.Success)
        {
            processes = infos
                .Where(p => p.Pid != 0)
                .Select(p => new GpuProcess((int)p.Pid, NvmlConventions.ProcessMemoryMb(p.UsedGpuMemory), _processName((int)p.Pid)))
                .OrderBy(p => p.Pid)
                .ToArray();
        }

        return new GpuInfo
        {
            Index = index,
            Name = name,
            Uuid = uuid,
            TotalMb = totalMb,
            UsedMb = usedMb,
            UtilizationPercent = utilization,
            TemperatureC = temperature,
            Processes = processes,
            Error = error,
        };
    }
}
