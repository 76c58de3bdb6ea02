using CfOrch.Core.Adoption;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Stops one instance: a managed one gets SIGTERM, a grace of the profile's eviction_timeout_s, then SIGKILL; an adopted
/// one is only released from tracking (its process keeps running). Used by stop on request, the idle sweep and eviction.
/// </summary>
public sealed partial class InstanceStopper(
    ServiceLocks locks,
    InstanceRegistry registry,
    InstanceLifecycle lifecycle,
    ServiceRuntimes runtimes,
    AdoptionService adoption,
    ProfileRegistry profiles,
    TimeProvider time,
    ILogger<InstanceStopper> logger)
{
    /// <summary>
    /// Stops one instance, recording <paramref name="kind"/> in the history. Serialised with starts of the same service
    /// (a stop never lands between a start's registration and its spawn). A stop, once begun, runs to its end even when
    /// the caller stops waiting: its process gets SIGTERM, the grace, SIGKILL, and the instance ends with its lease
    /// released — it never stays "stopping". <paramref name="onlyIf"/> is checked again once the stop may begin (the
    /// idle sweep stops only what is still idle). <paramref name="grace"/>: the wait between SIGTERM and SIGKILL, when not
    /// the profile's <c>eviction_timeout_s</c>.
    /// </summary>
    public async Task<StopOutcome> StopAsync(InstanceKey key, HistoryKind kind, string reason, CancellationToken cancellationToken, Func<InstanceSnapshot, bool>? onlyIf = null, TimeSpan? grace = null)
    {
        using var serviceLock = await locks.AcquireAsync(key.Service, cancellationToken);
        var instance = registry.Get(key) ?? throw new OrchestrationException(OrchestrationError.NotFound, $"no instance {key}");
        if (onlyIf is not null && !onlyIf(instance))
        {
            return new StopOutcome(instance, $"{key} is {instance.State.ToString().ToLowerInvariant()} now; left as it is");
        }

        if (instance.Origin == InstanceOrigin.Adopted)
        {
            adoption.Release(key.Service);
            var message = $"{reason}: cf-orch stopped tracking {key.Service} and released its lease; the service itself keeps running (it was started outside cf-orch)";
            var released = lifecycle.End(key, InstanceState.Stopped, HistoryKind.Released, message) ?? registry.Get(key)!;
            return new StopOutcome(released, message);
        }

        var run = instance.Since;
        if (lifecycle.Transition(key, InstanceState.Stopping, i => i with { Message = $"stopping: {reason}" }, i => i.IsActive && i.State != InstanceState.Stopping && i.Since == run) is null)
        {
            return new StopOutcome(registry.Get(key)!, $"{key} is already {registry.Get(key)!.State.ToString().ToLowerInvariant()}");
        }

        TimeSpan? took = null;
        try
        {
            if (runtimes.Of(key) is { } runtime)
            {
                var began = time.GetTimestamp();
                await runtime.StopAsync(instance, grace ?? TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS), CancellationToken.None);
                took = time.GetElapsedTime(began);
            }
        }
        finally
        {
            lifecycle.End(key, InstanceState.Stopped, kind, reason, run: run);
        }

        var stopped = registry.Get(key)!;
        LogStopped(key, reason);
        return new StopOutcome(stopped, $"{key.Service} stopped ({reason})") { StopTook = took };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key} stopped: {Reason}")]
    private partial void LogStopped(InstanceKey key, string reason);
}
