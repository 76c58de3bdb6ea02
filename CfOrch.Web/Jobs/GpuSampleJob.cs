using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Leases;
using CfOrch.Core.Storage;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Writes one usage sample per GPU every 15 s for the History charts (used, committed, measured).</summary>
[DisallowConcurrentExecution]
public sealed class GpuSampleJob(GpuMonitor monitor, LeaseManager leases, IDbContextFactory<CfOrchDb> dbFactory, IOptions<CfOrchOptions> options, HistoryChanges changes, StorageHealth storage, TimeProvider time) : IJob
{
    public static readonly JobKey Key = new("gpu-sample", "cf-orch");
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var snapshot = monitor.Current;
        var accounts = leases.Accounts().ToDictionary(a => a.GpuIndex);
        var now = time.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        foreach (var gpu in snapshot.Gpus.Where(g => g.Error is null))
        {
            db.GpuSamples.Add(new GpuSample
            {
                NodeId = options.Value.NodeId,
                GpuIndex = gpu.Index,
                GpuName = gpu.Name,
                AtUnixMs = now.ToUnixTimeMilliseconds(),
                TotalMb = gpu.TotalMb,
                UsedMb = gpu.UsedMb,
                UtilizationPercent = gpu.UtilizationPercent,
                TemperatureC = gpu.TemperatureC,
                CommittedMb = accounts.TryGetValue(gpu.Index, out var account) ? account.CommittedMb : null,
                MeasuredMb = accounts.TryGetValue(gpu.Index, out var measured) ? measured.MeasuredMb : null,
            });
        }

        try
        {
            if (await db.SaveChangesAsync(cancellationToken) > 0)
            {
                changes.Notify();
                storage.WriteSucceeded(StorageHealth.Samples);
            }
        }
        catch (DbUpdateException ex)
        {
            // Disk full, read-only, I/O error: said once, loudly, by the storage health (not a stack trace every 15 s).
            storage.WriteFailed(ex.GetBaseException().Message, StorageHealth.Samples);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // cf-orch is stopping: the sample is not needed.
        }
    }
}
