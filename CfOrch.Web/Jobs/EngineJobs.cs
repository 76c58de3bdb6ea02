using CfOrch.Core.Adoption;
using CfOrch.Core.Health;
using CfOrch.Core.Orchestration;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Adopts services that started running outside cf-orch (every <c>CfOrch:Adoption:IntervalSeconds</c>).</summary>
[DisallowConcurrentExecution]
public sealed class AdoptionJob(AdoptionService adoption, IHostApplicationLifetime lifetime) : IJob
{
    public static readonly JobKey Key = new("adoption", "cf-orch");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await JobRun.UntilStoppingAsync(lifetime, adoption.CheckAllAsync);
}

/// <summary>
/// Runs the health probes for the life of the app: each when it is due, each on its own with its own timeout; asleep
/// while nothing is due (not a timer: an idle cf-orch is woken by an instance that appears, not every 250 ms).
/// </summary>
public sealed class HealthProbeService(HealthMonitor health) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() => health.RunAsync(stoppingToken), CancellationToken.None);
}

/// <summary>
/// Expires leases and allocations past their TTL and stops managed services that stayed idle too long — when one is
/// due, not on a timer: asleep while nothing has a deadline.
/// </summary>
public sealed class SweepService(Orchestrator orchestrator) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() => orchestrator.RunSweepsAsync(stoppingToken), CancellationToken.None);
}

/// <summary>A job's work, cancelled when cf-orch stops: that cancellation is the end of the work, not a failure to log.</summary>
public static class JobRun
{
    public static async Task UntilStoppingAsync(IHostApplicationLifetime lifetime, Func<CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(lifetime);
        ArgumentNullException.ThrowIfNull(work);
        try
        {
            await work(lifetime.ApplicationStopping);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
        }
    }
}
