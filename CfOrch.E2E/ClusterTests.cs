using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>Two real cf-orch processes on loopback: a coordinator and an agent (<c>CfOrch:Role=agent</c>) with its own GPUs, profile and data.</summary>
public sealed class ClusterTests(BrowserFixture browser)
{
    private const string Token = "cluster-secret-0123456789abcdef";

    [Fact]
    public async Task An_agent_registers_is_polled_shown_on_the_dashboard_takes_control_only_with_the_token_and_goes_offline_when_killed()
    {
        var ct = TestContext.Current.CancellationToken;
        var whisperPort = StandIn.FreePort();
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-agent-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(profile, $"""
            schema_version: 1
            name: agent-rig
            vram_total_mb: 12288
            eviction_timeout_s: 3
            services:
              whisper:
                max_mb: 2000
                priority: 2
                managed:
                  type: process
                  exec_path: {StandIn.ExecutablePath}
                  args_template: service --port {'{'}port{'}'}
                  port: {whisperPort}
                  host_port: {whisperPort}
                  health_path: /health
            """, ct);
        try
        {
            var coordinatorEnvironment = AppProcess.SimulatedGpus();
            coordinatorEnvironment["CfOrch__Cluster__Token"] = Token;
            coordinatorEnvironment["CfOrch__Cluster__PollSeconds"] = "1";
            await using var coordinator = await AppProcess.StartAsync(coordinatorEnvironment, ct);
            var agent = await AppProcess.StartAsync(new Dictionary<string, string>
            {
                ["CfOrch__Role"] = "agent",
                ["CfOrch__Agent__Coordinator"] = coordinator.BaseAddress.ToString(),
                ["CfOrch__Agent__RegisterSeconds"] = "1",
                ["CfOrch__Cluster__Token"] = Token,
                ["CfOrch__NodeId"] = "heimdall",
                ["CfOrch__Profile"] = profile,
                ["CfOrch__Gpus__Mode"] = "simulated",
                ["CfOrch__Gpus__Simulated__0__Name"] = "RTX 3060",
                ["CfOrch__Gpus__Simulated__0__TotalMb"] = "12288",
            }, ct);
            await using var _ = agent;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

            // Registered and polled: online, with its GPU.
            var node = await UntilAsync(async () => Node(await http.GetStringAsync(new Uri(coordinator.BaseAddress, "api/nodes"), ct)) is { } n && n.GetProperty("online").GetBoolean() ? n : (JsonElement?)null, "the agent to be registered and online", ct);
            Assert.Equal(agent.BaseAddress.ToString().TrimEnd('/'), node.GetProperty("agent_url").GetString());
            Assert.Equal("RTX 3060", node.GetProperty("gpus")[0].GetProperty("name").GetString());

            // The coordinator's dashboard shows it.
            await using var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 900 } });
            var page = await context.NewPageAsync();
            await page.GotoInteractiveAsync(coordinator.BaseAddress);
            var card = page.Locator("[data-node=heimdall]");
            await Assertions.Expect(card.GetByTestId("node-state")).ToHaveTextAsync("online");
            await Assertions.Expect(card).ToContainTextAsync("RTX 3060");

            // The agent: reads are open; control only with the cluster token.
            var info = await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "gpu-info"), ct);
            Assert.Equal("heimdall", info.GetProperty("node_id").GetString());
            using (var local = await http.PostAsJsonAsync(new Uri(agent.BaseAddress, "services/whisper/start"), new { gpu_id = 0, @params = new { } }, ct))
            {
                // From loopback this machine's user would control it; through a proxy header it is a stranger.
                Assert.Equal(HttpStatusCode.OK, local.StatusCode);
            }

            using (var stop = await Send(http, HttpMethod.Post, new Uri(agent.BaseAddress, "services/whisper/stop"), null, forwarded: true, ct))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, stop.StatusCode);
                Assert.Equal("application/problem+json", stop.Content.Headers.ContentType?.MediaType);
            }

            using (var stop = await Send(http, HttpMethod.Post, new Uri(agent.BaseAddress, "services/whisper/stop"), Token, forwarded: true, ct))
            {
                Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
                var stopped = await stop.Content.ReadFromJsonAsync<JsonElement>(ct);
                Assert.True(stopped.GetProperty("stopped").GetBoolean());
            }

            using (var started = await Send(http, HttpMethod.Post, new Uri(agent.BaseAddress, "services/whisper/start"), Token, forwarded: true, ct, JsonContent.Create(new { gpu_id = 0, @params = new { } })))
            {
                Assert.Equal(HttpStatusCode.OK, started.StatusCode);
                var answer = await started.Content.ReadFromJsonAsync<JsonElement>(ct);
                Assert.Equal(("whisper", true, false), (answer.GetProperty("service").GetString(), answer.GetProperty("running").GetBoolean(), answer.GetProperty("adopted").GetBoolean()));
                Assert.EndsWith($":{whisperPort}", answer.GetProperty("url").GetString(), StringComparison.Ordinal);
            }

            var residents = await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "resident-info"), ct);
            Assert.Equal("whisper", residents.GetProperty("residents")[0].GetProperty("service").GetString());
            using (var stop = await Send(http, HttpMethod.Post, new Uri(agent.BaseAddress, "services/whisper/stop"), Token, forwarded: true, ct))
            {
                Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
            }

            await page.ScreenshotToAsync("dashboard-agent-online.png");

            // The agent dies: after two missed polls it is offline, greyed on the dashboard.
            await agent.SignalAndWaitAsync(kill: true, ct);
            await Assertions.Expect(card.GetByTestId("node-state")).ToHaveTextAsync("offline", new() { Timeout = 20_000 });
            Assert.Contains("cf-offline", await card.GetAttributeAsync("class") ?? "", StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(profile);
        }
    }

    private static JsonElement? Node(string json, string nodeId = "heimdall") =>
        JsonDocument.Parse(json).RootElement.GetProperty("nodes").EnumerateArray().Where(n => n.GetProperty("node_id").GetString() == nodeId).Select(n => (JsonElement?)n.Clone()).FirstOrDefault();

    private static async Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, Uri url, string? token, bool forwarded, CancellationToken ct, HttpContent? content = null)
    {
        using var request = new HttpRequestMessage(method, url) { Content = content };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (forwarded)
        {
            // As if it came from another machine: a forwarded request never counts as this machine's user.
            request.Headers.Add("X-Forwarded-For", "192.168.1.23");
        }

        return await http.SendAsync(request, ct);
    }

    private static async Task<JsonElement> UntilAsync(Func<Task<JsonElement?>> probe, string what, CancellationToken ct)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < until)
        {
            if (await probe() is { } found)
            {
                return found;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException($"waited 30 s for {what}");
    }
}
