using Bunit;
using CfOrch.Core.Instances;
using CfOrch.Web.Components.Pages;
using MudBlazor;
using static CfOrch.Tests.Components.ServicesPageTests;

namespace CfOrch.Tests.Components;

/// <summary>The Services page over the engine: what the engine says before anyone asked it, and actions it carries out.</summary>
public sealed class ServicesPageEngineTests : EngineBunitContext
{
    [Fact]
    public void Every_service_of_the_profile_is_listed_and_those_not_running_can_be_started_when_they_fit()
    {
        UseTestProfile();

        var page = RenderAs<Services>();

        Assert.Equal("none of 4 services up", page.Find("[data-testid=services-summary]").TextContent);
        var whisper = Row(page, "whisper");
        Assert.Equal("not running", whisper.QuerySelector(".cf-state-chip")!.GetAttribute("data-state"));
        Assert.Null(WhyDisabled(whisper, "start"));
        Assert.Null(WhyDisabled(Row(page, "ollama"), "start"));
        // Nothing has asked the engine yet (no watch runs here): until it answers, a container cannot be started.
        Assert.Equal("vllm is a container (type: docker), and the Docker engine at unix:///var/run/docker.sock has not been reached yet.", WhyDisabled(Row(page, "vllm"), "start"));
        Assert.Equal("embeddings has no managed block: cf-orch keeps its budget but cannot start it.", WhyDisabled(Row(page, "embeddings"), "start"));
    }

    [Fact]
    public void A_crashed_instance_waiting_for_its_restart_counts_down_and_stop_cancels_the_restart()
    {
        UseTestProfile();
        var dialogs = Render<MudDialogProvider>();
        AddInstance("whisper", InstanceState.Failed, with: i => i with
        {
            ExitCode = 3,
            Message = "the process exited with code 3",
            PendingRestart = new PendingRestart(i.StateSince.AddSeconds(4), 2, 3),
        });
        var page = RenderAs<Services>();

        Assert.Equal("restart 2 of 3 in 4 s (restart: on-failure)", Row(page, "whisper").QuerySelector("[data-testid=pending-restart]")!.TextContent.Trim());
        Assert.Null(WhyDisabled(Row(page, "whisper"), "stop"));
        Assert.Null(Row(page, "whisper").QuerySelector("[data-testid=start]"));

        page.ClickOn($"[data-service=whisper] ~ td [data-testid=stop]");
        dialogs.WaitForAssertion(() => Assert.Contains("stopping cancels the restart", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Stop");

        page.WaitForAssertion(() => Assert.Null(Row(page, "whisper").QuerySelector("[data-testid=pending-restart]")));
        var row = Row(page, "whisper");
        Assert.Null(Instances.Get(new InstanceKey("whisper", "local", 0))!.PendingRestart);
        Assert.Contains("its restart was cancelled (stopped on request)", row.QuerySelector("[data-testid=failure]")!.TextContent, StringComparison.Ordinal);
        Assert.Null(WhyDisabled(row, "start"));
    }
}
