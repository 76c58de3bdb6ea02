using CfOrch.Core.Gpus;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Reads the GPU inventory (NVML or simulated) every <c>CfOrch:Gpus:PollIntervalSeconds</c>.</summary>
[DisallowConcurrentExecution]
public sealed class GpuPollJob(GpuMonitor monitor) : IJob
{
    public static readonly JobKey Key = new("gpu-poll", "cf-orch");

    public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        monitor.Refresh();
        return ValueTask.CompletedTask;
    }
}
