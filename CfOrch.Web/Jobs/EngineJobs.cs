using CfOrch.Core.Adoption;
using CfOrch.Core.Health;
using CfOrch.Core.Measurement;
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

/// <summary>Starts the health probes that are due; each runs on its own with its own timeout.</summary>
[DisallowConcurrentExecution]
public sealed class HealthProbeJob(HealthMonitor health, IHostApplicationLifetime lifetime) : IJob
{
    public static readonly JobKey Key = new("health-probes", "cf-orch");
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        health.RunDueProbes(lifetime.ApplicationStopping);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Expires leases and allocations past their TTL and stops managed services that stayed idle too long.</summary>
[DisallowConcurrentExecution]
public sealed class SweepJob(Orchestrator orchestrator, IHostApplicationLifetime lifetime) : IJob
{
    public static readonly JobKey Key = new("ttl-and-idle-sweep", "cf-orch");
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await JobRun.UntilStoppingAsync(lifetime, orchestrator.SweepAsync);
}

/// <summary>Measures the VRAM every instance really uses (Ollama's /api/ps, NVML per process).</summary>
[DisallowConcurrentExecution]
public sealed class MeasurementJob(UsageMeter meter, IHostApplicationLifetime lifetime) : IJob
{
    public static readonly JobKey Key = new("measurement", "cf-orch");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await JobRun.UntilStoppingAsync(lifetime, meter.MeasureAllAsync);
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
