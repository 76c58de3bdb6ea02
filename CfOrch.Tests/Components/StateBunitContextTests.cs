using Bunit;
using CfOrch.Core.Gpus;
using CfOrch.Web.Components.Pages;
using CfOrch.Web.Components.State;

namespace CfOrch.Tests.Components;

/// <summary>The state-only context itself: what a test publishes is on the page when Publish returns.</summary>
public sealed class StateBunitContextTests : StateBunitContext
{
    [Fact]
    public void Every_change_is_on_the_page_when_publish_returns_and_the_clock_moves_only_by_the_batch_windows_that_held_one_back()
    {
        UseProfile();
        SetGpus(Gpu("RTX 4090", 24576));
        var page = RenderAs<Dashboard>();
        var start = Time.GetUtcNow();

        for (var i = 1; i <= 5; i++)
        {
            SetGpus(Gpu("RTX 4090", 24576, processes: new GpuProcess(999, i * 100, "vllm")));
            Assert.Contains($"{i * 100:N0} MB of 24,576 MB used", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal);
        }

        // The first reading after the page subscribed goes out at once; each later one waits for the window after the last.
        Assert.Equal(4 * LiveState.BatchWindow, Time.GetUtcNow() - start);
    }
}
