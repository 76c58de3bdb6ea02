using CfOrch.Core.Configuration;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Drops lease history and GPU samples older than their retention (<c>CfOrch:History:*RetentionDays</c>), and thins GPU
/// samples older than a day to one per 5 minutes.
/// </summary>
[DisallowConcurrentExecution]
public sealed class HistoryHousekeepingJob(IDbContextFactory<CfOrchDb> dbFactory, IOptions<CfOrchOptions> options, TimeProvider time) : IJob
{
    public static readonly JobKey Key = new("history-housekeeping", "cf-orch");
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        try
        {
            await HouseKeepAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // cf-orch is stopping: the next run does it.
        }
    }

    private async Task HouseKeepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var history = options.Value.History;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var eventCutoff = (now - TimeSpan.FromDays(history.LeaseEventRetentionDays)).ToUnixTimeMilliseconds();
        await db.LeaseEvents.Where(e => e.AtUnixMs < eventCutoff).ExecuteDeleteAsync(cancellationToken);
        var sampleCutoff = (now - TimeSpan.FromDays(history.SampleRetentionDays)).ToUnixTimeMilliseconds();
        await db.GpuSamples.Where(s => s.AtUnixMs < sampleCutoff).ExecuteDeleteAsync(cancellationToken);

        // Downsampling: past a day, one sample per GPU per 5 minutes is kept (the first of each bucket).
        var thinBefore = (now - TimeSpan.FromDays(1)).ToUnixTimeMilliseconds();
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM gpu_samples
            WHERE AtUnixMs < {thinBefore}
              AND Id NOT IN (SELECT MIN(Id) FROM gpu_samples WHERE AtUnixMs < {thinBefore} GROUP BY NodeId, GpuIndex, AtUnixMs / 300000)
            """, cancellationToken);
    }
}
