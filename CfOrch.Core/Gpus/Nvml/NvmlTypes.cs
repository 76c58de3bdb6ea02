using System.Runtime.InteropServices;
using System.Text;

namespace CfOrch.Core.Gpus.Nvml;

/// <summary>nvmlReturn_t (nvml.h).</summary>
public enum NvmlReturn
{
    Success = 0,
    Uninitialized = 1,
    InvalidArgument = 2,
    NotSupported = 3,
    NoPermission = 4,
    AlreadyInitialized = 5,
    NotFound = 6,
    InsufficientSize = 7,
    InsufficientPower = 8,
    DriverNotLoaded = 9,
    Timeout = 10,
    IrqIssue = 11,
    LibraryNotFound = 12,
    FunctionNotFound = 13,
    CorruptedInforom = 14,
    GpuIsLost = 15,
    ResetRequired = 16,
    OperatingSystem = 17,
    LibRmVersionMismatch = 18,
    InUse = 19,
    Memory = 20,
    NoData = 21,
    Unknown = 999,
}

/// <summary>nvmlMemory_t: total, free and used bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct NvmlMemory
{
    public ulong Total;
    public ulong Free;
    public ulong Used;
}

/// <summary>nvmlMemory_v2_t: adds the version word and the memory the driver reserves.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct NvmlMemoryV2
{
    public uint Version;
    public ulong Total;
    public ulong Reserved;
    public ulong Free;
    public ulong Used;
}

/// <summary>nvmlUtilization_t: percent of time the GPU and its memory were busy over the last sample period.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct NvmlUtilization
{
    public uint Gpu;
    public uint Memory;
}

/// <summary>nvmlProcessInfo_v1_t (behind nvmlDeviceGetComputeRunningProcesses).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct NvmlProcessInfoV1
{
    public uint Pid;
    public ulong UsedGpuMemory;
}

/// <summary>nvmlProcessInfo_t / nvmlProcessInfo_v2_t (behind the _v2 and _v3 entry points).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct NvmlProcessInfoV2
{
    public uint Pid;
    public ulong UsedGpuMemory;
    public uint GpuInstanceId;
    public uint ComputeInstanceId;
}

/// <summary>Constants and conversions shared by the NVML binding; pure functions, testable without a GPU.</summary>
public static class NvmlConventions
{
    /// <summary>NVML_DEVICE_NAME_V2_BUFFER_SIZE.</summary>
    public const int NameBufferSize = 96;

    /// <summary>NVML_DEVICE_UUID_V2_BUFFER_SIZE.</summary>
    public const int UuidBufferSize = 96;

    /// <summary>NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE.</summary>
    public const int VersionBufferSize = 80;

    /// <summary>NVML_VALUE_NOT_AVAILABLE as an unsigned long long: "the driver does not know this process's usage".</summary>
    public const ulong ValueNotAvailable = ulong.MaxValue;

    /// <summary>NVML_TEMPERATURE_GPU.</summary>
    public const int TemperatureSensorGpu = 0;

    private const long BytesPerMb = 1024 * 1024;

    /// <summary>nvmlMemory_v2 = NVML_STRUCT_VERSION(Memory, 2): the struct size with the version in the top byte.</summary>
    public static uint MemoryV2Version => (uint)Marshal.SizeOf<NvmlMemoryV2>() | (2u << 24);

    public static long BytesToMb(ulong bytes) => (long)(bytes / BytesPerMb);

    /// <summary>Per-process usage in MB, or null when NVML says it is not available.</summary>
    public static long? ProcessMemoryMb(ulong usedGpuMemory) =>
        usedGpuMemory == ValueNotAvailable ? null : BytesToMb(usedGpuMemory);

    /// <summary>Decodes a NUL-terminated UTF-8 string out of a fixed-size buffer that NVML filled.</summary>
    public static string DecodeString(ReadOnlySpan<byte> buffer)
    {
        var end = buffer.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? buffer : buffer[..end]).Trim();
    }

    /// <summary>Used and total MB from memory info: used is total − free, so memory the driver reserves counts as used.</summary>
    public static (long TotalMb, long UsedMb) Memory(ulong total, ulong free) =>
        (BytesToMb(total), BytesToMb(total) - BytesToMb(Math.Min(free, total)));

    public static string Describe(NvmlReturn code) => code switch
    {
        NvmlReturn.Success => "success",
        NvmlReturn.Uninitialized => "NVML was not initialised",
        NvmlReturn.NotSupported => "not supported by this device",
        NvmlReturn.NoPermission => "no permission (run as a user that may read the GPU, or pass the device into the container)",
        NvmlReturn.DriverNotLoaded => "the NVIDIA driver is not loaded",
        NvmlReturn.LibraryNotFound => "the NVML library was not found",
        NvmlReturn.FunctionNotFound => "this driver does not have that NVML function",
        NvmlReturn.GpuIsLost => "the GPU has fallen off the bus or is otherwise inaccessible",
        NvmlReturn.LibRmVersionMismatch => "the NVML library and the kernel driver versions differ (reboot after a driver upgrade)",
        NvmlReturn.InsufficientSize => "the buffer was too small",
        NvmlReturn.Timeout => "the driver timed out",
        _ => $"NVML error {(int)code} ({code})",
    };
}
