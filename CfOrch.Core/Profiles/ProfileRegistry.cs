using CfOrch.Core.Storage;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Profiles;

public enum ProfileOrigin
{
    /// <summary>Shipped with cf-orch (profiles/ in the repository, embedded in the app).</summary>
    Shipped,

    /// <summary>A file in <c>CfOrch:ProfilesDir</c>.</summary>
    User,

    /// <summary>The file <c>CfOrch:Profile</c> names.</summary>
    File,
}

/// <summary>A profile that loaded, with where it came from and its text.</summary>
public sealed record LoadedProfile(GpuProfile Profile, string Source, ProfileOrigin Origin, string Yaml)
{
    public string Name => Profile.Name;
}

/// <summary>A profile file that did not load; nothing of it is used.</summary>
public sealed record ProfileProblem(string Source, IReadOnlyList<ProfileError> Errors, string Consequence)
{
    public string Summary => $"{Source}: {Errors.Count} error{(Errors.Count == 1 ? "" : "s")}. {Consequence}";
}

/// <summary>The profile in use and, in words, why it was chosen.</summary>
/// <summary>
/// A profile file of yours that does not load: its name, where it is, its text on disk, and why. When it loaded before
/// (<paramref name="KeptLastGood"/>), the last good version stays in use under the same name and source, and this is the
/// broken text now on disk; otherwise the name is the file's.
/// </summary>
public sealed record BrokenProfile(string Name, string Source, string Yaml, ProfileProblem Problem, bool KeptLastGood = false)
{
    /// <summary>As a profile the editor can open: no services, the text on disk.</summary>
    public LoadedProfile AsLoaded() => new(new GpuProfile { SchemaVersion = GpuProfile.SupportedSchemaVersion, Name = Name }, Source, ProfileOrigin.User, Yaml);
}

public sealed record ActiveProfile(LoadedProfile Loaded, string Reason)
{
    public GpuProfile Profile => Loaded.Profile;
}

/// <summary>
/// Loads the shipped profiles and the user's, and picks the active one: <c>CfOrch:Profile</c> (a path or a name),
/// else auto-detection from GPU 0's memory. A broken file is reported and never replaces a good profile.
/// </summary>
public sealed partial class ProfileRegistry
{
    private const string ShippedPrefix = "profiles/";

    private static readonly (long MinMb, string Name)[] Thresholds =
    [
        (22000, "single-gpu-24gb"),
        (14000, "single-gpu-16gb"),
        (8000, "single-gpu-8gb"),
        (5500, "single-gpu-6gb"),
        (3500, "single-gpu-4gb"),
        (0, "single-gpu-2gb"),
    ];

    private readonly CfOrchOptions _options;
    private readonly GpuMonitor _gpus;
    private readonly ILogger<ProfileRegistry> _logger;
    private readonly Lock _lock = new();
    private State _state;

    public ProfileRegistry(IOptions<CfOrchOptions> options, GpuMonitor gpus, ILogger<ProfileRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _gpus = gpus;
        _logger = logger;
        _state = Build(previous: null);
        LogOutcome(_state);
    }

    public event Action? Changed;

    /// <summary>Every profile that loaded, by name (a user profile replaces a shipped one of the same name).</summary>
    public IReadOnlyList<LoadedProfile> Profiles => _state.Profiles.Values.OrderBy(p => p.Origin).ThenBy(p => p.Profile.VramTotalMb ?? 0).ThenBy(p => p.Name, StringComparer.Ordinal).ToArray();

    public IReadOnlyList<ProfileProblem> Problems => _state.Problems;

    public ActiveProfile Active => _state.Active;

    public string ProfilesDir => _options.ResolvedProfilesDir();

    public LoadedProfile? Find(string name) => _state.Profiles.GetValueOrDefault(name);

    /// <summary>
    /// Your profile files that do not load (and are not kept as a last good version under their own name): each with its
    /// text as it is on disk and its problem, so it can be opened and fixed in the editor.
    /// </summary>
    public IReadOnlyList<BrokenProfile> Broken => _state.Broken;

    /// <summary>The shipped profile a GPU of this size gets (the thresholds of cf-orch); no GPU means cpu-16gb.</summary>
    public static string AutoDetectName(IReadOnlyList<GpuInfo> gpus)
    {
        ArgumentNullException.ThrowIfNull(gpus);
        if (gpus.Count == 0 || gpus[0].TotalMb <= 0)
        {
            return "cpu-16gb";
        }

        return Thresholds.First(t => gpus[0].TotalMb >= t.MinMb).Name;
    }

    /// <summary>Reads every profile file again. Files that broke keep their last good version.</summary>
    public void Reload()
    {
        lock (_lock)
        {
            var next = Build(_state);
            Volatile.Write(ref _state, next);
            LogOutcome(next);
        }

        Changed?.Invoke();
    }

    /// <summary>The shipped profiles, straight from the assembly.</summary>
    public static IReadOnlyList<(string Source, string Yaml)> ShippedProfileTexts()
    {
        var assembly = typeof(ProfileRegistry).Assembly;
        var result = new List<(string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ShippedPrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            result.Add((resource, reader.ReadToEnd()));
        }

        return result;
    }

    private State Build(State? previous)
    {
        var profiles = new Dictionary<string, LoadedProfile>(StringComparer.Ordinal);
        var problems = new List<ProfileProblem>();

        foreach (var (source, yaml) in ShippedProfileTexts())
        {
            if (TryParse(yaml, source, ProfileOrigin.Shipped, problems, "This shipped profile is not available.") is { } loaded)
            {
                profiles[loaded.Name] = loaded;
            }
        }

        var dir = _options.ResolvedProfilesDir();
        if (Directory.Exists(dir))
        {
            var files = Directory.EnumerateFiles(dir, "*.yaml").Concat(Directory.EnumerateFiles(dir, "*.yml")).Order(StringComparer.Ordinal);
            foreach (var file in files)
            {
                var loaded = TryLoadFile(file, ProfileOrigin.User, problems, previous);
                if (loaded is null)
                {
                    continue;
                }

                if (profiles.TryGetValue(loaded.Name, out var existing) && existing.Origin == ProfileOrigin.User)
                {
                    problems.Add(new ProfileProblem(file, [new ProfileError(file, 1, 1, "name", $"the name '{loaded.Name}' is already used by {existing.Source}")], "This file is ignored."));
                    continue;
                }

                profiles[loaded.Name] = loaded;
            }
        }

        var active = ChooseActive(profiles, problems, previous);
        KeepLastGood(active.Loaded, problems);
        return new State(profiles, problems, active, FindBroken(profiles, problems));
    }

    /// <summary>Where the profile chosen on the dashboard (or with the API) is kept: it overrides <c>CfOrch:Profile</c> across restarts.</summary>
    public string ChoiceFile => Path.Combine(_options.ResolvedDataDir(), "active-profile");

    /// <summary>
    /// Uses <paramref name="name"/> from now on, and after restarts (kept in <see cref="ChoiceFile"/>): the services
    /// follow as a save of the active profile would make them. Throws <see cref="ArgumentException"/> for a name no
    /// valid profile has.
    /// </summary>
    public void Activate(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Find(name) is null || !ProfileParser.IsValidName(name))
        {
            throw new ArgumentException($"no valid profile is named '{name}'; known: {string.Join(", ", _state.Profiles.Keys.Order(StringComparer.Ordinal))}", nameof(name));
        }

        PrivateFiles.CreateDirectory(_options.ResolvedDataDir(), tightenExisting: false);
        var temporary = ChoiceFile + ".tmp";
        PrivateFiles.WriteAllText(temporary, name + "\n");
        File.Move(temporary, ChoiceFile, overwrite: true);
        Reload();
    }

    /// <summary>The name kept in <see cref="ChoiceFile"/>, or null when none is (or it cannot be read).</summary>
    private string? Chosen()
    {
        try
        {
            var text = File.Exists(ChoiceFile) ? File.ReadAllText(ChoiceFile).Trim() : null;
            return string.IsNullOrEmpty(text) ? null : text;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private ActiveProfile ChooseActive(Dictionary<string, LoadedProfile> profiles, List<ProfileProblem> problems, State? previous)
    {
        if (Chosen() is { } chosen)
        {
            if (profiles.TryGetValue(chosen, out var picked) && (UserFileNamed(chosen) is not { } ownFile || picked.Source == ownFile))
            {
                return new ActiveProfile(picked, $"chosen on the dashboard or with the API (kept in {ChoiceFile}; it overrides {(string.IsNullOrWhiteSpace(_options.Profile) ? "auto-detection" : "CfOrch:Profile")}).");
            }

            if (UserFileNamed(chosen) is { } broken)
            {
                // The chosen profile of yours is broken: its last good version, never another profile.
                return LastGoodOrNone(profiles, broken, chosen, ProfileOrigin.User);
            }

            problems.Add(new ProfileProblem(ChoiceFile, [new ProfileError(ChoiceFile, 1, 1, "", $"the profile chosen last, '{chosen}', is not there any more")],
                "The configured choice (CfOrch:Profile, or auto-detection) applies until another profile is chosen."));
        }

        var requested = _options.Profile?.Trim();
        if (!string.IsNullOrEmpty(requested))
        {
            if (LooksLikePath(requested))
            {
                var path = Path.GetFullPath(requested);
                var problemsBefore = problems.Count;
                var loaded = TryLoadFile(path, ProfileOrigin.File, problems, previous);
                if (loaded is not null)
                {
                    profiles[loaded.Name] = loaded;
                    var stale = problems.Count > problemsBefore;
                    return new ActiveProfile(loaded, stale
                        ? $"CfOrch:Profile names the file {path}, which is invalid now; the last good version of '{loaded.Name}' stays in use."
                        : $"CfOrch:Profile names the file {path}.");
                }

                // Its backups are kept under the profile's name: read it from the broken text when it is still there.
                return LastGoodOrNone(profiles, path, NameIn(path) ?? Path.GetFileNameWithoutExtension(path), ProfileOrigin.File);
            }
            else if (UserFileNamed(requested) is { } own && (!profiles.TryGetValue(requested, out var loadedOwn) || loadedOwn.Source != own))
            {
                // The user's own file of that name is broken: not the shipped profile it was meant to replace either.
                return LastGoodOrNone(profiles, own, requested, ProfileOrigin.User);
            }
            else if (profiles.TryGetValue(requested, out var byName))
            {
                return new ActiveProfile(byName, $"CfOrch:Profile names the profile '{requested}' ({byName.Source}).");
            }
            else
            {
                problems.Add(new ProfileProblem("CfOrch:Profile", [new ProfileError("CfOrch:Profile", 1, 1, "", $"no profile is named '{requested}'; known: {string.Join(", ", profiles.Keys.Order(StringComparer.Ordinal))}")],
                    "cf-orch runs no services until CfOrch:Profile names a profile that exists."));
                var none = NoServices(requested, "CfOrch:Profile", "");
                return new ActiveProfile(none, $"CfOrch:Profile names '{requested}', and no profile has that name: cf-orch runs no services (it never picks another profile on its own).");
            }
        }

        var gpus = _gpus.Current.Gpus;
        var name = AutoDetectName(gpus);
        var detected = profiles.GetValueOrDefault(name) ?? profiles.Values.OrderBy(p => p.Origin).First();
        var why = gpus.Count == 0 || gpus[0].TotalMb <= 0
            ? "auto-detected: no GPU"
            : $"auto-detected from GPU 0 ({gpus[0].Name}, {gpus[0].TotalMb} MB)";
        return new ActiveProfile(detected, $"{why}.");
    }

    private static LoadedProfile? TryLoadFile(string path, ProfileOrigin origin, List<ProfileProblem> problems, State? previous)
    {
        string yaml;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                problems.Add(new ProfileProblem(path, [new ProfileError(path, 1, 1, "", "file not found")], Consequence(origin)));
                return null;
            }

            if (info.Length > ProfileParser.MaxFileBytes)
            {
                problems.Add(new ProfileProblem(path, [new ProfileError(path, 1, 1, "", YamlLimits.TooLargeMessage)], Consequence(origin)));
                return null;
            }

            yaml = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add(new ProfileProblem(path, [new ProfileError(path, 1, 1, "", $"cannot read the file: {ex.Message}")], Consequence(origin)));
            return null;
        }

        var kept = previous?.Profiles.Values.FirstOrDefault(p => p.Source == path)
            ?? (previous?.Active.Loaded.Source == path ? previous.Active.Loaded : null);
        var consequence = kept is null ? Consequence(origin) : $"The last good version of '{kept.Name}' stays in use.";
        return TryParse(yaml, path, origin, problems, consequence) ?? kept;
    }

    private static LoadedProfile? TryParse(string yaml, string source, ProfileOrigin origin, List<ProfileProblem> problems, string consequence)
    {
        try
        {
            return new LoadedProfile(ProfileParser.Parse(yaml, source), source, origin, yaml);
        }
        catch (ProfileException ex)
        {
            problems.Add(new ProfileProblem(source, ex.Errors, consequence));
            return null;
        }
    }

    /// <summary>
    /// The profile asked for is broken at start-up: its last good version from <c>{ProfilesDir}/.backups</c> (the newest
    /// backup that parses), or — without one — no services at all, with the broken text in the editor to fix. Never
    /// another profile: that one might adopt or start services nobody asked it to manage.
    /// </summary>
    private ActiveProfile LastGoodOrNone(Dictionary<string, LoadedProfile> profiles, string source, string name, ProfileOrigin origin)
    {
        // The last version that loaded, then the backups of earlier saves, newest first.
        var candidates = new[] { ProfileStore.LastGoodPath(ProfilesDir, name) }.Where(File.Exists)
            .Concat(ProfileStore.BackupsOf(ProfileStore.BackupsDir(ProfilesDir), name).Reverse());
        foreach (var backup in candidates)
        {
            try
            {
                var yaml = File.ReadAllText(backup);
                var profile = ProfileParser.Parse(yaml, backup);
                if (profile.Name == name)
                {
                    var good = new LoadedProfile(profile, source, origin, yaml);
                    profiles[name] = good;
                    return new ActiveProfile(good, $"{source} is invalid (its errors are listed above); the last good version of '{name}', from the backup {backup}, is in use until it is fixed.");
                }
            }
            catch (Exception ex) when (ex is ProfileException or IOException or UnauthorizedAccessException)
            {
                // Not a good version: try an older one.
            }
        }

        string text;
        try
        {
            text = File.Exists(source) ? File.ReadAllText(source) : "";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            text = "";
        }

        var none = NoServices(name, source, text, origin);
        profiles[name] = none;
        return new ActiveProfile(none, $"{source} is invalid (its errors are listed above) and no earlier version of it was saved: cf-orch runs no services until it is fixed.");
    }

    /// <summary>
    /// Keeps a copy of the user's profile in use while it loads, so that a start after the file broke (an edit by hand, a
    /// bad save elsewhere) uses this very version — not only the one before the last save through cf-orch.
    /// </summary>
    private void KeepLastGood(LoadedProfile loaded, List<ProfileProblem> problems)
    {
        // A stand-in for a broken file (an earlier version, or no services with the broken text) comes with a problem
        // for that file: only a text that loaded as it is now is kept.
        if (loaded.Origin is not (ProfileOrigin.User or ProfileOrigin.File) || !ProfileParser.IsValidName(loaded.Name)
            || problems.Any(p => p.Source == loaded.Source))
        {
            return;
        }

        try
        {
            var path = ProfileStore.LastGoodPath(ProfilesDir, loaded.Name);
            if (!File.Exists(path) || File.ReadAllText(path) != loaded.Yaml)
            {
                Storage.PrivateFiles.CreateDirectory(Path.GetDirectoryName(path)!);
                Storage.PrivateFiles.WriteAllText(path, loaded.Yaml);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: without it, the backups of earlier saves are the fallback.
        }
    }

    /// <summary>A profile with no services, standing in for one that cannot be used (its text kept, to be fixed in the editor).</summary>
    private static LoadedProfile NoServices(string name, string source, string text, ProfileOrigin origin = ProfileOrigin.File) =>
        new(new GpuProfile { SchemaVersion = GpuProfile.SupportedSchemaVersion, Name = ProfileParser.IsValidName(name) ? name : "none" }, source, origin, text);

    private static readonly string[] ProfileExtensions = [".yaml", ".yml"];

    /// <summary>The <c>name:</c> a profile file gives itself, read as text (the file may not parse); null when there is none.</summary>
    private static string? NameIn(string path)
    {
        try
        {
            var match = NameLine().Match(File.Exists(path) ? File.ReadAllText(path) : "");
            return match.Success && ProfileParser.IsValidName(match.Groups[1].Value) ? match.Groups[1].Value : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("""(?m)^name:[ \t]*['"]?([A-Za-z0-9][A-Za-z0-9._-]{0,63})['"]?[ \t]*(?:#.*)?\r?$""")]
    private static partial System.Text.RegularExpressions.Regex NameLine();

    /// <summary>The user's file of profile <paramref name="name"/>: <c>{name}.yaml</c>, or another file whose text names it.</summary>
    private string? UserFileNamed(string name)
    {
        if (!ProfileParser.IsValidName(name) || !Directory.Exists(ProfilesDir))
        {
            return null;
        }

        return ProfileExtensions.Select(ext => Path.Combine(ProfilesDir, name + ext)).FirstOrDefault(File.Exists)
            ?? ProfileExtensions.SelectMany(ext => Directory.EnumerateFiles(ProfilesDir, "*" + ext)).Order(StringComparer.Ordinal)
                .FirstOrDefault(f => new FileInfo(f).Length <= ProfileParser.MaxFileBytes && NameIn(f) == name);
    }

    private static string Consequence(ProfileOrigin origin) => origin switch
    {
        ProfileOrigin.File => "It was not loaded.",
        _ => "This file is ignored.",
    };

    private static bool LooksLikePath(string value) =>
        value.Contains('/', StringComparison.Ordinal) || value.Contains('\\', StringComparison.Ordinal)
        || value.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || value.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);

    private void LogOutcome(State state)
    {
        foreach (var problem in state.Problems)
        {
            LogProblem(problem.Source, problem.Consequence, string.Join(Environment.NewLine, problem.Errors.Select(e => "  " + e)));
        }

        LogActive(state.Active.Profile.Name, state.Active.Loaded.Source, state.Active.Reason);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Profile {Source} is invalid. {Consequence}\n{Errors}")]
    private partial void LogProblem(string source, string consequence, string errors);

    [LoggerMessage(Level = LogLevel.Information, Message = "Using profile '{Name}' from {Source}: {Reason}")]
    private partial void LogActive(string name, string source, string reason);

    private sealed record State(IReadOnlyDictionary<string, LoadedProfile> Profiles, IReadOnlyList<ProfileProblem> Problems, ActiveProfile Active, IReadOnlyList<BrokenProfile> Broken);

    /// <summary>Read once per (re)load, with the rest: the dashboard asks for them on every render.</summary>
    private List<BrokenProfile> FindBroken(Dictionary<string, LoadedProfile> profiles, List<ProfileProblem> problems)
    {
        var dir = ProfilesDir;
        var broken = new List<BrokenProfile>();
        foreach (var problem in problems.Where(p => Path.GetDirectoryName(p.Source) == dir))
        {
            // A file that loaded before and broke on disk: its last good version is in use under the same source.
            var kept = profiles.Values.FirstOrDefault(l => l.Source == problem.Source);

            string text;
            try
            {
                var info = new FileInfo(problem.Source);
                text = info.Exists && info.Length <= ProfileParser.MaxFileBytes ? File.ReadAllText(problem.Source) : "";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                text = "";
            }

            broken.Add(kept is null
                ? new BrokenProfile(Path.GetFileNameWithoutExtension(problem.Source), problem.Source, text, problem)
                : new BrokenProfile(kept.Name, problem.Source, text, problem, KeptLastGood: true));
        }

        return broken;
    }
}
