using System.Text.Json;
using CfOrch.Core.Instances;

namespace CfOrch.Core.Profiles;

public enum ProfileChangeKind
{
    Added,
    Removed,
    BudgetChanged,
    LaunchChanged,
    SettingsChanged,

    /// <summary>The service becomes <c>always_on</c> and is not running: applying the profile starts it.</summary>
    Starts,
}

/// <summary>One difference between the profile in use and a new version, and what it means for a running instance.</summary>
public sealed record ProfileChange(string Service, ProfileChangeKind Kind, string Description, bool AffectsRunningInstance);

/// <summary>What applying a new version of the active profile would do to the services (shown before a save).</summary>
public static class ProfilePlan
{
    public static IReadOnlyList<ProfileChange> Compare(GpuProfile current, GpuProfile next, IReadOnlyList<InstanceSnapshot> instances)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(instances);
        var running = instances.Where(i => i.IsActive).Select(i => i.Service).ToHashSet(StringComparer.Ordinal);
        var changes = new List<ProfileChange>();
        foreach (var (name, service) in next.Services.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var isRunning = running.Contains(name);
            var before = current.Services.GetValueOrDefault(name);
            var becomesAlwaysOn = service.AlwaysOn && !isRunning && before is not { AlwaysOn: true };
            if (before is null)
            {
                changes.Add(new ProfileChange(name, ProfileChangeKind.Added,
                    $"new service {name} ({service.MaxMb} MB, priority {service.Priority}){(becomesAlwaysOn ? "" : "; nothing starts until it is asked for")}", false));
            }

            if (becomesAlwaysOn)
            {
                changes.Add(new ProfileChange(name, ProfileChangeKind.Starts, service.Managed switch
                {
                    null => "always_on, but it has no managed block, so nothing can start it",
                    _ => $"always_on: {name} is started now",
                }, false));
            }

            if (before is null)
            {
                continue;
            }

            if (before.MaxMb != service.MaxMb)
            {
                changes.Add(new ProfileChange(name, ProfileChangeKind.BudgetChanged,
                    $"budget {before.MaxMb} → {service.MaxMb} MB{(isRunning ? "; it keeps its current lease until it is restarted" : "")}", isRunning));
            }

            if (Canonical(Launch(before.Managed)) != Canonical(Launch(service.Managed)))
            {
                changes.Add(new ProfileChange(name, ProfileChangeKind.LaunchChanged,
                    $"how it is launched or probed changes{(isRunning ? "; restart it to apply" : "")}", isRunning));
            }

            if (Canonical(before with { MaxMb = 0, Managed = null }) != Canonical(service with { MaxMb = 0, Managed = null })
                || Restart(before.Managed) != Restart(service.Managed))
            {
                changes.Add(new ProfileChange(name, ProfileChangeKind.SettingsChanged, "priority, idle stop, pinning, sharing or restart policy changes; applies at once", false));
            }
        }

        foreach (var name in current.Services.Keys.Where(n => !next.Services.ContainsKey(n)).Order(StringComparer.Ordinal))
        {
            var isRunning = running.Contains(name);
            changes.Add(new ProfileChange(name, ProfileChangeKind.Removed,
                isRunning ? $"{name} leaves the profile; it keeps running until you stop it" : $"{name} leaves the profile", isRunning));
        }

        return changes;
    }

    /// <summary>How it is launched and probed: the restart policy is read when a process exits, so it is not part of it.</summary>
    private static ManagedSpec? Launch(ManagedSpec? managed) =>
        managed is null ? null : managed with { Restart = RestartPolicy.Never, MaxRestarts = ManagedSpec.DefaultMaxRestarts };

    private static (RestartPolicy, int)? Restart(ManagedSpec? managed) => managed is null ? null : (managed.Restart, managed.MaxRestarts);

    /// <summary>Records hold lists and dictionaries, which compare by reference: compare their JSON instead.</summary>
    private static string Canonical(object? value) => value is null ? "null" : JsonSerializer.Serialize(value, value.GetType());
}
