using System.Globalization;
using CfOrch.Core.Gpus;
using CfOrch.Core.Leases;

namespace CfOrch.Web.Components.Controls;

public enum VramSegmentKind
{
    /// <summary>A lease: its budget (or its measured use when larger), with the measured part drawn inside.</summary>
    Lease,

    /// <summary>Memory held by a process cf-orch does not track.</summary>
    External,

    /// <summary>Memory in use that no process accounts for (driver, desktop, processes NVML cannot see).</summary>
    Unattributed,

    /// <summary><c>CfOrch:Gpus:ReserveMb</c>: memory cf-orch never leases.</summary>
    Reserve,

    /// <summary>What is left for new leases: the total less leases, memory outside cf-orch and the reserve.</summary>
    Free,
}

/// <summary>One stretch of a GPU's VRAM bar: who holds it and how much.</summary>
public sealed record VramSegment(string Label, long Mb, VramSegmentKind Kind, string Color)
{
    // No reds: red means trouble on this dashboard.
    private static readonly string[] Palette = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#2f6fdf", "#0f9d8a", "#7a4fd6"];

    /// <summary>For a lease: what its holder measurably uses (drawn inside the segment).</summary>
    public long? MeasuredMb { get; init; }

    public string Tooltip => Label;

    public static string Format(long mb) => mb.ToString("N0", CultureInfo.InvariantCulture) + " MB";

    /// <summary>
    /// Lays a GPU's memory out left to right: each lease (most important first), each program cf-orch does not
    /// track, the rest of the memory in use, the reserve, and what is free. Without <paramref name="account"/> (no
    /// engine), every use counts as not tracked.
    /// </summary>
    public static IReadOnlyList<VramSegment> ForGpu(GpuInfo gpu, GpuAccount? account, IReadOnlyList<Lease> leases, long reserveMb, IReadOnlySet<int>? trackedPids = null)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(leases);
        var segments = new List<VramSegment>();
        var onGpu = leases.Where(l => l.GpuIndex == gpu.Index).OrderBy(l => l.Priority).ThenBy(l => l.GrantedAt).ToList();
        var colors = HolderColors(onGpu);
        foreach (var lease in onGpu)
        {
            var origin = lease.Origin switch
            {
                HolderOrigin.Adopted => "adopted, running outside cf-orch",
                HolderOrigin.Client => "client lease",
                _ => "managed",
            };
            var measured = lease.MeasuredMb is { } m ? $", measured {Format(m)}" : ", not measured";
            segments.Add(new VramSegment($"{lease.Holder} ({origin}): budget {Format(lease.Mb)}{measured}", lease.HeldMb, VramSegmentKind.Lease, colors[lease.Holder])
            {
                MeasuredMb = lease.MeasuredMb,
            });
        }

        var external = account?.ExternalMb ?? gpu.UsedMb;
        var attributed = 0L;
        foreach (var p in gpu.Processes.Where(p => p.UsedMb is > 0 && trackedPids?.Contains(p.Pid) != true))
        {
            var mb = Math.Min(p.UsedMb!.Value, external - attributed);
            if (mb <= 0)
            {
                break;
            }

            // Drawn in the colour of everything outside cf-orch (the legend's), never in a holder's: the name is in its
            // label, shown on hover or tap.
            segments.Add(new VramSegment($"{p.Name ?? "process"} (PID {p.Pid}, not tracked by cf-orch): {Format(mb)}", mb, VramSegmentKind.External, OutsideColor));
            attributed += mb;
        }

        if (external - attributed > 0)
        {
            var label = attributed == 0 && segments.Count == 0 ? "In use outside cf-orch" : "In use outside cf-orch (the driver and other programs)";
            segments.Add(new VramSegment($"{label}: {Format(external - attributed)}", external - attributed, VramSegmentKind.Unattributed, OutsideColor));
        }

        var used = segments.Sum(s => s.Mb);
        var reserve = Math.Min(Math.Max(account?.ReserveMb ?? reserveMb, 0), Math.Max(0, gpu.TotalMb - used));
        if (reserve > 0)
        {
            segments.Add(new VramSegment($"Reserve (never leased): {Format(reserve)}", reserve, VramSegmentKind.Reserve, "var(--cf-vram-reserve)"));
        }

        var free = gpu.TotalMb - used - reserve;
        if (free > 0)
        {
            segments.Add(new VramSegment($"Available to new leases: {Format(free)}", free, VramSegmentKind.Free, "var(--cf-vram-free)"));
        }

        return segments;
    }

    private const string OutsideColor = "var(--cf-vram-unattributed)";

    /// <summary>
    /// The colours of the holders of the leases on one GPU, as its card draws them (the most important and oldest
    /// first keep their own colour); the Leases page uses the same, so a holder has one colour on both.
    /// </summary>
    public static IReadOnlyDictionary<string, string> HolderColors(IEnumerable<Lease> onOneGpu) =>
        ColorsFor(onOneGpu.OrderBy(l => l.Priority).ThenBy(l => l.GrantedAt).Select(l => l.Holder));

    /// <summary>
    /// A colour per holder of one GPU, each different: a holder's own colour (<see cref="ColorFor"/>) unless a holder
    /// before it (more important, or older) already has it, then the next free one of the palette.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ColorsFor(IEnumerable<string> holders)
    {
        ArgumentNullException.ThrowIfNull(holders);
        var colors = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var holder in holders.Distinct(StringComparer.Ordinal))
        {
            var start = Array.IndexOf(Palette, ColorFor(holder));
            var pick = Enumerable.Range(0, Palette.Length).Select(i => Palette[(start + i) % Palette.Length]).FirstOrDefault(c => !colors.ContainsValue(c)) ?? Palette[start];
            colors[holder] = pick;
        }

        return colors;
    }

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
