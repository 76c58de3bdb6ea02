using CfOrch.Core.Gpus;
using CfOrch.Core.Measurement;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Reads the GPU inventory (NVML or simulated) every <c>CfOrch:Gpus:PollIntervalSeconds</c>, then measures the VRAM
/// every instance really uses (Ollama's /api/ps, NVML per process) against that reading: one wake-up, not two. A
/// measurement is bounded (an Ollama that does not answer costs at most <see cref="Core.Ollama.OllamaClient.PsTimeout"/>
/// before the next reading).
/// </summary>
[DisallowConcurrentExecution]
public sealed class GpuPollJob(GpuMonitor monitor, UsageMeter meter, IHostApplicationLifetime lifetime) : IJob
{
    public static readonly JobKey Key = new("gpu-poll", "cf-orch");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        monitor.Refresh();
        await JobRun.UntilStoppingAsync(lifetime, meter.MeasureAllAsync);
    }
}
