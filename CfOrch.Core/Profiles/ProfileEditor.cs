using CfOrch.Core.Instances;

namespace CfOrch.Core.Profiles;

/// <summary>What saving a profile's new text would do: it validates (or not), where it would be written, and what changes for the services.</summary>
public sealed record ProfilePreview(string Name, GpuProfile Profile, string Path, IReadOnlyList<ProfileChange> Changes);

/// <summary>
/// Editing a profile, the one operation the Profiles page and <c>PUT /api/profiles/{name}</c> share: preview (validate,
/// and what applying it would do to running services) and save (validate again, write atomically with a backup,
/// apply at once). Invalid text throws <see cref="ProfileException"/> with every error at its line and column.
/// </summary>
public sealed class ProfileEditor(ProfileRegistry registry, ProfileStore store, InstanceRegistry instances)
{
    /// <summary>Validates <paramref name="yaml"/> as the profile <paramref name="name"/>; writes nothing.</summary>
    public ProfilePreview Preview(string name, string yaml)
    {
        var next = ProfileStore.Validate(name, yaml);
        var active = registry.Active.Profile;
        var changes = active.Name == name ? ProfilePlan.Compare(active, next, instances.All) : [];
        return new ProfilePreview(name, next, store.TargetPath(name), changes);
    }

    /// <summary>Validates, writes and applies; nothing is written when the text is invalid.</summary>
    public SavedProfile Save(string name, string yaml) => store.Save(name, yaml);

    /// <summary>What using the profile <paramref name="name"/> instead of the active one would do to the services (nothing changes).</summary>
    public IReadOnlyList<ProfileChange> PreviewActivation(string name)
    {
        var next = registry.Find(name)?.Profile ?? throw new ArgumentException($"no valid profile is named '{name}'", nameof(name));
        return ProfilePlan.Compare(registry.Active.Profile, next, instances.All);
    }

    /// <summary>Uses the profile <paramref name="name"/> from now on and after restarts; returns what it did to the services.</summary>
    public IReadOnlyList<ProfileChange> Activate(string name)
    {
        var changes = PreviewActivation(name);
        registry.Activate(name);
        return changes;
    }
}
