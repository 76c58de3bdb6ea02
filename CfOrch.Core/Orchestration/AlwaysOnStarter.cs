using CfOrch.Core.Adoption;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary><c>always_on</c>: the services cf-orch starts with itself and when a profile that adds them is applied.</summary>
public sealed class AlwaysOnStarter(ProfileRegistry profiles, InstanceRegistry registry, AdoptionService adoption, ServiceEnsurer ensurer, Runtimes.ServiceRuntimes runtimes)
{
    /// <summary>
    /// Starts the <c>always_on</c> services among <paramref name="services"/> (all of the active profile's when null) that
    /// have no active instance: each one adopted if it already runs, else started from its spec, one after another in
    /// priority order. A start that fails (a container whose engine does not answer, say) leaves its instance failed or
    /// the reason in the log; it does not stop the others. Returns what happened to
    /// each, for the log.
    /// </summary>
    public async Task<IReadOnlyList<string>> StartAsync(IReadOnlyCollection<string>? services, CancellationToken cancellationToken)
    {
        var outcomes = new List<string>();
        var wanted = profiles.Active.Profile.Services.Values
            .Where(s => s.AlwaysOn && (services is null || services.Contains(s.Name)))
            .OrderBy(s => s.Priority).ThenBy(s => s.Name, StringComparer.Ordinal);
        foreach (var service in wanted)
        {
            if (registry.ForService(service.Name).Any(i => i.IsActive))
            {
                continue;
            }

            if (service.Managed is null || runtimes.For(service.Managed) is null)
            {
                if (service.Managed is { Adopt: true } && await adoption.CheckAsync(service, cancellationToken) is not null)
                {
                    outcomes.Add($"{service.Name}: adopted (always_on)");
                    continue;
                }

                outcomes.Add(service.Managed is null
                    ? $"{service.Name}: always_on, but it has no managed block, so cf-orch cannot start it"
                    : $"{service.Name}: always_on, but cf-orch cannot start type: {service.Managed.Type} here");
                continue;
            }

            try
            {
                // The profile in use now: one applied while an earlier service was starting may have changed or removed it.
                var result = await ensurer.EnsureAsync(ActiveServices.Get(profiles, service.Name), null, null, cancellationToken);
                outcomes.Add($"{service.Name}: {(result.Started ? "started" : "adopted")} on GPU {result.Instance.Key.GpuIndex} (always_on)");
            }
            catch (OrchestrationException ex)
            {
                outcomes.Add($"{service.Name}: always_on, but it could not be started: {ex.Message}");
            }
        }

        return outcomes;
    }
}
