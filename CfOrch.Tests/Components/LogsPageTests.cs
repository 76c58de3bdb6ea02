using Bunit;
using CfOrch.Core.Instances;
using CfOrch.Web.Components.Pages;

namespace CfOrch.Tests.Components;

/// <summary>The Logs page where there is no log to tail (its live tail is covered end to end with a real process).</summary>
public sealed class LogsPageTests : MudBunitContext
{
    private IRenderedComponent<Logs> Open(string service) =>
        RenderAs<Logs>(parameters: p => p.Add(c => c.Service, service));

    [Fact]
    public void A_service_without_an_instance_has_no_log()
    {
        UseTestProfile();

        Assert.Equal("whisper has no instance, so there is no log.", Open("whisper").Find("[data-testid=no-log]").TextContent.Trim());
    }

    [Fact]
    public void An_adopted_service_says_where_its_output_goes()
    {
        UseTestProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);

        var text = Open("ollama").Find("[data-testid=no-log]").TextContent;

        Assert.Contains("ollama runs outside cf-orch (adopted)", text, StringComparison.Ordinal);
        Assert.Contains("journalctl -u ollama", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_managed_instance_from_before_a_restart_has_no_log_in_this_run()
    {
        UseTestProfile();
        AddInstance("whisper", InstanceState.Stopped);

        Assert.Equal("whisper has no log in this run of cf-orch.", Open("whisper").Find("[data-testid=no-log]").TextContent.Trim());
    }
}
