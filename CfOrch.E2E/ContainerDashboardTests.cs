using System.Net;
using CfOrch.Tests.Runtimes;
using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>A container service from the dashboard, against a real Docker engine reached through a socket the test controls.</summary>
public sealed class ContainerDashboardTests(BrowserFixture browser) : IAsyncLifetime
{
    private IBrowserContext _context = null!;
    private IPage _page = null!;

    public async ValueTask InitializeAsync()
    {
        _context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 1000 }, ColorScheme = ColorScheme.Light });
        _page = await _context.NewPageAsync();
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();

    [Fact]
    public async Task A_container_starts_and_stops_from_the_dashboard_and_start_says_why_while_its_engine_is_away()
    {
        await DockerTestEngine.RequireAsync();
        var ct = TestContext.Current.CancellationToken;
        var socket = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-engine-{Guid.NewGuid():N}.sock");
        var name = DockerTestEngine.UniqueName("web");
        var port = StandIn.FreePort();
        var container = $"cf-orch-{name}-gpu0";
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(profile, "schema_version: 1\nname: e2e-containers\nvram_total_mb: 24576\neviction_timeout_s: 3\nservices:\n"
            + DockerTestEngine.Service(name, port, extra: "      init: true\n" + DockerTestEngine.Verbose), ct);
        var engine = new SocketForwarder(socket, "/var/run/docker.sock");
        try
        {
            var environment = AppProcess.SimulatedGpus();
            environment["CfOrch__Profile"] = profile;
            environment["CfOrch__Docker__Endpoint"] = $"unix://{socket}";
            environment["CfOrch__Docker__RetrySeconds"] = "0.5";
            await using var app = await AppProcess.StartAsync(environment, ct);
            await _page.GotoInteractiveAsync(new Uri(app.BaseAddress, "services"));
            var row = _page.GetByRole(AriaRole.Row).Filter(new() { Has = _page.Locator($"[data-service={name}]") });
            await Assertions.Expect(row).ToContainTextAsync("docker");

            await Assertions.Expect(row.GetByTestId("start")).ToBeEnabledAsync(new() { Timeout = 20_000 });
            await row.GetByTestId("start").ClickAsync();
            await _page.GetByRole(AriaRole.Button, new() { Name = "Start", Exact = true }).Last.ClickAsync();

            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running", new() { Timeout = 30_000 });
            await Assertions.Expect(row.GetByTestId("service-url")).ToHaveTextAsync($"http://127.0.0.1:{port}");
            using (var http = new HttpClient())
            using (var answer = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/health"), ct))
            {
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            Assert.NotNull(await DockerTestEngine.FindAsync(container));
            await _page.ScreenshotToAsync("services-container.png");

            // Its output (busybox logs each probe), live on the logs page.
            await row.GetByRole(AriaRole.Link, new() { Name = $"Logs of {name}" }).ClickAsync();
            await Assertions.Expect(_page.GetByTestId("log")).ToContainTextAsync("/health", new() { Timeout = 20_000 });
            await _page.GetByRole(AriaRole.Link, new() { Name = "Back to services" }).ClickAsync();

            await row.GetByTestId("stop").ClickAsync();
            await _page.GetByRole(AriaRole.Button, new() { Name = "Stop", Exact = true }).Last.ClickAsync();
            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "stopped", new() { Timeout = 20_000 });
            Assert.Null(await DockerTestEngine.FindAsync(container));

            // The engine goes away: Start is disabled with the reason; it comes back: Start is enabled again, no restart.
            engine.Dispose();
            await Assertions.Expect(row.GetByTestId("start")).ToBeDisabledAsync(new() { Timeout = 20_000 });
            await Assertions.Expect(row.GetByTestId("start-wrapper")).ToHaveAttributeAsync(
                "title", $"{name} is a container (type: docker), and Docker engine not reachable at unix://{socket}: no socket at {socket} (is dockerd running?).");
            await _page.ScreenshotToAsync("services-no-engine.png");

            engine = new SocketForwarder(socket, "/var/run/docker.sock");
            await Assertions.Expect(row.GetByTestId("start")).ToBeEnabledAsync(new() { Timeout = 20_000 });
        }
        finally
        {
            engine.Dispose();
            await DockerTestEngine.RemoveAsync(container);
            File.Delete(profile);
        }
    }
}
