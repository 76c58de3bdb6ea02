using CfOrch.Core.History;
using Microsoft.EntityFrameworkCore;

namespace CfOrch.Web.Data;

/// <summary>The reads of the History page and of <c>GET /api/leases/history</c>, from SQLite.</summary>
public sealed class HistoryQueries(IDbContextFactory<CfOrchDb> dbFactory, HistoryChanges changes) : IHistoryReader
{
    public event Action? Written
    {
        add => changes.Written += value;
        remove => changes.Written -= value;
    }

    /// <summary>One page of lease events, newest first, and how many match in all.</summary>
    public async Task<(int Total, IReadOnlyList<LeaseEventRecord> Events)> LeaseEventsAsync(HistoryFilter filter, int page, int pageSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var events = db.LeaseEvents.AsNoTracking();
        if (!string.IsNullOrEmpty(filter.Service))
        {
            events = events.Where(e => e.Service == filter.Service || e.Holder == filter.Service);
        }

        if (filter.GpuIndex is { } gpu)
        {
            events = events.Where(e => e.GpuIndex == gpu);
        }

        if (!string.IsNullOrEmpty(filter.Kind))
        {
            events = events.Where(e => e.Kind == filter.Kind);
        }

        if (filter.SinceUnixMs is { } since)
        {
            events = events.Where(e => e.AtUnixMs >= since);
        }

        if (filter.UntilUnixMs is { } until)
        {
            events = events.Where(e => e.AtUnixMs < until);
        }

        var total = await events.CountAsync(cancellationToken);
        var rows = await events.OrderByDescending(e => e.AtUnixMs).ThenByDescending(e => e.Id)
            .Skip(Math.Max(0, page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);
        return (total, rows.Select(e => new LeaseEventRecord(
            e.AtUnixMs, e.Kind, e.LeaseId, e.NodeId, e.GpuIndex, e.Service, e.Holder, e.Origin, e.BudgetMb, e.MeasuredMb, e.Reason, e.GrantedAtUnixMs)).ToList());
    }

    /// <summary>
    /// GPU samples since a time, oldest first, for the charts: at most one per GPU per <paramref name="bucketMs"/> (the
    /// largest figures of the samples it stands for, so that a peak is never smoothed away), so that a chart of 30 days
    /// is as cheap to draw as one of an hour.
    /// </summary>
    public async Task<IReadOnlyList<GpuSampleRecord>> SamplesAsync(long sinceUnixMs, int? gpuIndex, long bucketMs, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketMs, 1);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var samples = db.GpuSamples.AsNoTracking().Where(s => s.AtUnixMs >= sinceUnixMs);
        if (gpuIndex is { } gpu)
        {
            samples = samples.Where(s => s.GpuIndex == gpu);
        }

        var peaks = await samples
            .GroupBy(s => new { s.NodeId, s.GpuIndex, Bucket = (s.AtUnixMs - sinceUnixMs) / bucketMs })
            .Select(g => new GpuSample
            {
                NodeId = g.Key.NodeId,
                GpuIndex = g.Key.GpuIndex,
                GpuName = g.Max(s => s.GpuName)!,
                AtUnixMs = g.Max(s => s.AtUnixMs),
                TotalMb = g.Max(s => s.TotalMb),
                UsedMb = g.Max(s => s.UsedMb),
                UtilizationPercent = g.Max(s => s.UtilizationPercent),
                TemperatureC = g.Max(s => s.TemperatureC),
                CommittedMb = g.Max(s => s.CommittedMb),
                MeasuredMb = g.Max(s => s.MeasuredMb),
            })
            .OrderBy(s => s.AtUnixMs)
            .ToListAsync(cancellationToken);
        return peaks.Select(s => new GpuSampleRecord(
            s.NodeId, s.GpuIndex, s.GpuName, s.AtUnixMs, s.TotalMb, s.UsedMb, s.UtilizationPercent, s.TemperatureC, s.CommittedMb, s.MeasuredMb)).ToList();
    }

    /// <summary>The services and holders that appear in the history (for the filter).</summary>
    public async Task<IReadOnlyList<string>> HoldersAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.LeaseEvents.AsNoTracking().Select(e => e.Service ?? e.Holder).Distinct().OrderBy(h => h).Take(500).ToListAsync(cancellationToken);
    }
}
