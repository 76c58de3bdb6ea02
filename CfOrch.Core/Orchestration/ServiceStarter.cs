using CfOrch.Core.Configuration;
using CfOrch.Core.Health;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Starts a new instance of a service from its process spec (placed and leased by <see cref="GpuPlacer"/>) and waits
/// until it serves. A start that evicted less important services and then fails for good (no automatic restart will
/// try again) starts them again: a failed start leaves the GPU as it found it.
/// </summary>
public sealed class ServiceStarter(GpuPlacer placer, ServiceRuntimes runtimes, HealthMonitor health, InstanceRegistry registry, ProfileRegistry profiles, ServiceLocks locks, IOptions<CfOrchOptions> options)
{
    /// <summary>Places, leases and launches; the instance is Starting (or the start is refused with why). Call under the service's lock.</summary>
    public async Task<InstanceSnapshot> StartNewAsync(ServiceProfile profile, int? gpuIndex, string? model, CancellationToken cancellationToken, int restartNumber = 0)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (profile.Managed is null)
        {
            throw new OrchestrationException(OrchestrationError.NotStartable, $"service '{profile.Name}' has no managed block in profile '{profiles.Active.Profile.Name}': cf-orch keeps its budget but cannot start it");
        }

        if (runtimes.For(profile.Managed) is not { } runtime)
        {
            throw new OrchestrationException(OrchestrationError.NotStartable, $"service '{profile.Name}' is type: {profile.Managed.Type}, which cf-orch cannot start here");
        }

        // Before any lease is taken or anything evicted: nothing could start it now (no engine, no image). What was last
        // known is asked again first: the engine may have come back, the image been pulled since.
        if (runtime.Status.WhyNot(profile.Managed) is not null && (await runtime.RefreshStatusAsync(cancellationToken)).WhyNot(profile.Managed) is { } why)
        {
            throw new OrchestrationException(OrchestrationError.NotStartable, $"{profile.Name} cannot start: {why}");
        }

        var (gpu, leaseId, onGpu, evicted) = await placer.LeaseForStartAsync(profile, gpuIndex, cancellationToken);
        var instance = await runtime.StartAsync(new RuntimeStart(profile, gpu, onGpu, leaseId, model, restartNumber), cancellationToken);
        if (evicted.Count > 0)
        {
            var run = instance.Since;
            instance = registry.Update(instance.Key, i => i with { Displaced = evicted }, i => i.Since == run) ?? instance;
        }

        health.ProbeSoon(instance.Key);
        if (instance.State == InstanceState.Failed)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{profile.Name} cannot start: {instance.Message}{await AfterFailureAsync(profile, instance)}");
        }

        return instance;
    }

    /// <summary>
    /// Starts again what the start of <paramref name="undone"/> evicted (on this node), now that it is undone or failed:
    /// each displaced service that does not run again by now and is still in the profile, on its GPU, by the usual rules
    /// (as a start on request would) — launched, not waited for. Says what became of each.
    /// </summary>
    public Task<string> StartDisplacedAsync(InstanceSnapshot undone)
    {
        ArgumentNullException.ThrowIfNull(undone);
        return Displacement.StartAgainAsync(undone.Displaced, async displaced =>
        {
            var profile = ActiveServices.Get(profiles, displaced.Key.Service);
            using var held = await locks.AcquireAsync(profile.Name, CancellationToken.None);
            if (registry.ForService(profile.Name).Any(i => i.IsActive))
            {
                return false;
            }

            await StartNewAsync(profile, displaced.Key.GpuIndex, displaced.Model, CancellationToken.None);
            return true;
        });
    }

    /// <summary>
    /// After a start of <paramref name="profile"/> failed for good: what it evicted started again, said as the failure's
    /// last words ("" when it evicted nothing, or when <c>restart: on-failure</c> will try it again and needs the room).
    /// </summary>
    private async Task<string> AfterFailureAsync(ServiceProfile profile, InstanceSnapshot failed) =>
        Displacement.GivesRoomBack(profile, failed.Displaced) ? "; " + await StartDisplacedAsync(failed) : "";

    /// <summary>Waits until <paramref name="starting"/> serves; throws with why when it fails, is stopped first, or takes too long.</summary>
    public async Task<InstanceSnapshot> WaitUntilServingAsync(InstanceSnapshot starting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(starting);
        var limit = TimeSpan.FromSeconds(options.Value.Probes.StartTimeoutSeconds) + TimeSpan.FromSeconds(10);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        InstanceSnapshot done;
        try
        {
            done = await registry.WaitAsync(starting.Key, i => i.Since != starting.Since || i.State != InstanceState.Starting, cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{starting.Key} did not become ready within {limit.TotalSeconds:0} s");
        }

        return done switch
        {
            { IsServing: true } => done,
            { State: InstanceState.Stopping or InstanceState.Stopped } => throw new OrchestrationException(OrchestrationError.StartFailed,
                $"{starting.Service} was stopped before it was ready ({done.Message})"),
            _ => throw new OrchestrationException(OrchestrationError.StartFailed,
                $"{starting.Service} failed to start: {done.Message}{(done.ExitCode is { } code && done.Message?.Contains($"code {code}", StringComparison.Ordinal) != true ? $" (exit code {code})" : "")}"
                + (done.Since == starting.Since && profiles.Active.Profile.Services.GetValueOrDefault(starting.Service) is { } profile ? await AfterFailureAsync(profile, done) : "")),
        };
    }
}
