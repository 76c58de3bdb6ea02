using System.Collections.Concurrent;
using System.Globalization;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// <c>restart: on-failure</c>: a managed process that exits without being asked to is started again on its GPU after a
/// back-off (1 s, 2 s, 4 s … at most 60 s), at most <c>max_restarts</c> times within <see cref="Window"/>; after that it
/// stays failed and says why. Starting it on request begins a new count; stopping the service cancels a restart that is
/// waiting. The policy is read from the active profile when the process exits, so a profile change applies at once.
/// It keeps all the state of crash restarts: what is scheduled, how many were done, and which stops cancel them.
/// </summary>
public sealed partial class CrashRestarter : IDisposable
{
    /// <summary>Restarts are counted over this sliding window: max_restarts crashes in it and the service stays down.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(10);

    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    private readonly ServiceRuntimes _runtimes;
    private readonly ServiceLocks _locks;
    private readonly ServiceStarter _starter;
    private readonly ProfileRegistry _profiles;
    private readonly InstanceRegistry _registry;
    private readonly TimeProvider _time;
    private readonly ILogger<CrashRestarter> _logger;
    private readonly Dictionary<string, List<DateTimeOffset>> _restarts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (DateTimeOffset At, int? Gpu)> _stopRequests = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposed = new();

    public CrashRestarter(ServiceRuntimes runtimes, ServiceLocks locks, ServiceStarter starter, ProfileRegistry profiles, InstanceRegistry registry, TimeProvider time, ILogger<CrashRestarter> logger)
    {
        _runtimes = runtimes;
        _locks = locks;
        _starter = starter;
        _profiles = profiles;
        _registry = registry;
        _time = time;
        _logger = logger;
        runtimes.Crashed += OnCrashed;
    }

    /// <summary>
    /// A stop of <paramref name="service"/> (on one GPU when given) was asked for: a restart scheduled for a crash just
    /// before it is cancelled, and so is one that is waiting now (those instances stay failed, and are returned).
    /// </summary>
    public async Task<IReadOnlyList<StopOutcome>> CancelForStopAsync(string service, int? gpuIndex, CancellationToken cancellationToken)
    {
        // A process may crash just before this stop and have its restart scheduled just after: the restart checks this.
        _stopRequests[service] = (_time.GetUtcNow(), gpuIndex);

        // A crashed instance waiting for its automatic restart: stopping the service means it stays down. Under the
        // service's lock, so a restart that is launching right now finishes first (and the stop then stops it).
        var outcomes = new List<StopOutcome>();
        if (_registry.ForService(service).Any(i => i.PendingRestart is not null))
        {
            using var serviceLock = await _locks.AcquireAsync(service, cancellationToken);
            foreach (var failed in _registry.ForService(service).Where(i => i.PendingRestart is not null && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)).ToList())
            {
                if (EndPendingRestart(failed, "its restart was cancelled (stopped on request)") is { } cancelled)
                {
                    outcomes.Add(new StopOutcome(cancelled, $"{service} on GPU {failed.Key.GpuIndex} will not be restarted (restart cancelled); it stays failed"));
                }
            }
        }

        return outcomes;
    }

    /// <summary>
    /// The restart that <c>restart: on-failure</c> scheduled for <paramref name="failed"/>: started on the same GPU with the
    /// same model, unless it was cancelled (the service was stopped), it was started again meanwhile, or the service runs
    /// elsewhere now; then null. Serialised with starts and stops of the service, like a start on request.
    /// </summary>
    public async Task<EnsureResult?> RestartCrashedAsync(InstanceSnapshot failed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(failed);
        InstanceSnapshot starting;
        using (await _locks.AcquireAsync(failed.Service, cancellationToken))
        {
            var current = _registry.Get(failed.Key);
            if (current is not { State: InstanceState.Failed, PendingRestart: { } pending } || current.Since != failed.Since)
            {
                return null;
            }

            string? skip = null;
            if (_stopRequests.TryGetValue(failed.Service, out var stop) && stop.At >= current.StateSince && (stop.Gpu is null || stop.Gpu == failed.Key.GpuIndex))
            {
                skip = "its restart was cancelled (stopped on request)";
            }
            else if (_registry.ForService(failed.Service).FirstOrDefault(i => i.IsActive) is { } other)
            {
                skip = $"not restarted: it runs again on GPU {other.Key.GpuIndex}";
            }

            if (skip is not null)
            {
                EndPendingRestart(failed, skip);
                return null;
            }

            try
            {
                starting = await _starter.StartNewAsync(ActiveServices.Get(_profiles, failed.Service), failed.Key.GpuIndex, failed.Model, cancellationToken, pending.Number);
            }
            catch (OrchestrationException ex)
            {
                // The launch did not happen (no room on its GPU, the executable is gone): it stays failed, and says why.
                EndPendingRestart(failed, $"restart {pending.Number} of {pending.Of} failed: {ex.Message}");
                throw;
            }
        }

        return new EnsureResult(await _starter.WaitUntilServingAsync(starting, cancellationToken), Started: true, Warm: false);
    }

    /// <summary>Clears the scheduled restart of <paramref name="failed"/> (that very run), noting why.</summary>
    public InstanceSnapshot? EndPendingRestart(InstanceSnapshot failed, string why)
    {
        ArgumentNullException.ThrowIfNull(failed);
        return _registry.Update(failed.Key, i => i with { PendingRestart = null, Message = $"{i.Message}; {why}" }, i => i.Since == failed.Since && i.PendingRestart is not null);
    }

    /// <summary>The back-off before restart <paramref name="number"/> (1-based): 1 s, 2 s, 4 s … at most <see cref="MaxBackoff"/>.</summary>
    public static TimeSpan Backoff(int number) => TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, Math.Min(number - 1, 30))));

    /// <summary>The service's process spec when the active profile gives it <c>restart: on-failure</c>; otherwise null.</summary>
    private ManagedSpec? OnFailureSpec(string service) =>
        _profiles.Active.Profile.Services.GetValueOrDefault(service)?.Managed is { Restart: RestartPolicy.OnFailure } spec ? spec : null;

    private void OnCrashed(InstanceSnapshot failed)
    {
        if (_disposed.IsCancellationRequested || OnFailureSpec(failed.Service) is not { } spec)
        {
            return;
        }

        var now = _time.GetUtcNow();
        int done;
        lock (_restarts)
        {
            // A run started on request (not by a restart) begins a new count: the user may have fixed something.
            if (!_restarts.TryGetValue(failed.Service, out var times) || failed.RestartNumber == 0)
            {
                _restarts[failed.Service] = times = [];
            }

            times.RemoveAll(t => now - t >= Window);
            done = times.Count;
            if (done < spec.MaxRestarts)
            {
                times.Add(now);
            }
        }

        if (done >= spec.MaxRestarts)
        {
            var why = string.Create(CultureInfo.InvariantCulture, $"it was restarted {done} times in the last {Window.TotalMinutes:0} minutes (max_restarts: {spec.MaxRestarts})");
            _registry.Update(failed.Key, i => i with { Message = $"{i.Message}; not restarted: {why}" }, i => i.Since == failed.Since && i.State == InstanceState.Failed);
            LogGaveUp(failed.Key, why);
            return;
        }

        var number = done + 1;
        var delay = Backoff(number);
        var pending = _registry.Update(
            failed.Key,
            i => i with { PendingRestart = new PendingRestart(now + delay, number, spec.MaxRestarts) },
            i => i.Since == failed.Since && i.State == InstanceState.Failed);
        if (pending is null)
        {
            return;
        }

        LogScheduled(failed.Key, number, spec.MaxRestarts, delay.TotalSeconds);
        _ = RestartLaterAsync(pending, delay);
    }

    private async Task RestartLaterAsync(InstanceSnapshot failed, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _disposed.Token);
            if (OnFailureSpec(failed.Service) is null)
            {
                EndPendingRestart(failed, "not restarted: the profile no longer says restart: on-failure");
                return;
            }

            if (await RestartCrashedAsync(failed, _disposed.Token) is { } restarted)
            {
                LogRestarted(restarted.Instance.Key, failed.PendingRestart!.Number, restarted.Instance.Pid);
            }
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            // cf-orch is shutting down: the restart does not happen, and the row must not promise it.
            EndPendingRestart(failed, "not restarted: cf-orch was shutting down");
        }
        catch (OrchestrationException ex)
        {
            // A restart that crashes again is counted by the next OnCrashed; one that cannot even start stays failed.
            LogRestartFailed(failed.Key, ex.Message);
        }
        catch (Exception ex)
        {
            // Nothing awaits this task: whatever went wrong is logged, and the row does not keep promising a restart.
            LogRestartFailed(failed.Key, ex.ToString());
            EndPendingRestart(failed, $"restart failed: {ex.Message}");
        }
    }

    /// <summary>No restart begins from now on (cf-orch is stopping); one that waits is dropped.</summary>
    public void Stop() => _disposed.Cancel();

    public void Dispose()
    {
        _runtimes.Crashed -= OnCrashed;
        // Cancelled, not disposed: a waiting restart may still read its token.
        _disposed.Cancel();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} crashed; restart {Number} of {Of} in {Seconds:0.#} s (restart: on-failure)")]
    private partial void LogScheduled(InstanceKey key, int number, int of, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key} restarted (restart {Number}) as PID {Pid}")]
    private partial void LogRestarted(InstanceKey key, int number, int? pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} could not be restarted: {Message}")]
    private partial void LogRestartFailed(InstanceKey key, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Key} crashed again and is not restarted: {Why}")]
    private partial void LogGaveUp(InstanceKey key, string why);
}
