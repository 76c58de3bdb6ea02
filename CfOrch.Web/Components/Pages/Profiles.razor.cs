using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Components.State;
using DiffPlex.DiffBuilder;
using DiffPlex.DiffBuilder.Model;
using Microsoft.AspNetCore.Components;

namespace CfOrch.Web.Components.Pages;

/// <summary>
/// The profiles, and an editor for the selected one: validated as you type (markers at line and column), a diff
/// against the saved file, what saving would do to running services, then Save (atomic, backup, applied) or Revert.
/// </summary>
public sealed partial class Profiles : IDisposable
{
    private static readonly TimeSpan ValidateAfter = TimeSpan.FromMilliseconds(250);

    private LoadedProfile _selected = null!;
    private string _text = "";
    private IReadOnlyList<ProfileError> _errors = [];
    private IReadOnlyList<ProfileChange> _plan = [];
    private IReadOnlyList<DiffLine> _diff = [];
    private CancellationTokenSource? _pendingValidation;

    [Inject]
    private ProfileRegistry Registry { get; set; } = default!;

    [Inject]
    private ProfileEditor Editor { get; set; } = default!;

    [Inject]
    private CommandExecutor Commands { get; set; } = default!;

    [Inject]
    private TimeProvider Time { get; set; } = default!;

    [Inject]
    private MudBlazor.IDialogService Dialogs { get; set; } = default!;

    [Inject]
    private MudBlazor.ISnackbar Snackbar { get; set; } = default!;

    [CascadingParameter]
    private Access Access { get; set; } = new(false, false, null, null);

    private bool IsShipped => _selected.Origin == ProfileOrigin.Shipped;

    /// <summary>Every profile that loaded, then every file of yours that does not (openable, to fix it).</summary>
    private List<LoadedProfile> Rows => [.. Registry.Profiles, .. Registry.Broken.Where(b => !b.KeptLastGood).Select(b => b.AsLoaded())];

    /// <summary>The file of this row, when it does not load (never loaded, or broke on disk after it had).</summary>
    private BrokenProfile? BrokenOf(LoadedProfile profile) =>
        profile.Origin == ProfileOrigin.User ? Registry.Broken.FirstOrDefault(b => b.Source == profile.Source) : null;

    /// <summary>
    /// The profile as its file is now: a file that broke on disk after it loaded opens with its broken text (to be fixed
    /// there), not with the last good version cf-orch keeps using meanwhile; null when it is neither loaded nor broken.
    /// </summary>
    private LoadedProfile? OnDisk(string name, string source)
    {
        var loaded = Registry.Find(name);
        if (loaded is not null && BrokenOf(loaded) is { KeptLastGood: true } broken)
        {
            return loaded with { Yaml = broken.Yaml };
        }

        var neverLoaded = Registry.Broken.FirstOrDefault(b => b.Source == source && !b.KeptLastGood);
        return neverLoaded is not null && loaded?.Source != source ? neverLoaded.AsLoaded() : loaded;
    }

    private bool Dirty => Access.CanControl && !IsShipped && _text != _selected.Yaml;

    private string? SaveWhyNot =>
        !Access.CanControl ? Access.Reason
        : !Dirty ? "Nothing changed."
        : _errors.Count > 0 ? $"Fix the {_errors.Count} error{(_errors.Count == 1 ? "" : "s")} first."
        : Commands.IsRunning("profile") ? "Saving…"
        : null;

    protected override void OnInitialized()
    {
        Select(Registry.Active.Loaded);
        Registry.Changed += OnRegistryChanged;
        Commands.Changed += OnChanged;
    }

    private async Task SelectAsync(LoadedProfile profile)
    {
        if (profile.Name != _selected.Name && Dirty
            && await Dialogs.ShowMessageBoxAsync("Unsaved changes", $"Discard your unsaved changes to {_selected.Name}?", yesText: "Discard", cancelText: "Keep editing") != true)
        {
            return;
        }

        Select(profile);
    }

    private void Select(LoadedProfile profile)
    {
        profile = OnDisk(profile.Name, profile.Source) ?? profile;
        _selected = profile;
        _changedOnDisk = null;

        // Secrets in env are shown only to those who may control cf-orch (they could read them from the files anyway).
        _text = Access.CanControl ? profile.Yaml : ProfileSecrets.MaskYaml(profile.Yaml);
        _errors = [];
        _plan = [];
        _diff = [];
        if (BrokenOf(profile) is { } broken)
        {
            // A file that does not load opens with its errors at their lines, ready to be fixed.
            _errors = broken.Problem.Errors;
        }
    }

    private string RowClass(LoadedProfile p, int index) => p.Name == _selected.Name ? "cf-row-selected" : "";

    private void OnEdited(string text)
    {
        // Only those who may save make the server validate: a read-only visitor's edits (the editor refuses them, a
        // forged event too) cost nothing.
        if (!Access.CanControl || IsShipped)
        {
            return;
        }

        _text = text;
        _pendingValidation?.Cancel();
        _pendingValidation?.Dispose();
        var pending = _pendingValidation = new CancellationTokenSource();

        // Validate once typing pauses.
        _ = Task.Delay(ValidateAfter, Time, pending.Token).ContinueWith(
            t =>
            {
                if (!t.IsCanceled)
                {
                    _ = InvokeAsync(() =>
                    {
                        Validate();
                        StateHasChanged();
                    });
                }
            },
            TaskScheduler.Default);
    }

    /// <summary>Validates the text as the profile being edited, and works out the diff and what saving would do.</summary>
    public void Validate()
    {
        if (!Access.CanControl)
        {
            return;
        }

        try
        {
            _plan = Editor.Preview(_selected.Name, _text).Changes;
            _errors = [];
        }
        catch (ProfileException ex)
        {
            _errors = ex.Errors.Count > 0 ? ex.Errors : [new ProfileError(_selected.Name + ".yaml", 1, 1, "", ex.Message)];
            _plan = [];
        }

        _diff = InlineDiffBuilder.Diff(_selected.Yaml, _text).Lines
            .Where(l => l.Type is ChangeType.Inserted or ChangeType.Deleted or ChangeType.Modified)
            .Select(l => new DiffLine(l.Type == ChangeType.Deleted ? "- " + l.Text : "+ " + l.Text, l.Type == ChangeType.Deleted ? "cf-diff-removed" : "cf-diff-added"))
            .ToList();
    }

    // Revert loads the saved version: the one on disk now, if it was saved elsewhere meanwhile.
    private void Revert() => Select(_selected);

    /// <summary>Ctrl+S / Cmd+S: saves as the button does, or says why it cannot.</summary>
    private async Task SaveShortcutAsync()
    {
        Validate();
        var whyNot = IsShipped ? "shipped profiles are read-only; copy it to your profiles to change it." : SaveWhyNot;
        if (whyNot is null)
        {
            await SaveAsync();
        }
        else if (!Commands.IsRunning("profile"))
        {
            Snackbar.Add($"Not saved: {whyNot}", MudBlazor.Severity.Info);
        }
    }

    private async Task SaveAsync()
    {
        Validate();
        if (SaveWhyNot is not null)
        {
            return;
        }

        // Saved elsewhere (another tab, the API, an editor) since this page loaded it: saving would silently undo that.
        if (OnDisk(_selected.Name, _selected.Source) is { } current && current.Yaml != _selected.Yaml)
        {
            Snackbar.Add($"{_selected.Name} was changed elsewhere since you opened it. Copy your edit, press Revert to load the saved version, and make your change again.",
                MudBlazor.Severity.Error, o => o.RequireInteraction = true);
            return;
        }

        var plan = _plan.Count == 0 ? "No running service is affected." : string.Join(" ", _plan.Select(c => $"{c.Service}: {c.Description}."));
        var name = _selected.Name;
        var text = _text;
        var question = IsActive
            ? $"Save {name} and apply it now? {plan} The old file is kept as a backup."
            : $"Save {name}? It is not the profile in use, so no running service changes. The old file is kept as a backup.";
        await Commands.RunAsync(Access, "profile", question, _ =>
        {
            var saved = Editor.Save(name, text);
            return Task.FromResult($"Saved {saved.Path}{(saved.Backup is null ? "" : " (old version kept)")}; {(saved.Active ? "applied" : $"profile in use: {saved.ActiveProfile}")}.");
        }, "Save");
    }

    private async Task OnBeforeInternalNavigation(Microsoft.AspNetCore.Components.Routing.LocationChangingContext context)
    {
        if (Dirty && await Dialogs.ShowMessageBoxAsync("Unsaved changes", $"Leave this page and discard your unsaved changes to {_selected.Name}?", yesText: "Discard", cancelText: "Keep editing") != true)
        {
            context.PreventNavigation();
        }
    }

    /// <summary>Whether the profile open in the editor is the one in use.</summary>
    private bool IsActive => Registry.Active.Profile.Name == _selected.Name;

    private string? UseWhyNot =>
        !Access.CanControl ? Access.Reason
        : Dirty ? "Save or revert your edit first: Use this profile uses the saved file."
        : null;

    /// <summary>Uses the selected profile from now on, after showing what it does to the running services.</summary>
    private async Task UseAsync()
    {
        if (UseWhyNot is not null)
        {
            return;
        }

        var name = _selected.Name;
        var changes = Editor.PreviewActivation(name);
        var plan = changes.Count == 0 ? "No running service is affected." : string.Join(" ", changes.Select(c => $"{c.Service}: {c.Description}."));
        await Commands.RunAsync(Access, "profile", $"Use {name} instead of {Registry.Active.Profile.Name}? {plan} The choice is kept across restarts.", _ =>
        {
            Editor.Activate(name);
            return Task.FromResult($"Now using {name}.");
        }, "Use");
    }

    private async Task CopyAsync()
    {
        // The first free name: a second copy never replaces the first (which may hold your edits).
        var name = Enumerable.Range(1, 1000).Select(n => n == 1 ? $"{_selected.Name}-custom" : $"{_selected.Name}-custom-{n}")
            .First(n => Registry.Find(n) is null && !File.Exists(Path.Combine(Registry.ProfilesDir, n + ".yaml")) && !File.Exists(Path.Combine(Registry.ProfilesDir, n + ".yml")));
        var yaml = System.Text.RegularExpressions.Regex.Replace(_selected.Yaml, @"(?m)^name:\s*.*$", $"name: {name}");
        await Commands.RunAsync(Access, "profile", $"Copy {_selected.Name} to your profiles as {name}? To use it, open it and press Use this profile.", _ =>
        {
            var saved = Editor.Save(name, yaml);
            return Task.FromResult($"Copied to {saved.Path}.");
        }, "Copy");
        if (Registry.Find(name) is { } copy)
        {
            Select(copy);
        }
    }

    private void OnRegistryChanged() => _ = InvokeAsync(() =>
    {
        // After a save the saved text is the new baseline; without an edit, a new version on disk is shown at once; with
        // an unsaved edit, the new version is offered, never forced on it.
        if (OnDisk(_selected.Name, _selected.Source) is { } fresh && fresh.Yaml != _selected.Yaml)
        {
            if (fresh.Yaml == _text || !Dirty)
            {
                Select(fresh);
            }
            else
            {
                _changedOnDisk = fresh;
            }
        }

        StateHasChanged();
    });

    /// <summary>A newer version of the open profile (changed on disk or elsewhere) while this page holds an unsaved edit.</summary>
    private LoadedProfile? _changedOnDisk;

    private void LoadChanged()
    {
        if (_changedOnDisk is { } fresh)
        {
            Select(fresh);
        }
    }

    private void OnChanged() => _ = InvokeAsync(StateHasChanged);

    public void Dispose()
    {
        Registry.Changed -= OnRegistryChanged;
        Commands.Changed -= OnChanged;
        _pendingValidation?.Cancel();
        _pendingValidation?.Dispose();
    }

    private sealed record DiffLine(string Text, string Css);
}
