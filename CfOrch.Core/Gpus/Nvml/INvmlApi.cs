namespace CfOrch.Core.Gpus.Nvml;

/// <summary>The NVML calls cf-orch makes, typed. The seam between <see cref="NvmlGpuInventory"/> and the native library.</summary>
public interface INvmlApi
{
    /// <summary>Initialises NVML. Throws <see cref="DllNotFoundException"/> when the library is not installed.</summary>
    NvmlReturn Init();

    NvmlReturn Shutdown();

    string ErrorString(NvmlReturn code);

    NvmlReturn GetDriverVersion(out string version);

    NvmlReturn GetDeviceCount(out int count);

    NvmlReturn GetDeviceHandle(int index, out nint device);

    NvmlReturn GetName(nint device, out string name);

    NvmlReturn GetUuid(nint device, out string uuid);

    NvmlReturn GetMemory(nint device, out ulong totalBytes, out ulong freeBytes);

    NvmlReturn GetUtilization(nint device, out NvmlUtilization utilization);

    NvmlReturn GetTemperature(nint device, out int celsius);

    NvmlReturn GetComputeProcesses(nint device, out IReadOnlyList<NvmlProcessInfoV2> processes);
}
