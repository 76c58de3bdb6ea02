using System.Globalization;
using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Components.Controls;
using CfOrch.Web.Components.State;
using Microsoft.AspNetCore.Components;
using Microsoft.JSInterop;

namespace CfOrch.Web.Components.Pages;

public sealed partial class Services : LivePage
{
    private string? _filter;

    [Inject]
    private ProfileRegistry Profiles { get; set; } = default!;

    [Inject]
    private Orchestrator Orchestrator { get; set; } = default!;

    [Inject]
    private TimeProvider Time { get; set; } = default!;

    [Inject]
    private SecretFilter Secrets { get; set; } = default!;

    [Inject]
    private IJSRuntime JS { get; set; } = default!;

    [Inject]
    private MudBlazor.ISnackbar Snackbar { get; set; } = default!;

    [Inject]
    private CommandExecutor Commands { get; set; } = default!;

    private ServiceRowModel? _details;
    private bool _detailsOpen;

    private void OpenDetails(ServiceRowModel row)
    {
        _details = row;
        _detailsOpen = true;
    }

    private Task<bool> UnloadAsync(InstanceSnapshot instance, LoadedModel model) => Commands.RunAsync(Access, $"unload:{instance.Service}:{model.Name}",
        $"Unload {model.Name} ({VramSegment.Format(model.VramMb)}) from {instance.Service}? It keeps running and loads the model again on its next request.",
        ct => Orchestrator.UnloadModelAsync(instance.Service, instance.Key.GpuIndex, model.Name, "the dashboard", ct), "Unload");

    private async Task CopyAsync(string url)
    {
        var copied = await JS.InvokeAsync<bool>("cfOrch.copy", url);
        Snackbar.Add(copied ? $"Copied {url}" : "The browser did not allow copying (it needs https or localhost); select the URL instead.", copied ? MudBlazor.Severity.Normal : MudBlazor.Severity.Warning);
    }

    [CascadingParameter]
    private Access Access { get; set; } = new(false, false, null, null);

    /// <summary>A service's output (its last lines, the reason it failed) as this visitor may see it: secrets masked unless they may control cf-orch.</summary>
    private string Shown(string text) => Access.CanControl ? text : Secrets.Mask(text);

    private GpuProfile Profile => Profiles.Active.Profile;

    private DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>Every instance, and every service of the profile that has none (so it can be started).</summary>
    private List<ServiceRowModel> Rows
    {
        get
        {
            var instances = Live.Current.Instances;
            var rows = instances.Select(i => new ServiceRowModel(i.Service, i, Profile.Services.GetValueOrDefault(i.Service), Now)).ToList();
            rows.AddRange(Profile.Services.Values.Where(s => instances.All(i => i.Service != s.Name)).Select(s => new ServiceRowModel(s.Name, null, s, Now)));
            return rows;
        }
    }

    /// <summary>"2 of 4 services up: 1 running, 1 starting", or "none of 4 services up".</summary>
    private string Summary
    {
        get
        {
            var rows = Rows;
            var up = rows.Where(r => r.Instance?.IsActive == true).Select(r => r.Instance!.State).ToList();
            var total = $"{rows.Count} service{(rows.Count == 1 ? "" : "s")}";
            return up.Count == 0
                ? $"none of {total} up"
                : $"{up.Count} of {total} up: " + string.Join(", ", up.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
        }
    }

    /// <summary>The rows the filters let through: the node chosen (services not placed anywhere show under every node), then the text.</summary>
    private IEnumerable<ServiceRowModel> FilteredRows => Rows
        .Where(r => _node is null || r.Instance is null || r.Instance.Key.NodeId == _node)
        .Where(r => string.IsNullOrWhiteSpace(_filter) || r.SearchText.Contains(_filter.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>The node whose services are shown (null: every node).</summary>
    private string? _node;

    public static string Seconds(TimeSpan span) => span.TotalSeconds switch
    {
        < 0 => "0 s",
        < 90 => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0} s"),
        < 600 => string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes} min {span.Seconds} s"),
        < 5400 => string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0} min"),
        < 172800 => string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0.#} h"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{span.TotalDays:0.#} d"),
    };

    /// <summary>
    /// Cells that say nothing for a service that does not run (URL, uptime, probe): left out of the phone's stacked
    /// rows, so a stopped service takes a few lines, not a screen.
    /// </summary>
    private static string Quiet(ServiceRowModel row) => row.Instance is { IsActive: true } ? "" : "cf-quiet-cell";

    /// <summary>Not running and nothing to tell (not failed, not waiting for its node): one line on a phone.</summary>
    private static bool Compact(ServiceRowModel row) => row.Instance is null || row.Instance.State == InstanceState.Stopped;

    /// <summary>The service a link (a chip on the dashboard) points at: its row is marked and scrolled to.</summary>
    [SupplyParameterFromQuery]
    public string? Focus { get; set; }

    protected override async Task OnAfterRenderAsync(bool firstRender)
    {
        await base.OnAfterRenderAsync(firstRender);
        if (firstRender && !string.IsNullOrEmpty(Focus))
        {
            await JS.InvokeVoidAsync("cfOrch.scrollIntoView", $"svc-{Focus}");
        }
    }

    protected override void OnInitialized() => Profiles.Changed += OnProfilesChanged;

    protected override void Disposing() => Profiles.Changed -= OnProfilesChanged;

    private void OnProfilesChanged() => _ = InvokeAsync(StateHasChanged);
}
