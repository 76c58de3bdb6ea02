using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>An open dashboard outlives a restart of cf-orch: it reconnects and shows the new process's state.</summary>
public sealed class ReconnectTests(BrowserFixture browser)
{
    [Fact]
    public async Task A_page_whose_server_restarted_reconnects_and_shows_fresh_state()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = StandIn.FreePort();
        var before = AppProcess.SimulatedGpus();
        before["CfOrch__Gpus__Simulated__0__Name"] = "GPU before the restart";
        await using var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        var page = await context.NewPageAsync();

        var first = await AppProcess.StartAsync(before, ct, port);
        try
        {
            await page.GotoInteractiveAsync(first.BaseAddress);
            await Assertions.Expect(page.GetByTestId("gpu-card").First).ToContainTextAsync("GPU before the restart");
        }
        finally
        {
            await first.DisposeAsync();
        }

        var after = AppProcess.SimulatedGpus();
        after["CfOrch__Gpus__Simulated__0__Name"] = "GPU after the restart";
        await using var second = await AppProcess.StartAsync(after, ct, port);

        // The old circuit is gone: the page reconnects, is refused, and loads again from the new process.
        await Assertions.Expect(page.GetByTestId("gpu-card").First).ToContainTextAsync("GPU after the restart", new() { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#components-reconnect-modal[open]")).ToHaveCountAsync(0);
    }
}
