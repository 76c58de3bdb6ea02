using System.Runtime.InteropServices;

namespace CfOrch.Core.Gpus.Nvml;

/// <summary>
/// <see cref="INvmlApi"/> over the native library. The <c>_v2</c>/<c>_v3</c> entry points are tried first; an older
/// driver without them falls back to the original function, and the choice is remembered.
/// </summary>
public sealed unsafe class NvmlApi : INvmlApi
{
    private bool _memoryV1;
    private int _processesVersion = 3;

    public NvmlApi()
    {
        NvmlNative.InstallResolver();
    }

    public NvmlReturn Init()
    {
        try
        {
            return NvmlNative.InitV2();
        }
        catch (EntryPointNotFoundException)
        {
            return NvmlNative.InitV1();
        }
    }

    public NvmlReturn Shutdown() => NvmlNative.Shutdown();

    public string ErrorString(NvmlReturn code)
    {
        try
        {
            var text = Marshal.PtrToStringUTF8(NvmlNative.ErrorString(code));
            return string.IsNullOrWhiteSpace(text) ? NvmlConventions.Describe(code) : text;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return NvmlConventions.Describe(code);
        }
    }

    public NvmlReturn GetDriverVersion(out string version)
    {
        var buffer = stackalloc byte[NvmlConventions.VersionBufferSize];
        var rc = NvmlNative.SystemGetDriverVersion(buffer, NvmlConventions.VersionBufferSize);
        version = rc == NvmlReturn.Success ? NvmlConventions.DecodeString(new ReadOnlySpan<byte>(buffer, NvmlConventions.VersionBufferSize)) : "";
        return rc;
    }

    public NvmlReturn GetDeviceCount(out int count)
    {
        uint n;
        NvmlReturn rc;
        try
        {
            rc = NvmlNative.DeviceGetCountV2(out n);
        }
        catch (EntryPointNotFoundException)
        {
            rc = NvmlNative.DeviceGetCountV1(out n);
        }

        count = (int)n;
        return rc;
    }

    public NvmlReturn GetDeviceHandle(int index, out nint device)
    {
        try
        {
            return NvmlNative.DeviceGetHandleByIndexV2((uint)index, out device);
        }
        catch (EntryPointNotFoundException)
        {
            return NvmlNative.DeviceGetHandleByIndexV1((uint)index, out device);
        }
    }

    public NvmlReturn GetName(nint device, out string name)
    {
        var buffer = stackalloc byte[NvmlConventions.NameBufferSize];
        var rc = NvmlNative.DeviceGetName(device, buffer, NvmlConventions.NameBufferSize);
        name = rc == NvmlReturn.Success ? NvmlConventions.DecodeString(new ReadOnlySpan<byte>(buffer, NvmlConventions.NameBufferSize)) : "";
        return rc;
    }

    public NvmlReturn GetUuid(nint device, out string uuid)
    {
        var buffer = stackalloc byte[NvmlConventions.UuidBufferSize];
        var rc = NvmlNative.DeviceGetUuid(device, buffer, NvmlConventions.UuidBufferSize);
        uuid = rc == NvmlReturn.Success ? NvmlConventions.DecodeString(new ReadOnlySpan<byte>(buffer, NvmlConventions.UuidBufferSize)) : "";
        return rc;
    }

    public NvmlReturn GetMemory(nint device, out ulong totalBytes, out ulong freeBytes)
    {
        if (!_memoryV1)
        {
            try
            {
                var v2 = new NvmlMemoryV2 { Version = NvmlConventions.MemoryV2Version };
                var rc = NvmlNative.DeviceGetMemoryInfoV2(device, &v2);
                if (rc is not (NvmlReturn.FunctionNotFound or NvmlReturn.NotSupported or NvmlReturn.InvalidArgument))
                {
                    totalBytes = v2.Total;
                    freeBytes = v2.Free;
                    return rc;
                }
            }
            catch (EntryPointNotFoundException)
            {
            }

            _memoryV1 = true;
        }

        var v1 = default(NvmlMemory);
        var result = NvmlNative.DeviceGetMemoryInfoV1(device, &v1);
        totalBytes = v1.Total;
        freeBytes = v1.Free;
        return result;
    }

    public NvmlReturn GetUtilization(nint device, out NvmlUtilization utilization)
    {
        NvmlUtilization u;
        var rc = NvmlNative.DeviceGetUtilizationRates(device, &u);
        utilization = u;
        return rc;
    }

    public NvmlReturn GetTemperature(nint device, out int celsius)
    {
        var rc = NvmlNative.DeviceGetTemperature(device, NvmlConventions.TemperatureSensorGpu, out var t);
        celsius = (int)t;
        return rc;
    }

    public NvmlReturn GetComputeProcesses(nint device, out IReadOnlyList<NvmlProcessInfoV2> processes)
    {
        while (true)
        {
            try
            {
                switch (_processesVersion)
                {
                    case 3:
                        return Result(NvmlProcessBuffer.Read<NvmlProcessInfoV2>((ref count, infos) => NvmlNative.DeviceGetComputeRunningProcessesV3(device, ref count, infos), out var v3), v3, out processes);
                    case 2:
                        return Result(NvmlProcessBuffer.Read<NvmlProcessInfoV2>((ref count, infos) => NvmlNative.DeviceGetComputeRunningProcessesV2(device, ref count, infos), out var v2), v2, out processes);
                    default:
                        var rc = NvmlProcessBuffer.Read<NvmlProcessInfoV1>((ref count, infos) => NvmlNative.DeviceGetComputeRunningProcessesV1(device, ref count, infos), out var v1);
                        processes = v1.Select(p => new NvmlProcessInfoV2 { Pid = p.Pid, UsedGpuMemory = p.UsedGpuMemory }).ToArray();
                        return rc;
                }
            }
            catch (EntryPointNotFoundException) when (_processesVersion > 1)
            {
                _processesVersion--;
            }
        }

        static NvmlReturn Result(NvmlReturn rc, NvmlProcessInfoV2[] items, out IReadOnlyList<NvmlProcessInfoV2> processes)
        {
            processes = items;
            return rc;
        }
    }
}
