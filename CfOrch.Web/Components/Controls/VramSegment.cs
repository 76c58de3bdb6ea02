using System.Globalization;
using CfOrch.Core.Gpus;

namespace CfOrch.Web.Components.Controls;

public enum VramSegmentKind
{
    /// <summary>Memory held by a process cf-orch does not track.</summary>
    External,

    /// <summary>Memory in use that no process accounts for (driver, desktop, processes NVML cannot see).</summary>
    Unattributed,

    /// <summary><c>CfOrch:Gpus:ReserveMb</c>: free memory cf-orch never leases.</summary>
    Reserve,

    Free,
}

/// <summary>One stretch of a GPU's VRAM bar: who holds it and how much.</summary>
public sealed record VramSegment(string Label, long Mb, VramSegmentKind Kind, string Color)
{
    public string Tooltip => $"{Label}: {Mb.ToString("N0", CultureInfo.InvariantCulture)} MB";

    /// <summary>Lays a GPU's memory out left to right: each process, then unattributed use, the reserve, and what is free.</summary>
    public static IReadOnlyList<VramSegment> ForGpu(GpuInfo gpu, long reserveMb)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var segments = new List<VramSegment>();
        var attributed = 0L;
        foreach (var p in gpu.Processes.Where(p => p.UsedMb is > 0))
        {
            var mb = Math.Min(p.UsedMb!.Value, gpu.UsedMb - attributed);
            if (mb <= 0)
            {
                break;
            }

            segments.Add(new VramSegment($"{p.Name ?? "process"} (PID {p.Pid}, not tracked by cf-orch)", mb, VramSegmentKind.External, ColorFor(p.Name ?? p.Pid.ToString(CultureInfo.InvariantCulture))));
            attributed += mb;
        }

        var unattributed = gpu.UsedMb - attributed;
        if (unattributed > 0)
        {
            segments.Add(new VramSegment(attributed == 0 ? "In use" : "In use by the driver and other programs", unattributed, VramSegmentKind.Unattributed, "var(--cf-vram-unattributed)"));
        }

        var reserve = Math.Min(Math.Max(reserveMb, 0), gpu.FreeMb);
        if (reserve > 0)
        {
            segments.Add(new VramSegment("Reserve (never leased)", reserve, VramSegmentKind.Reserve, "var(--cf-vram-reserve)"));
        }

        var free = gpu.FreeMb - reserve;
        if (free > 0)
        {
            segments.Add(new VramSegment("Free", free, VramSegmentKind.Free, "var(--cf-vram-free)"));
        }

        return segments;
    }

    private static readonly string[] Palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];

    /// <summary>A stable colour per holder name, so a service keeps its colour across cards and reloads.</summary>
    public static string ColorFor(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var hash = 17;
        foreach (var c in name)
        {
            hash = unchecked((hash * 31) + c);
        }

        return Palette[(hash & 0x7fffffff) % Palette.Length];
    }
}
