using CfOrch.Core.Adoption;
using CfOrch.Core.Configuration;
using CfOrch.Core.Health;
using CfOrch.Core.Orchestration;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Adopts services that started running outside cf-orch, every <c>CfOrch:Adoption:IntervalSeconds</c> (0.5 s: an
/// Ollama that appears is adopted within a second). A plain timer, not a Quartz trigger: run twice a second, Quartz's
/// trigger bookkeeping cost more than the check itself (two system calls per adoptable port nobody listens on). While
/// there is nothing a pass could do (every adoptable service is tracked and holds its lease: the usual adopted Ollama)
/// it sleeps, and an instance or profile change wakes it; the next pass follows at once.
/// </summary>
public sealed partial class AdoptionLoop(AdoptionService adoption, IOptions<CfOrchOptions> options, TimeProvider time, ILogger<AdoptionLoop> logger) : BackgroundService
{
    private readonly Core.Changes.Wakeup _wakeup = new(time);

    /// <summary>Whether the loop sleeps until a change (nothing a pass could do), rather than waiting for its next pass.</summary>
    public bool Asleep => _wakeup.SleepingUntil == DateTimeOffset.MaxValue;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(
        async () =>
        {
            var interval = TimeSpan.FromSeconds(options.Value.Adoption.IntervalSeconds);
            Action wake = _wakeup.Wake;
            adoption.Changed += wake;
            try
            {
                // Start-up has just adopted what runs (EngineStartup), so the first periodic pass comes one interval later.
                await Task.Delay(interval, time, stoppingToken);
                while (true)
                {
                    var armed = _wakeup.Arm();
                    if (adoption.NothingToCheck)
                    {
                        await _wakeup.SleepAsync(armed, null, stoppingToken);
                        stoppingToken.ThrowIfCancellationRequested();
                        continue;
                    }

                    try
                    {
                        await adoption.CheckAllAsync(stoppingToken);
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
            finally
            {
                adoption.Changed -= wake;
            }
        },
        CancellationToken.None);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An adoption pass failed; the next one follows in its interval.")]
    private partial void LogPassFailed(Exception ex);
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
