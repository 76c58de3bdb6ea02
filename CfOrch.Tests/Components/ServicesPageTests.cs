using AngleSharp.Dom;
using Bunit;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Web.Components.Controls;
using CfOrch.Web.Components.Pages;
using MudBlazor;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>What the Services page shows for the state it is given (the engine's own word and real actions: <see cref="ServicesPageEngineTests"/>).</summary>
public sealed class ServicesPageTests : StateBunitContext
{
    internal static IElement Row(IRenderedComponent<Services> page, string service) =>
        page.Find($"[data-testid=services-table] td[data-service='{service}']").ParentElement!;

    internal static IElement Button(IElement row, string testId) => row.QuerySelector($"[data-testid={testId}]")!;

    internal static string? WhyDisabled(IElement row, string testId) =>
        Button(row, testId).HasAttribute("disabled") ? row.QuerySelector($"[data-testid={testId}-wrapper]")!.GetAttribute("title") : null;

    [Fact]
    public void A_container_cannot_be_started_while_its_engine_does_not_answer_and_can_once_it_does()
    {
        UseProfile();
        const string why = "Docker engine not reachable at unix:///var/run/docker.sock: connection refused";
        Publish(new CfOrch.Core.Runtimes.RuntimeStatusChanged(new CfOrch.Core.Runtimes.RuntimeStatus("docker", false, why)));

        var page = RenderAs<Services>();

        Assert.Equal($"vllm is a container (type: docker), and {why}.", WhyDisabled(Row(page, "vllm"), "start"));
        Assert.Null(WhyDisabled(Row(page, "whisper"), "start"));

        Publish(new CfOrch.Core.Runtimes.RuntimeStatusChanged(CfOrch.Core.Runtimes.RuntimeStatus.Ready("docker")));

        Assert.Null(WhyDisabled(Row(page, "vllm"), "start"));
    }

    [Fact]
    public void A_probe_is_shown_for_what_runs_neutrally_while_starting_and_not_at_all_once_stopped()
    {
        UseProfile();
        var now = Time.GetUtcNow();
        AddInstance("whisper", InstanceState.Starting, with: i => i with { ProbeAttempts = 3, LastProbe = new ProbeOutcome(now, false, null, 0.5, "connection refused") });
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted, with: i => i with { LastProbe = new ProbeOutcome(now, true, 200, 4.2, null) });
        AddInstance("vllm", InstanceState.Stopped, with: i => i with { LastProbe = new ProbeOutcome(now, true, 200, 3, null) });

        var page = RenderAs<Services>();

        var waiting = Row(page, "whisper").QuerySelector("[data-testid=last-probe]")!;
        Assert.Equal("waiting for / (3 tries)", waiting.TextContent.Trim());
        Assert.DoesNotContain("cf-error-text", waiting.ClassName ?? "", StringComparison.Ordinal);
        Assert.Equal("ok 200 · 4.2 ms", Row(page, "ollama").QuerySelector("[data-testid=last-probe]")!.TextContent.Trim());
        Assert.Null(Row(page, "vllm").QuerySelector("[data-testid=last-probe]"));
        Assert.Null(Row(page, "vllm").QuerySelector("[data-testid=service-url]"));

        // On a phone a stopped service's empty cells are left out; a running one's are not.
        Assert.Equal(["URL", "Uptime", "Last probe"], Row(page, "vllm").QuerySelectorAll("td.cf-quiet-cell").Select(td => td.GetAttribute("data-label")));
        Assert.Empty(Row(page, "ollama").QuerySelectorAll("td.cf-quiet-cell"));
    }

    [Fact]
    public void The_models_an_ollama_has_loaded_are_on_its_row_with_the_time_until_they_unload_and_an_unload_action()
    {
        UseProfile();
        var now = Time.GetUtcNow();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted, with: i => i with
        {
            LoadedModels = [new LoadedModel("llama3.1:8b", 4915, now.AddMinutes(4)), new LoadedModel("nomic-embed-text", 300, null)],
        });
        var dialogs = Render<MudDialogProvider>();

        var page = RenderAs<Services>();

        var models = Row(page, "ollama").QuerySelectorAll("[data-testid=loaded-model]").Select(m => m.TextContent.Replace("\n", " ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, models.Count);
        Assert.Contains("llama3.1:8b · 4,915 MB", models[0], StringComparison.Ordinal);
        Assert.Contains("unloads in 4 min", models[0], StringComparison.Ordinal);
        Assert.Contains("nomic-embed-text · 300 MB · stays loaded", models[1], StringComparison.Ordinal);

        page.Find("[aria-label='Unload llama3.1:8b from ollama']").Click();
        Assert.Contains("Unload llama3.1:8b (4,915 MB) from ollama? It keeps running", dialogs.Markup, StringComparison.Ordinal);

        var readOnly = RenderAs<Services>(ReadOnly);
        Assert.All(Row(readOnly, "ollama").QuerySelectorAll("[data-testid=unload]"), b => Assert.True(b.HasAttribute("disabled")));
    }

    [Fact]
    public void A_row_a_link_points_at_is_marked_and_scrolled_to()
    {
        UseProfile();
        var scrolled = JSInterop.SetupVoid("cfOrch.scrollIntoView", _ => true);
        var navigation = Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>();
        navigation.NavigateTo("services?focus=whisper");

        var page = RenderAs<Services>();

        Assert.Contains("cf-row-focus", Row(page, "whisper").ClassName, StringComparison.Ordinal);
        Assert.DoesNotContain("cf-row-focus", Row(page, "ollama").ClassName, StringComparison.Ordinal);
        Assert.Equal("svc-whisper", Assert.Single(scrolled.Invocations).Arguments[0]);
    }

    [Fact]
    public void The_details_of_a_service_show_its_launch_masked_env_endpoint_and_last_output()
    {
        var history = new FixedHistory(
            new LeaseEventRecord(1_764_400_000_000, "granted", "l1", "local", 0, "whisper", "whisper", "managed", 3000, null, "3,000 MB for whisper", null),
            new LeaseEventRecord(1_764_400_000_000, "granted", "l2", "local", 0, "comfyui", "comfyui", "managed", 6000, null, "6,000 MB for comfyui", null));
        UseProfile(
            TestProfile.Replace("      health_path: /health\n", "      health_path: /health\n      env:\n        HF_TOKEN: hf_abcdefghijklmnop\n        LOG_LEVEL: debug\n", StringComparison.Ordinal),
            configure: services => services.AddSingleton<IHistoryReader>(history));
        var instance = AddInstance("whisper", InstanceState.Running, with: i => i with { LastLogLines = ["loading model", "listening on :9000"] });

        var page = RenderAs<Services>();
        page.Find("[aria-label='Details of whisper']").Click();

        Assert.NotEmpty(page.FindAll("[data-testid=service-details]"));
        var details = page.Find("[data-testid=service-details]");
        Assert.Contains("/usr/local/bin/whisper-server", details.QuerySelector("[data-testid=details-spec]")!.TextContent, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:9000/health", details.QuerySelector("[data-testid=details-spec]")!.TextContent, StringComparison.Ordinal);
        var env = details.QuerySelector("[data-testid=details-env]")!.TextContent;
        Assert.Contains("LOG_LEVEL", env, StringComparison.Ordinal);
        Assert.Contains("debug", env, StringComparison.Ordinal);
        Assert.DoesNotContain("hf_abcdefghijklmnop", env, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:11434", details.QuerySelector("[data-testid=details-url]")!.TextContent, StringComparison.Ordinal);
        Assert.Equal(instance.Service, details.GetAttribute("data-service"));

        // Its recent lease events (its own, not another service's) and its last lines of output.
        Assert.Contains("3,000 MB for whisper", page.Find("[data-testid=details-events]").TextContent, StringComparison.Ordinal);
        Assert.DoesNotContain("comfyui", page.Find("[data-testid=details-events]").TextContent, StringComparison.Ordinal);
        Assert.Equal("loading model\nlistening on :9000", page.Find("[data-testid=details-log]").TextContent);
    }

    [Fact]
    public void A_long_failure_is_cut_on_its_row_and_whole_on_hover_and_in_the_details()
    {
        UseProfile();
        var message = "cannot pull ghcr.io/example/whisper:1: Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io on 10.0.0.53:53: no such host " + new string('x', 200);
        AddInstance("whisper", InstanceState.Failed, with: i => i with { Message = message });

        var page = RenderAs<Services>();

        var failure = Row(page, "whisper").QuerySelector("[data-testid=failure]")!;
        Assert.Contains("cf-failure", failure.ClassName, StringComparison.Ordinal);
        Assert.Equal(message, failure.GetAttribute("title"));
        page.Find("[aria-label='Details of whisper']").Click();
        Assert.Equal(message, page.Find("[data-testid=details-failure]").TextContent);
    }

    /// <summary>A history of fixed events, filtered by service as the store filters them.</summary>
    private sealed class FixedHistory(params LeaseEventRecord[] events) : IHistoryReader
    {
        public event Action? Written { add { } remove { } }

        public Task<(int Total, IReadOnlyList<LeaseEventRecord> Events)> LeaseEventsAsync(HistoryFilter filter, int page, int pageSize, CancellationToken cancellationToken)
        {
            var matching = events.Where(e => filter.Service is null || e.Service == filter.Service || e.Holder == filter.Service).ToList();
            return Task.FromResult<(int, IReadOnlyList<LeaseEventRecord>)>((matching.Count, matching.Skip((page - 1) * pageSize).Take(pageSize).ToList()));
        }

        public Task<IReadOnlyList<GpuSampleRecord>> SamplesAsync(long sinceUnixMs, int? gpuIndex, long bucketMs, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<GpuSampleRecord>>([]);

        public Task<IReadOnlyList<string>> HoldersAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(events.Select(e => e.Holder).Distinct().ToList());
    }

    [Fact]
    public void A_url_is_kept_on_one_line_with_a_copy_button()
    {
        UseProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);

        var page = RenderAs<Services>();

        var url = Row(page, "ollama").QuerySelector("[data-testid=service-url]")!;
        Assert.Equal("http://127.0.0.1:11434", url.TextContent);
        Assert.Contains("cf-url-text", url.ClassName, StringComparison.Ordinal);
        Assert.Equal("Copy the URL of ollama", Row(page, "ollama").QuerySelector("[data-testid=copy-url]")!.GetAttribute("aria-label"));
    }

    [Fact]
    public void A_container_whose_image_is_being_pulled_shows_the_pull_on_its_row()
    {
        UseProfile();
        AddInstance("vllm", InstanceState.Starting, with: i => i with { Message = "pulling vllm/vllm-openai:latest: 3 of 7 layers, 1200 MB of 8400 MB" });

        var page = RenderAs<Services>();

        Assert.Equal("pulling vllm/vllm-openai:latest: 3 of 7 layers, 1200 MB of 8400 MB", Row(page, "vllm").QuerySelector("[data-testid=pull-progress]")!.TextContent);
        Assert.Null(Row(page, "vllm").QuerySelector("[data-testid=failure]"));
    }

    [Fact]
    public void A_service_that_does_not_fit_says_what_holds_the_gpu()
    {
        UseProfile();
        var gpu = Gpu();
        SetGpus([gpu], [Books(gpu, leasedMb: 6096, measuredMb: 3900, heldMb: 6096)]);
        AddLease("ollama", 4096, origin: HolderOrigin.Adopted, measuredMb: 3900);
        AddLease("notebook", 2000, priority: 1, origin: HolderOrigin.Client);

        var page = RenderAs<Services>();

        Assert.Equal(
            "No GPU has room for 3,000 MB: ollama 4,096 MB on GPU 0 (adopted, priority 1), notebook 2,000 MB on GPU 0 (client, priority 1).",
            WhyDisabled(Row(page, "whisper"), "start"));
    }

    [Fact]
    public void A_starting_instance_shows_for_how_long_and_how_many_probes()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Starting, with: i => i with { ProbeAttempts = 3 });
        Time.Advance(TimeSpan.FromSeconds(12));

        var page = RenderAs<Services>();

        var row = Row(page, "whisper");
        Assert.Equal("starting", row.QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));
        Assert.Equal("12 s · 3 probes", row.QuerySelector("[data-testid=starting-progress]")!.TextContent.Trim());
        Assert.NotNull(row.QuerySelector("[data-testid=stop]"));
        Assert.Null(row.QuerySelector("[data-testid=start]"));
    }

    [Fact]
    public void A_running_instance_shows_its_url_probe_measured_memory_and_uptime()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Running, budgetMb: 3000, with: i => i with
        {
            Url = "http://127.0.0.1:9000",
            MeasuredMb = 2100,
            LastProbe = new ProbeOutcome(i.Since, true, 200, 3.4, null),
        });
        Time.Advance(TimeSpan.FromMinutes(10));

        var page = RenderAs<Services>();

        var row = Row(page, "whisper");
        Assert.Equal("http://127.0.0.1:9000", row.QuerySelector("[data-testid=service-url]")!.TextContent);
        Assert.Equal("2,100 MB / 3,000 MB", row.QuerySelector("[data-testid=vram]")!.TextContent);
        Assert.Equal("ok 200 · 3.4 ms", row.QuerySelector("[data-testid=last-probe]")!.TextContent.Trim());
        Assert.Contains("10 min", row.TextContent, StringComparison.Ordinal);
        Assert.Null(WhyDisabled(row, "stop"));
        Assert.Contains("PID 4242", row.TextContent, StringComparison.Ordinal);
        Assert.Equal("1 of 4 services up: 1 running", page.Find("[data-testid=services-summary]").TextContent);
    }

    [Fact]
    public void An_unhealthy_instance_shows_the_failed_probe()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Unhealthy, with: i => i with
        {
            Message = "3 probes failed in a row",
            LastProbe = new ProbeOutcome(i.Since, false, 503, 12, "503 Service Unavailable"),
        });

        var page = RenderAs<Services>();

        var row = Row(page, "whisper");
        Assert.Equal("unhealthy", row.QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));
        Assert.Contains("mud-chip-color-error", row.QuerySelector(".cf-state-chip")!.ClassName, StringComparison.Ordinal);
        Assert.Contains("3 probes failed in a row", row.TextContent, StringComparison.Ordinal);
        var probe = row.QuerySelector("[data-testid=last-probe]")!;
        Assert.Equal("failed · 12 ms", probe.TextContent.Trim());
        Assert.StartsWith("503 Service Unavailable", probe.GetAttribute("title"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_instance_shows_its_exit_code_and_last_output_and_can_be_started_again()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Failed, with: i => i with
        {
            ExitCode = 2,
            Message = "exited before it answered its health probe",
            LastLogLines = ["loading model", "error: model file not found: /models/large-v3.bin"],
        });

        var page = RenderAs<Services>();

        var row = Row(page, "whisper");
        Assert.Equal("exit code 2 · exited before it answered its health probe", row.QuerySelector("[data-testid=failure]")!.TextContent.Trim());
        Assert.Equal("loading model\nerror: model file not found: /models/large-v3.bin", row.QuerySelector(".cf-log-excerpt")!.TextContent);
        Assert.Null(WhyDisabled(row, "start"));
        Assert.Contains("cf-row-failed", row.ClassName, StringComparison.Ordinal);
    }

    [Fact]
    public void A_service_restarted_after_a_crash_says_so()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Running, with: i => i with { RestartNumber = 2 });

        var page = RenderAs<Services>();

        Assert.Equal("restarted after a crash (2)", Row(page, "whisper").QuerySelector("[data-testid=restarted]")!.TextContent.Trim());
        Assert.Null(Row(page, "ollama").QuerySelector("[data-testid=restarted]"));
    }

    [Fact]
    public void A_stopped_instance_can_be_started_again()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Stopped, with: i => i with { Message = "stopped on request", Pid = 5151 });

        var page = RenderAs<Services>();

        var row = Row(page, "whisper");
        Assert.Equal("stopped", row.QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));
        Assert.Contains("stopped on request", row.TextContent, StringComparison.Ordinal);
        Assert.Contains("was PID 5151", row.TextContent, StringComparison.Ordinal);
        Assert.Null(WhyDisabled(row, "start"));
        Assert.Null(row.QuerySelector("[data-testid=service-url]"));
        Assert.Equal("none of 4 services up", page.Find("[data-testid=services-summary]").TextContent);
    }

    [Fact]
    public void An_adopted_instance_is_marked_as_running_outside_and_cannot_be_stopped_from_the_dashboard()
    {
        UseProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);

        var page = RenderAs<Services>();

        var row = Row(page, "ollama");
        Assert.Contains("running outside cf-orch", row.QuerySelector("[data-testid=adopted]")!.TextContent, StringComparison.Ordinal);
        Assert.StartsWith("ollama runs outside cf-orch (adopted): cf-orch never stops it.", WhyDisabled(row, "stop"), StringComparison.Ordinal);
        Assert.Null(row.QuerySelector("[aria-label='Logs of ollama']"));
    }

    [Fact]
    public void An_adopted_container_cannot_be_stopped_or_restarted_from_the_dashboard_and_says_to_use_docker_or_its_compose_project()
    {
        UseProfile();
        AddInstance("vllm", InstanceState.Running, InstanceOrigin.Adopted, with: i => i with { Container = "vllm-1" });

        var page = RenderAs<Services>();

        var row = Row(page, "vllm");
        const string why = "vllm runs outside cf-orch (adopted container vllm-1): cf-orch never stops it. Stop it where it was started: docker stop vllm-1, or docker compose stop in its compose project.";
        Assert.Equal(why, WhyDisabled(row, "stop"));
        Assert.True(Button(row, "restart").HasAttribute("disabled"));
        Assert.Equal(why, row.QuerySelector("[data-testid=restart]")!.ParentElement!.GetAttribute("title"));
        Assert.DoesNotContain("systemctl", why, StringComparison.Ordinal);
    }

    [Fact]
    public void An_adopted_container_whose_name_is_not_known_is_named_by_the_port_it_publishes()
    {
        UseProfile();
        AddInstance("vllm", InstanceState.Running, InstanceOrigin.Adopted);

        var page = RenderAs<Services>();

        Assert.Equal(
            "vllm runs outside cf-orch (an adopted container): cf-orch never stops it. Stop it where it was started: docker stop the container that publishes port 8000 (docker ps --filter publish=8000 names it), or docker compose stop in its compose project.",
            WhyDisabled(Row(page, "vllm"), "stop"));
    }

    [Fact]
    public void A_read_only_visitor_sees_every_action_disabled_with_the_reason()
    {
        UseProfile();
        AddInstance("whisper", InstanceState.Running);

        var page = RenderAs<Services>(ReadOnly);

        Assert.Equal(ReadOnly.Reason, WhyDisabled(Row(page, "whisper"), "stop"));
        Assert.Equal($"Stop whisper (not available: {ReadOnly.Reason})", Button(Row(page, "whisper"), "stop").GetAttribute("aria-label"));
        Assert.True(Button(Row(page, "whisper"), "restart").HasAttribute("disabled"));
        Assert.Equal(ReadOnly.Reason, WhyDisabled(Row(page, "ollama"), "start"));
        Assert.Equal(ReadOnly.Reason, WhyDisabled(Row(page, "vllm"), "start"));
    }

    [Fact]
    public void The_filter_narrows_the_rows_and_says_when_nothing_matches()
    {
        UseProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);

        var page = RenderAs<Services>();
        page.Find("input[data-testid=services-filter]").Input("adopted");

        Assert.Equal(["ollama"], page.FindAll("td[data-service]").Select(td => td.GetAttribute("data-service")));

        page.Find("input[data-testid=services-filter]").Input("nothing-like-this");
        Assert.Empty(page.FindAll("td[data-service]"));
        Assert.Contains("Nothing matches “nothing-like-this”.", page.Markup, StringComparison.Ordinal);
    }

    [Fact]
    public void A_profile_without_services_says_so()
    {
        UseProfile("schema_version: 1\nname: test\nvram_total_mb: 8192\nservices: {}\n");

        var page = RenderAs<Services>();

        Assert.Empty(page.FindAll("td[data-service]"));
        Assert.Contains("Profile test defines no services.", page.Markup, StringComparison.Ordinal);
    }

    [Fact]
    public void A_state_change_reaches_the_open_page()
    {
        UseProfile();
        var instance = AddInstance("whisper", InstanceState.Starting);
        var page = RenderAs<Services>();
        Assert.Equal("starting", Row(page, "whisper").QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));
        var actions = Actions(page, "whisper");

        Publish(new InstanceChanged(instance with { State = InstanceState.Running, ReadyAt = Time.GetUtcNow() }));

        Assert.Equal("running", Row(page, "whisper").QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));

        // The row is updated in place, not replaced (a click on it while it changes is not lost).
        Assert.Same(actions, Actions(page, "whisper"));
    }

    private static ServiceActions Actions(IRenderedComponent<Services> page, string service) =>
        page.FindComponents<ServiceActions>().Single(c => c.Instance.Row.Service == service).Instance;
}
