using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>The services of the active profile, as the engine looks them up.</summary>
public static class ActiveServices
{
    /// <summary>The service as the active profile defines it; throws <see cref="OrchestrationError.UnknownService"/>.</summary>
    public static ServiceProfile Get(ProfileRegistry profiles, string service)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        var active = profiles.Active.Profile;
        return active.Services.GetValueOrDefault(service)
            ?? throw new OrchestrationException(OrchestrationError.UnknownService,
                $"unknown service '{service}': profile '{active.Name}' has {string.Join(", ", active.Services.Keys.Order(StringComparer.Ordinal))}");
    }
}
