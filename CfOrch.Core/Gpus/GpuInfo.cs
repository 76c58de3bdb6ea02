namespace CfOrch.Core.Gpus;

/// <summary>One GPU as read at one moment. Memory figures are MiB ("MB" throughout cf-orch, as in its profiles).</summary>
public sealed record GpuInfo
{
    public required int Index { get; init; }

    public required string Name { get; init; }

    public string Uuid { get; init; } = "";

    public required long TotalMb { get; init; }

    public required long UsedMb { get; init; }

    public long FreeMb => Math.Max(0, TotalMb - UsedMb);

    public int? UtilizationPercent { get; init; }

    public int? TemperatureC { get; init; }

    /// <summary>Processes holding memory on this GPU, with per-process usage where the driver reports it.</summary>
    public IReadOnlyList<GpuProcess> Processes { get; init; } = [];

    /// <summary>Set when this GPU could not be read completely (for example it fell off the bus).</summary>
    public string? Error { get; init; }
}

/// <summary>A process using a GPU. <see cref="UsedMb"/> is null when the driver does not report it (some containers, WDDM).</summary>
public sealed record GpuProcess(int Pid, long? UsedMb, string? Name);

/// <summary>The GPUs of this node at one moment, with where they came from.</summary>
public sealed record GpuSnapshot(DateTimeOffset At, GpuSource Source, IReadOnlyList<GpuInfo> Gpus, string? Detail)
{
    public static GpuSnapshot Empty(GpuSource source, string? detail) => new(DateTimeOffset.MinValue, source, [], detail);

    /// <summary>
    /// Set when the latest reading failed: <see cref="Gpus"/> and <see cref="At"/> are then the last good reading's.
    /// </summary>
    public string? ReadError { get; init; }

    /// <summary>When the latest reading failed (null while readings succeed).</summary>
    public DateTimeOffset? ReadFailedAt { get; init; }
}

public enum GpuSource
{
    None,
    Nvml,
    Simulated,
}
