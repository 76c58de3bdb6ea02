using System.Runtime.InteropServices;
using System.Text;
using CfOrch.Core.Gpus.Nvml;

namespace CfOrch.Tests.Gpus;

/// <summary>The parts of the NVML binding that can be checked without a GPU: struct layouts as nvml.h declares them, and the buffer protocols.</summary>
public sealed unsafe class NvmlMarshallingTests
{
    [Fact]
    public void Structs_match_the_c_layout_of_nvml_h()
    {
        Assert.Equal(24, Marshal.SizeOf<NvmlMemory>());
        Assert.Equal(40, Marshal.SizeOf<NvmlMemoryV2>());
        Assert.Equal(8, (int)Marshal.OffsetOf<NvmlMemoryV2>(nameof(NvmlMemoryV2.Total)));
        Assert.Equal(24, (int)Marshal.OffsetOf<NvmlMemoryV2>(nameof(NvmlMemoryV2.Free)));
        Assert.Equal(8, Marshal.SizeOf<NvmlUtilization>());
        Assert.Equal(16, Marshal.SizeOf<NvmlProcessInfoV1>());
        Assert.Equal(24, Marshal.SizeOf<NvmlProcessInfoV2>());
        Assert.Equal(8, (int)Marshal.OffsetOf<NvmlProcessInfoV2>(nameof(NvmlProcessInfoV2.UsedGpuMemory)));
        Assert.Equal(16, (int)Marshal.OffsetOf<NvmlProcessInfoV2>(nameof(NvmlProcessInfoV2.GpuInstanceId)));
        Assert.Equal(sizeof(NvmlProcessInfoV2), Marshal.SizeOf<NvmlProcessInfoV2>());
    }

    [Fact]
    public void The_memory_v2_version_word_is_size_or_version_shifted_24()
    {
        // nvml.h: #define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2) = sizeof(nvmlMemory_v2_t) | (2 << 24)
        Assert.Equal(0x02000028u, NvmlConventions.MemoryV2Version);
    }

    [Fact]
    public void Strings_are_decoded_up_to_the_first_nul()
    {
        var buffer = new byte[NvmlConventions.NameBufferSize];
        Encoding.UTF8.GetBytes("NVIDIA GeForce RTX 4090").CopyTo(buffer, 0);
        buffer[40] = (byte)'x';

        Assert.Equal("NVIDIA GeForce RTX 4090", NvmlConventions.DecodeString(buffer));
        Assert.Equal("abc", NvmlConventions.DecodeString("abc"u8));
    }

    [Fact]
    public void Bytes_become_mib_and_not_available_becomes_null()
    {
        Assert.Equal(24564, NvmlConventions.BytesToMb(25_757_220_864));
        Assert.Null(NvmlConventions.ProcessMemoryMb(NvmlConventions.ValueNotAvailable));
        Assert.Equal(1024, NvmlConventions.ProcessMemoryMb(1024UL * 1024 * 1024));
        Assert.Equal((8192L, 8192L - 6000L), NvmlConventions.Memory(8192UL << 20, 6000UL << 20));
    }

    [Fact]
    public void An_empty_process_list_takes_one_call()
    {
        var calls = 0;
        var rc = NvmlProcessBuffer.Read<NvmlProcessInfoV2>((ref count, infos) =>
        {
            calls++;
            count = 0;
            return NvmlReturn.Success;
        }, out var items);

        Assert.Equal(NvmlReturn.Success, rc);
        Assert.Empty(items);
        Assert.Equal(1, calls);
    }

    [Fact]
    public void The_process_list_is_sized_then_filled_and_retried_when_it_grows()
    {
        var live = new List<(uint Pid, ulong Bytes)> { (100, 1UL << 30), (200, NvmlConventions.ValueNotAvailable) };
        var calls = 0;

        var rc = NvmlProcessBuffer.Read<NvmlProcessInfoV2>((ref count, infos) =>
        {
            calls++;
            if (calls == 2)
            {
                // Ten processes appeared between the sizing call and the fill: more than the slack allows.
                for (uint i = 0; i < 10; i++)
                {
                    live.Add((1000 + i, 1UL << 20));
                }
            }

            if (infos == null || count < live.Count)
            {
                count = (uint)live.Count;
                return NvmlReturn.InsufficientSize;
            }

            for (var i = 0; i < live.Count; i++)
            {
                infos[i] = new NvmlProcessInfoV2 { Pid = live[i].Pid, UsedGpuMemory = live[i].Bytes };
            }

            count = (uint)live.Count;
            return NvmlReturn.Success;
        }, out var items);

        Assert.Equal(NvmlReturn.Success, rc);
        Assert.Equal(3, calls);
        Assert.Equal(12, items.Length);
        Assert.Equal(100u, items[0].Pid);
        Assert.Equal(NvmlConventions.ValueNotAvailable, items[1].UsedGpuMemory);
    }

    [Fact]
    public void A_process_list_that_keeps_growing_gives_up_with_the_error()
    {
        uint n = 1;
        var rc = NvmlProcessBuffer.Read<NvmlProcessInfoV1>((ref count, infos) =>
        {
            n += 100;
            count = n;
            return NvmlReturn.InsufficientSize;
        }, out var items);

        Assert.Equal(NvmlReturn.InsufficientSize, rc);
        Assert.Empty(items);
    }
}
