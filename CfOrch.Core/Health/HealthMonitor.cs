using System.Collections.Concurrent;
using CfOrch.Core.Changes;
using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Runtimes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Health;

/// <summary>
/// Probes every live instance on its own schedule: a starting one every 250 ms at first (backing off to 2 s) so
/// <c>running</c> is seen within a second of it being ready, a running one every <c>CfOrch:Probes:IntervalSeconds</c>.
/// Probes run concurrently, each with its own timeout: one hung endpoint never delays the others. <see cref="RunAsync"/>
/// sleeps until the next probe is due, or until an instance appears or changes: an idle cf-orch is not woken for nothing.
/// </summary>
public sealed partial class HealthMonitor(
    HealthProber prober,
    InstanceRegistry registry,
    InstanceLifecycle lifecycle,
    ServiceRuntimes runtimes,
    TimeProvider time,
    IOptions<CfOrchOptions> options,
    ILogger<HealthMonitor> logger)
{
    public static readonly TimeSpan FirstStartingDelay = TimeSpan.FromMilliseconds(250);
    public static readonly TimeSpan MaxStartingDelay = TimeSpan.FromSeconds(2);

    /// <summary>The shortest sleep between two passes (a probe that just came due is never chased in a busy loop).</summary>
    public static readonly TimeSpan MinimumGap = TimeSpan.FromMilliseconds(20);

    private readonly ConcurrentDictionary<InstanceKey, Schedule> _schedules = new();
    private readonly Wakeup _wakeup = new(time);

    /// <summary>
    /// Probes what is due, then sleeps until the next probe is due — or, with nothing to probe, until an instance is
    /// added or changes, or a probe finishes — until <paramref name="stopping"/>.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        registry.Changed += Wake;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                // Taken before the pass: a change during it wakes the next sleep at once.
                var armed = _wakeup.Arm();
                RunDueProbes(stopping);
                await _wakeup.SleepAsync(armed, NextDueIn() is { } due ? (due < MinimumGap ? MinimumGap : due) : null, stopping).ConfigureAwait(false);
            }
        }
        finally
        {
            registry.Changed -= Wake;
        }
    }

    /// <summary>The states whose instances are probed: starting, running, unhealthy, idle (not stopping, ended, or unknown).</summary>
    private static bool IsProbed(InstanceSnapshot instance) =>
        instance.State is InstanceState.Starting or InstanceState.Running or InstanceState.Unhealthy or InstanceState.Idle;

    private void Wake() => _wakeup.Wake();

    /// <summary>While <see cref="RunAsync"/> sleeps: until when (<see cref="DateTimeOffset.MaxValue"/>: until woken); null while it works.</summary>
    internal DateTimeOffset? SleepingUntil => _wakeup.SleepingUntil;

    /// <summary>How long until the next probe of a live instance is due (zero: one is due, or new); null when there is none to probe.</summary>
    public TimeSpan? NextDueIn()
    {
        var now = time.GetUtcNow().UtcTicks;
        long? soonest = null;
        foreach (var instance in registry.All)
        {
            if (!IsProbed(instance))
            {
                continue;
            }

            if (!_schedules.TryGetValue(instance.Key, out var schedule))
            {
                return TimeSpan.Zero;
            }

            // One in flight sets its next due time when it finishes, and wakes the loop then.
            if (Volatile.Read(ref schedule.InFlight) == 0)
            {
                var due = Volatile.Read(ref schedule.NextDueTicks) - now;
                soonest = soonest is { } s ? Math.Min(s, due) : due;
            }
        }

        return soonest is { } ticks ? TimeSpan.FromTicks(Math.Max(0, ticks)) : null;
    }

    /// <summary>Starts the probes that are due now and returns without waiting for them (they finish in the background).</summary>
    public int RunDueProbes(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var launched = 0;
        foreach (var instance in registry.All)
        {
            if (!IsProbed(instance))
            {
                _schedules.TryRemove(instance.Key, out _);
                continue;
            }

            var schedule = _schedules.GetOrAdd(instance.Key, _ => new Schedule());
            if (Volatile.Read(ref schedule.NextDueTicks) > now.UtcTicks || Interlocked.CompareExchange(ref schedule.InFlight, 1, 0) != 0)
            {
                continue;
            }

            launched++;
            _ = ProbeAsync(instance, schedule, cancellationToken);
        }

        return launched;
    }

    /// <summary>Probes every due instance and waits for the results (tests and the first check at start-up).</summary>
    public async Task ProbeDueAndWaitAsync(CancellationToken cancellationToken)
    {
        RunDueProbes(cancellationToken);
        foreach (var schedule in _schedules.Values)
        {
            if (schedule.Running is { } running)
            {
                await running.WaitAsync(cancellationToken);
            }
        }
    }

    /// <summary>Makes an instance's next probe due at once (just started, or asked for).</summary>
    public void ProbeSoon(InstanceKey key)
    {
        _schedules.AddOrUpdate(key, _ => new Schedule(), (_, s) =>
        {
            Volatile.Write(ref s.NextDueTicks, 0);
            return s;
        });
        Wake();
    }

    private async Task ProbeAsync(InstanceSnapshot probed, Schedule schedule, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        schedule.Running = done.Task;
        try
        {
            var o = options.Value.Probes;
            var outcome = await prober.ProbeAsync(probed.Url, probed.HealthPath, TimeSpan.FromSeconds(o.TimeoutSeconds), cancellationToken);
            var delay = Apply(probed, outcome);
            Volatile.Write(ref schedule.NextDueTicks, (time.GetUtcNow() + delay).UtcTicks);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            Volatile.Write(ref schedule.InFlight, 0);
            done.TrySetResult();
            Wake();
        }
    }

    /// <summary>Moves the instance through the state machine after a probe; returns when to probe it next.</summary>
    private TimeSpan Apply(InstanceSnapshot probed, ProbeOutcome outcome)
    {
        var o = options.Value;
        var interval = TimeSpan.FromSeconds(o.Probes.IntervalSeconds);
        var now = time.GetUtcNow();
        bool SameRun(InstanceSnapshot i) => i.Since == probed.Since && i.State is not (InstanceState.Stopping or InstanceState.Stopped or InstanceState.Failed);

        if (probed.State == InstanceState.Starting)
        {
            if (outcome.Ok)
            {
                var ready = lifecycle.Transition(probed.Key, InstanceState.Running, i => i with
                {
                    LastProbe = outcome,
                    ProbeAttempts = i.ProbeAttempts + 1,
                    ConsecutiveFailures = 0,
                    ReadyAt = now,
                    // A run re-attached after a restart of cf-orch was not started now: it keeps saying where it came from.
                    Message = i.Reattached ? i.Message : $"ready after {(now - i.Since).TotalSeconds:0.0} s ({i.ProbeAttempts + 1} probes)",
                }, i => SameRun(i) && i.State == InstanceState.Starting);
                if (ready is not null)
                {
                    LogReady(probed.Key, (now - probed.Since).TotalSeconds);
                }

                return interval;
            }

            var attempts = probed.ProbeAttempts + 1;
            if (now - probed.Since >= TimeSpan.FromSeconds(o.Probes.StartTimeoutSeconds))
            {
                var message = $"did not answer {probed.HealthPath} with 2xx within {o.Probes.StartTimeoutSeconds:0.#} s ({attempts} probes; last: {outcome.Error})";
                _ = GiveUpAsync(probed, message);
                return interval;
            }

            registry.Update(probed.Key, i => i with { LastProbe = outcome, ProbeAttempts = attempts }, SameRun);
            var backoff = FirstStartingDelay * Math.Pow(1.5, Math.Min(attempts - 1, 10));
            return backoff < MaxStartingDelay ? backoff : MaxStartingDelay;
        }

        if (outcome.Ok)
        {
            lifecycle.Transition(probed.Key, probed.State == InstanceState.Unhealthy ? InstanceState.Running : probed.State, i => i with
            {
                LastProbe = outcome,
                ConsecutiveFailures = 0,
                Message = i.State == InstanceState.Unhealthy ? $"answering {i.HealthPath} again" : i.Message,
            }, SameRun);
            return interval;
        }

        var failures = probed.ConsecutiveFailures + 1;
        if (probed.Origin == InstanceOrigin.Adopted && failures >= o.Adoption.LostAfter)
        {
            lifecycle.End(probed.Key, InstanceState.Stopped, HistoryKind.Lost, $"stopped answering {probed.HealthPath} ({outcome.Error}); its lease is released and it is adopted again when it answers", run: probed.Since);
            return interval;
        }

        var unhealthy = probed.Origin == InstanceOrigin.Managed && failures >= o.Probes.UnhealthyAfter;
        lifecycle.Transition(probed.Key, unhealthy ? InstanceState.Unhealthy : probed.State, i => i with
        {
            LastProbe = outcome,
            ConsecutiveFailures = failures,
            Message = unhealthy ? $"{failures} probes of {i.HealthPath} failed in a row: {outcome.Error}" : i.Message,
        }, SameRun);
        return interval;
    }

    private async Task GiveUpAsync(InstanceSnapshot probed, string message)
    {
        // Only this run, and only its own process: a newer run (or a handle of an older one) is left alone.
        var key = probed.Key;
        if (lifecycle.Transition(key, InstanceState.Stopping, i => i with { Message = message }, i => i.State == InstanceState.Starting && i.Since == probed.Since) is null)
        {
            return;
        }

        var runtime = runtimes.Of(key);
        if (runtime is not null)
        {
            await runtime.StopAsync(probed, TimeSpan.FromSeconds(5), CancellationToken.None);
        }

        var lines = runtime?.LastLines(probed, 20);
        lifecycle.End(key, InstanceState.Failed, HistoryKind.Stopped, message, lastLines: lines is { Count: > 0 } ? lines : null, run: probed.Since);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key} is running ({Seconds:0.0} s after start)")]
    private partial void LogReady(InstanceKey key, double seconds);

    private sealed class Schedule
    {
        public int InFlight;

        /// <summary>UTC ticks of the next due probe (a long, so it is read and written atomically).</summary>
        public long NextDueTicks;

        public Task? Running;
    }
}
