using System.Reflection;
using System.Runtime.InteropServices;

namespace CfOrch.Core.Gpus.Nvml;

/// <summary>
/// Direct P/Invoke of libnvidia-ml.so.1 (no NuGet binding). Every entry point returns an <see cref="NvmlReturn"/>;
/// a missing library surfaces as <see cref="DllNotFoundException"/>, a missing function as <see cref="EntryPointNotFoundException"/>.
/// </summary>
internal static unsafe partial class NvmlNative
{
    public const string LibraryName = "nvidia-ml";

    /// <summary>Where the driver puts the library, in the order they are tried.</summary>
    public static readonly string[] LibraryCandidates = OperatingSystem.IsWindows()
        ? ["nvml.dll", @"C:\Windows\System32\nvml.dll"]
        : ["libnvidia-ml.so.1", "libnvidia-ml.so"];

    private static int _resolverInstalled;

    /// <summary>Maps <see cref="LibraryName"/> to the real file names; safe to call many times.</summary>
    public static void InstallResolver()
    {
        if (Interlocked.Exchange(ref _resolverInstalled, 1) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(NvmlNative).Assembly, Resolve);
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
        {
            return 0;
        }

        foreach (var candidate in LibraryCandidates)
        {
            if (NativeLibrary.TryLoad(candidate, assembly, searchPath, out var handle))
            {
                return handle;
            }
        }

        throw new DllNotFoundException($"{LibraryCandidates[0]} was not found");
    }

    [LibraryImport(LibraryName, EntryPoint = "nvmlInit_v2")]
    public static partial NvmlReturn InitV2();

    [LibraryImport(LibraryName, EntryPoint = "nvmlInit")]
    public static partial NvmlReturn InitV1();

    [LibraryImport(LibraryName, EntryPoint = "nvmlShutdown")]
    public static partial NvmlReturn Shutdown();

    [LibraryImport(LibraryName, EntryPoint = "nvmlErrorString")]
    public static partial nint ErrorString(NvmlReturn result);

    [LibraryImport(LibraryName, EntryPoint = "nvmlSystemGetDriverVersion")]
    public static partial NvmlReturn SystemGetDriverVersion(byte* version, uint length);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetCount_v2")]
    public static partial NvmlReturn DeviceGetCountV2(out uint count);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetCount")]
    public static partial NvmlReturn DeviceGetCountV1(out uint count);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    public static partial NvmlReturn DeviceGetHandleByIndexV2(uint index, out nint device);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetHandleByIndex")]
    public static partial NvmlReturn DeviceGetHandleByIndexV1(uint index, out nint device);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetName")]
    public static partial NvmlReturn DeviceGetName(nint device, byte* name, uint length);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetUUID")]
    public static partial NvmlReturn DeviceGetUuid(nint device, byte* uuid, uint length);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetMemoryInfo_v2")]
    public static partial NvmlReturn DeviceGetMemoryInfoV2(nint device, NvmlMemoryV2* memory);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    public static partial NvmlReturn DeviceGetMemoryInfoV1(nint device, NvmlMemory* memory);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetUtilizationRates")]
    public static partial NvmlReturn DeviceGetUtilizationRates(nint device, NvmlUtilization* utilization);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetTemperature")]
    public static partial NvmlReturn DeviceGetTemperature(nint device, int sensor, out uint temperature);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetComputeRunningProcesses_v3")]
    public static partial NvmlReturn DeviceGetComputeRunningProcessesV3(nint device, ref uint infoCount, NvmlProcessInfoV2* infos);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetComputeRunningProcesses_v2")]
    public static partial NvmlReturn DeviceGetComputeRunningProcessesV2(nint device, ref uint infoCount, NvmlProcessInfoV2* infos);

    [LibraryImport(LibraryName, EntryPoint = "nvmlDeviceGetComputeRunningProcesses")]
    public static partial NvmlReturn DeviceGetComputeRunningProcessesV1(nint device, ref uint infoCount, NvmlProcessInfoV1* infos);
}
