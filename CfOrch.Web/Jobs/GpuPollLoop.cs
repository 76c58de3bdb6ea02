using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Measurement;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Reads the GPU inventory (NVML or simulated) every <c>CfOrch:Gpus:PollIntervalSeconds</c>, then measures the VRAM
/// every instance really uses (Ollama's /api/ps, NVML per process) against that reading: one wake-up, not two. The
/// interval runs from the end of a pass, so passes never overlap; a measurement is bounded (an Ollama that does not
/// answer costs at most <see cref="Core.Ollama.OllamaClient.PsTimeout"/>). A plain loop, not a Quartz trigger: every
/// two seconds all day, the trigger's bookkeeping and hand-offs between threads cost about what the reading does.
/// </summary>
public sealed partial class GpuPollLoop(GpuMonitor monitor, UsageMeter meter, IOptions<CfOrchOptions> options, TimeProvider time, ILogger<GpuPollLoop> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(
        async () =>
        {
            var interval = TimeSpan.FromSeconds(options.Value.Gpus.PollIntervalSeconds);
            try
            {
                while (!stoppingToken.IsCancellationRequested)
                {
                    try
                    {
                        monitor.Refresh();
                        await meter.MeasureAllAsync(stoppingToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                    {
                        LogPassFailed(ex);
                    }

                    await Task.Delay(interval, time, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
        },
        CancellationToken.None);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the GPUs or measuring the services failed; the next pass follows in its interval.")]
    private partial void LogPassFailed(Exception ex);
}
