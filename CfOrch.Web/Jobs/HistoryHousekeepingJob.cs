using CfOrch.Core.Configuration;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Drops lease history and GPU samples older than their retention (<c>CfOrch:History:*RetentionDays</c>).</summary>
[DisallowConcurrentExecution]
public sealed class HistoryHousekeepingJob(IDbContextFactory<CfOrchDb> dbFactory, IOptions<CfOrchOptions> options, TimeProvider time) : IJob
{
    public static readonly JobKey Key = new("history-housekeeping", "cf-orch");
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var history = options.Value.History;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var eventCutoff = (now - TimeSpan.FromDays(history.LeaseEventRetentionDays)).ToUnixTimeMilliseconds();
        await db.LeaseEvents.Where(e => e.AtUnixMs < eventCutoff).ExecuteDeleteAsync(cancellationToken);
        var sampleCutoff = (now - TimeSpan.FromDays(history.SampleRetentionDays)).ToUnixTimeMilliseconds();
        await db.GpuSamples.Where(s => s.AtUnixMs < sampleCutoff).ExecuteDeleteAsync(cancellationToken);
    }
}
