namespace CfOrch.Core.Gpus.Nvml;

/// <summary>One call of an nvmlDeviceGet*RunningProcesses entry point: fills at most <paramref name="count"/> infos.</summary>
public unsafe delegate NvmlReturn NvmlProcessQuery<T>(ref uint count, T* infos)
    where T : unmanaged;

/// <summary>
/// The size-then-fill protocol of NVML's process lists: ask with no buffer to learn the count, then fill a buffer
/// with room to spare, asking again (a few times) when processes appeared in between.
/// </summary>
public static unsafe class NvmlProcessBuffer
{
    public const int MaxAttempts = 4;
    private const uint Slack = 8;

    public static NvmlReturn Read<T>(NvmlProcessQuery<T> query, out T[] items)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(query);
        uint count = 0;
        var rc = query(ref count, null);
        if (rc == NvmlReturn.Success)
        {
            items = [];
            return rc;
        }

        for (var attempt = 0; attempt < MaxAttempts && rc == NvmlReturn.InsufficientSize; attempt++)
        {
            var capacity = count + Slack;
            var buffer = new T[capacity];
            count = capacity;
            fixed (T* p = buffer)
            {
                rc = query(ref count, p);
            }

            if (rc == NvmlReturn.Success)
            {
                items = buffer.AsSpan(0, (int)Math.Min(count, capacity)).ToArray();
                return rc;
            }
        }

        items = [];
        return rc;
    }
}
