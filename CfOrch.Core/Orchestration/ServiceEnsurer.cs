using CfOrch.Core.Adoption;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Ensure, the heart of allocate and start: a serving instance of the service — one already running (warm), one that
/// already runs outside cf-orch (adopted now), or one started from its spec (waiting until its health path answers).
/// </summary>
public sealed class ServiceEnsurer(ServiceLocks locks, InstanceRegistry registry, AdoptionService adoption, ServiceStarter starter)
{
    public async Task<EnsureResult> EnsureAsync(ServiceProfile profile, int? gpuIndex, string? model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var service = profile.Name;
        InstanceSnapshot starting;
        using (await locks.AcquireAsync(service, cancellationToken))
        {
            var existing = registry.ForService(service)
                .Where(i => i.IsActive && i.State != InstanceState.Stopping && (gpuIndex is null || i.Key.GpuIndex == gpuIndex))
                .OrderBy(i => i.State == InstanceState.Unhealthy)
                .ThenByDescending(i => i.IsServing)
                .FirstOrDefault();
            if (existing is { IsServing: true })
            {
                return new EnsureResult(existing, Started: false, Warm: true);
            }

            if (existing is { State: InstanceState.Unhealthy })
            {
                throw new OrchestrationException(OrchestrationError.StartFailed, $"{existing.Key} is unhealthy: {existing.Message}");
            }

            if (existing is { State: InstanceState.Starting })
            {
                starting = existing;
            }
            else
            {
                if (profile.Managed is { Adopt: true })
                {
                    adoption.Unrelease(service);
                    if (await adoption.CheckAsync(profile, cancellationToken, beforeStart: true) is { } adopted)
                    {
                        return new EnsureResult(adopted, Started: false, Warm: true);
                    }

                    // The periodic adoption pass may have adopted it meanwhile (the check then finds it tracked).
                    if (registry.ForService(service).FirstOrDefault(i => i is { IsServing: true, Origin: InstanceOrigin.Adopted } && (gpuIndex is null || i.Key.GpuIndex == gpuIndex)) is { } adoptedMeanwhile)
                    {
                        return new EnsureResult(adoptedMeanwhile, Started: false, Warm: true);
                    }
                }

                starting = await starter.StartNewAsync(profile, gpuIndex, model, cancellationToken);
            }
        }

        return new EnsureResult(await starter.WaitUntilServingAsync(starting, cancellationToken), Started: true, Warm: false);
    }
}
