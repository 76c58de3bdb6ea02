using System.Globalization;
using CfOrch.Core.Storage;

namespace CfOrch.Core.Profiles;

/// <summary>What saving a profile did.</summary>
public sealed record SavedProfile(string Name, string Path, string? Backup, bool Active, string ActiveProfile);

/// <summary>
/// Writes user profiles: validated first (nothing is written when the YAML has an error), then replaced atomically
/// (a temporary file renamed over the old one) with the old version kept in <c>{ProfilesDir}/.backups</c>, then applied
/// by reloading the registry — no restart.
/// </summary>
public sealed class ProfileStore(ProfileRegistry registry, TimeProvider time)
{
    public const int BackupsKept = 10;

    private int _backupsTightened;

    /// <summary>Validates and saves; throws <see cref="ProfileException"/> (with line/column errors) and changes nothing when invalid.</summary>
    public SavedProfile Save(string name, string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var target = TargetPath(name);
        var profile = Validate(name, yaml);

        // Profiles may hold secrets (tokens in env): what cf-orch writes is 0600, in 0700 directories it creates.
        var dir = System.IO.Path.GetDirectoryName(target)!;
        PrivateFiles.CreateDirectory(dir, tightenExisting: false);
        string? backup = null;
        if (File.Exists(target))
        {
            var backups = BackupsDir(registry.ProfilesDir);
            PrivateFiles.CreateDirectory(backups);
            if (Interlocked.Exchange(ref _backupsTightened, 1) == 0)
            {
                // Backups written before files were private (0644) become private too: once per run, not on every save.
                foreach (var older in Directory.EnumerateFiles(backups))
                {
                    PrivateFiles.TightenFile(older);
                }
            }
            backup = System.IO.Path.Combine(backups, string.Create(CultureInfo.InvariantCulture, $"{name}-{time.GetUtcNow():yyyyMMdd-HHmmss-fff}.yaml"));
            PrivateFiles.Copy(target, backup);
            Prune(backups, name);
        }

        var temporary = System.IO.Path.Combine(dir, $".{name}.{Guid.NewGuid():N}.tmp");
        try
        {
            PrivateFiles.WriteAllText(temporary, yaml);
            File.Move(temporary, target, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }

        registry.Reload();
        var active = registry.Active;
        return new SavedProfile(profile.Name, target, backup, active.Profile.Name == name, active.Profile.Name);
    }

    /// <summary>Parses the YAML as the profile <paramref name="name"/>; throws <see cref="ProfileException"/> when it is not one.</summary>
    public static GpuProfile Validate(string name, string yaml)
    {
        CheckName(name);
        var profile = ProfileParser.Parse(yaml, $"{name}.yaml");
        if (profile.Name != name)
        {
            throw new ProfileException([new ProfileError($"{name}.yaml", 1, 1, "name", $"the profile is named '{profile.Name}', but it is being saved as '{name}'")]);
        }

        return profile;
    }

    /// <summary>The file a save of <paramref name="name"/> writes: the user's own file of that profile, or a new one in the profiles directory.</summary>
    public string TargetPath(string name)
    {
        CheckName(name);
        var existing = registry.Find(name);
        return existing is { Origin: ProfileOrigin.User or ProfileOrigin.File }
            ? existing.Source
            : System.IO.Path.Combine(registry.ProfilesDir, name + ".yaml");
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || !ProfileParser.IsValidName(name))
        {
            throw new ProfileException($"'{name}' is not a profile name: letters, digits, '.', '_' and '-', starting with a letter or digit");
        }
    }

    private static void Prune(string backups, string name)
    {
        foreach (var old in BackupsOf(backups, name).SkipLast(BackupsKept))
        {
            File.Delete(old);
        }
    }

    /// <summary>
    /// The backups of <paramref name="name"/> (<c>{name}-yyyyMMdd-HHmmss-fff.yaml</c>), oldest first — not those of a
    /// profile whose name merely starts the same (<c>{name}-large</c>).
    /// </summary>
    public static IReadOnlyList<string> BackupsOf(string backups, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Directory.Exists(backups))
        {
            return [];
        }

        var pattern = new System.Text.RegularExpressions.Regex($@"\A{System.Text.RegularExpressions.Regex.Escape(name)}-\d{{8}}-\d{{6}}-\d{{3}}\.yaml\z");
        return Directory.EnumerateFiles(backups, $"{name}-*.yaml").Where(f => pattern.IsMatch(System.IO.Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Where the last version of <paramref name="name"/> that loaded is kept: what a start uses if the file breaks.</summary>
    public static string LastGoodPath(string profilesDir, string name) => System.IO.Path.Combine(BackupsDir(profilesDir), name + ".last-good.yaml");

    /// <summary>Where the backups of the profiles in <paramref name="profilesDir"/> are kept.</summary>
    public static string BackupsDir(string profilesDir) => System.IO.Path.Combine(profilesDir, ".backups");
}
