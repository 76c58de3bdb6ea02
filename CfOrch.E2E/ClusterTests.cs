using System.Diagnostics;
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
        await File.WriteAllTextAsync(profile, Profile("agent-rig", StandInService("whisper", 2000, 2, whisperPort)), ct);
        try
        {
            var coordinatorEnvironment = AppProcess.SimulatedGpus();
            coordinatorEnvironment["CfOrch__Cluster__Token"] = Token;
            coordinatorEnvironment["CfOrch__Cluster__PollSeconds"] = "1";
            await using var coordinator = await AppProcess.StartAsync(coordinatorEnvironment, ct);
            var agent = await AppProcess.StartAsync(Agent(coordinator, profile, "RTX 3060", 12288), ct);
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
                Assert.True(local.StatusCode == HttpStatusCode.OK, $"{(int)local.StatusCode}: {await local.Content.ReadAsStringAsync(ct)}");
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

    [Fact]
    public async Task A_service_that_does_not_fit_here_is_placed_on_the_agent_with_room_evicts_and_stops_there_and_is_unknown_until_the_agent_is_back()
    {
        var ct = TestContext.Current.CancellationToken;
        var llmPort = StandIn.FreePort();
        var comfyPort = StandIn.FreePort();
        var services = StandInService("llm", 16000, 2, llmPort) + StandInService("comfyui", 10000, 4, comfyPort);
        var coordinatorProfile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-coordinator-{Guid.NewGuid():N}.yaml");
        var agentProfile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-agent-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(coordinatorProfile, Profile("small-rig", services), ct);
        await File.WriteAllTextAsync(agentProfile, Profile("big-rig", services), ct);
        try
        {
            await using var coordinator = await AppProcess.StartAsync(new Dictionary<string, string>(Coordinator(coordinatorProfile)) { ["CfOrch__NodeId"] = "tower" }, ct);
            var agent = await AppProcess.StartAsync(Agent(coordinator, agentProfile, "RTX 4090", 24576), ct);
            await using var _ = agent;
            using var http = new HttpClient { BaseAddress = coordinator.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            await UntilAsync(async () => Node(await http.GetStringAsync(new Uri("api/nodes", UriKind.Relative), ct)) is { } n && n.GetProperty("online").GetBoolean() ? n : null, "the agent to be online", ct);

            // A pinned node is honoured (10 GB does not fit this 8 GB card, and is not sent elsewhere), an unknown one refused.
            using (var pinned = await http.PostAsJsonAsync(new Uri("api/services/comfyui/start", UriKind.Relative), new { node_id = "tower" }, ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, pinned.StatusCode);
                Assert.Contains("on GPU 0 (RTX 3070)", (await pinned.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            using (var unknownNode = await http.PostAsJsonAsync(new Uri("api/services/comfyui/start", UriKind.Relative), new { node_id = "nas" }, ct))
            {
                Assert.Equal(HttpStatusCode.UnprocessableEntity, unknownNode.StatusCode);
                Assert.Contains("unknown node_id 'nas': this cf-orch is node 'tower', and knows heimdall", (await unknownNode.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // 16 GB does not fit the coordinator's 8 GB card: the allocation goes to the agent's 24 GB one, started there.
            using (var allocated = await http.PostAsJsonAsync(new Uri("api/services/llm/allocate", UriKind.Relative), new { model_candidates = new[] { "m" }, caller = "e2e" }, ct))
            {
                var answer = await allocated.Content.ReadFromJsonAsync<JsonElement>(ct);
                Assert.True(allocated.StatusCode == HttpStatusCode.OK, answer.ToString());
                Assert.Equal(("heimdall", 0, true), (answer.GetProperty("node_id").GetString(), answer.GetProperty("gpu_id").GetInt32(), answer.GetProperty("started").GetBoolean()));
                Assert.Equal($"http://127.0.0.1:{llmPort}", answer.GetProperty("url").GetString());
            }

            Assert.Contains("llm", (await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "services"), ct)).GetProperty("running").EnumerateArray().Select(r => r.GetString()));
            var lease = await LeaseOf(http, "llm", ct);
            Assert.Equal(("heimdall", 16000L), (lease.GetProperty("node_id").GetString(), lease.GetProperty("mb_granted").GetInt64()));

            // Leases on the agent's GPU are decided by the same rule: what is left there is 8,576 MB.
            using (var tooBig = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "heimdall", gpu_id = 0, mb = 10000, service = "batch" }, ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, tooBig.StatusCode);
                Assert.Contains("Insufficient VRAM on GPU 0 of heimdall", (await tooBig.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            using (var fits = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "heimdall", gpu_id = 0, mb = 4000, service = "batch" }, ct))
            {
                Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
                var id = (await fits.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("lease").GetProperty("lease_id").GetString();
                using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative), ct);
                Assert.Equal(HttpStatusCode.OK, released.StatusCode);
            }

            // The coordinator's dashboard lists it with its node.
            await using var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 900 } });
            var page = await context.NewPageAsync();
            await page.GotoInteractiveAsync(new Uri(coordinator.BaseAddress, "services"));
            var row = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.Locator("[data-service=llm]") });
            await Assertions.Expect(row.Locator("[data-service=llm]")).ToContainTextAsync("GPU 0 · m");
            await Assertions.Expect(row.GetByTestId("service-node")).ToHaveTextAsync("heimdall");
            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running");
            await Assertions.Expect(row.GetByTestId("last-probe")).ToHaveTextAsync("by heimdall's agent");
            await page.ScreenshotToAsync("services-two-nodes.png");

            // Its card on the dashboard says what this coordinator holds there; the Leases page has the node's books.
            var other = await context.NewPageAsync();
            await other.GotoInteractiveAsync(coordinator.BaseAddress);
            await Assertions.Expect(other.Locator("[data-node=heimdall] [data-testid=node-gpu-leased]")).ToHaveTextAsync("16,000 MB leased (llm) · 8,576 MB available to new leases");
            await other.ScreenshotToAsync("dashboard-two-nodes.png");
            await other.GotoInteractiveAsync(new Uri(coordinator.BaseAddress, "leases"));
            var books = other.GetByTestId("capacity-table").GetByRole(AriaRole.Row).Filter(new() { HasText = "heimdall" });
            await Assertions.Expect(books).ToContainTextAsync("16,000 MB");
            await Assertions.Expect(books).ToContainTextAsync("8,576 MB");
            await Assertions.Expect(other.GetByTestId("leases-table").GetByTestId("lease-node")).ToHaveTextAsync("heimdall");
            await other.CloseAsync();

            // Stopped through the agent: it no longer runs there, and its lease is released.
            using (var stopped = await http.PostAsJsonAsync(new Uri("api/services/llm/stop", UriKind.Relative), new { node_id = "heimdall" }, ct))
            {
                Assert.Equal(HttpStatusCode.OK, stopped.StatusCode);
            }

            Assert.DoesNotContain("llm", (await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "services"), ct)).GetProperty("running").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases", UriKind.Relative), ct)).GetProperty("leases").GetArrayLength());

            // A less important service there gives way when the node is pinned: evicted through the agent, then llm starts.
            using (var comfy = await http.PostAsJsonAsync(new Uri("api/services/comfyui/start", UriKind.Relative), new { node_id = "heimdall" }, ct))
            {
                Assert.Equal(HttpStatusCode.OK, comfy.StatusCode);
            }

            using (var started = await http.PostAsJsonAsync(new Uri("api/services/llm/start", UriKind.Relative), new { node_id = "heimdall" }, ct))
            {
                Assert.True(started.StatusCode == HttpStatusCode.OK, await started.Content.ReadAsStringAsync(ct));
            }

            var running = (await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "services"), ct)).GetProperty("running").EnumerateArray().Select(r => r.GetString()).ToList();
            Assert.Equal(["llm"], running);
            var evicted = await UntilAsync(async () => (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases/history?service=comfyui&kind=evicted", UriKind.Relative), ct)).GetProperty("events")
                .EnumerateArray().Select(e => (JsonElement?)e).FirstOrDefault(), "comfyui's eviction in the history", ct,
                async () => await http.GetStringAsync(new Uri("api/leases/history?service=comfyui", UriKind.Relative), ct) + await http.GetStringAsync(new Uri("api/services", UriKind.Relative), ct));
            Assert.Equal("heimdall", evicted.GetProperty("node_id").GetString());
            Assert.Contains("for llm", evicted.GetProperty("reason").GetString(), StringComparison.Ordinal);

            // Then the agent dies: the instance is unknown, its lease still counted.
            await agent.SignalAndWaitAsync(kill: true, ct);
            var unknown = await UntilAsync(async () => await ServiceOn(http, "llm", "unknown", ct), "llm to be unknown", ct, () => State(http, ct));
            Assert.Equal("heimdall", unknown.GetProperty("node_id").GetString());
            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "unknown", new() { Timeout = 20_000 });
            await Assertions.Expect(row.GetByTestId("stop")).ToBeDisabledAsync();
            Assert.Contains("Node heimdall does not answer", await row.GetByTestId("stop-wrapper").GetAttributeAsync("title") ?? "", StringComparison.Ordinal);
            var kept = (await LeaseOf(http, "llm", ct)).GetProperty("lease_id").GetString();

            // Nothing new is placed on an offline node.
            using (var refused = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "heimdall", gpu_id = 0, mb = 100, service = "batch" }, ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Contains("node 'heimdall' is offline", (await refused.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // The agent comes back (same address and data): it re-attaches llm and reports it, so llm runs again, on the same lease.
            await using var back = await AppProcess.StartAsync(new Dictionary<string, string>(Agent(coordinator, agentProfile, "RTX 4090", 24576)) { ["CfOrch__DataDir"] = agent.DataDir }, ct, port: agent.BaseAddress.Port);
            await UntilAsync(async () => await ServiceOn(http, "llm", "running", ct), "llm to run again", ct, () => State(http, ct));
            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running", new() { Timeout = 20_000 });
            Assert.Equal(kept, (await LeaseOf(http, "llm", ct)).GetProperty("lease_id").GetString());

            // A running service's lease is released by stopping it, not by hand.
            using (var refused = await http.DeleteAsync(new Uri($"api/leases/{kept}", UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            }

            using (var stopped = await http.DeleteAsync(new Uri("api/services/llm?node_id=heimdall", UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.OK, stopped.StatusCode);
            }

            Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases", UriKind.Relative), ct)).GetProperty("leases").GetArrayLength());
        }
        finally
        {
            // The agent was killed with 9 and its successor was not asked to stop: end what they started.
            foreach (var port in new[] { llmPort, comfyPort })
            {
                using var end = Process.Start(new ProcessStartInfo("pkill") { ArgumentList = { "-f", $"service --port {port}" }, UseShellExecute = false });
                await end!.WaitForExitAsync(ct);
            }
            File.Delete(coordinatorProfile);
            File.Delete(agentProfile);
        }
    }

    private static async Task<JsonElement?> ServiceOn(HttpClient http, string service, string state, CancellationToken ct) =>
        (await http.GetFromJsonAsync<JsonElement>(new Uri("api/services", UriKind.Relative), ct)).GetProperty("services").EnumerateArray()
            .Where(s => s.GetProperty("service").GetString() == service && s.GetProperty("state").GetString() == state).Select(s => (JsonElement?)s.Clone()).FirstOrDefault();

    /// <summary>The coordinator's services and nodes, for a wait that gave up.</summary>
    private static async Task<string> State(HttpClient http, CancellationToken ct) =>
        await http.GetStringAsync(new Uri("api/services", UriKind.Relative), ct) + await http.GetStringAsync(new Uri("api/nodes", UriKind.Relative), ct);

    private static async Task<JsonElement> LeaseOf(HttpClient http, string holder, CancellationToken ct) =>
        (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases", UriKind.Relative), ct)).GetProperty("leases").EnumerateArray().Single(l => l.GetProperty("holder_service").GetString() == holder);

    [Fact]
    public async Task A_service_placed_on_an_agent_is_idle_once_its_last_allocation_ends_and_is_stopped_there_after_its_idle_stop_after_s()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = StandIn.FreePort();
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-idle-{Guid.NewGuid():N}.yaml");
        var service = StandInService("llm", 16000, 2, port).Replace("    priority: 2\n", "    priority: 2\n    idle_stop_after_s: 2\n", StringComparison.Ordinal);
        await File.WriteAllTextAsync(profile, Profile("idle-rig", service), ct);
        try
        {
            await using var coordinator = await AppProcess.StartAsync(Coordinator(profile), ct);
            await using var agent = await AppProcess.StartAsync(Agent(coordinator, profile, "RTX 4090", 24576), ct);
            using var http = new HttpClient { BaseAddress = coordinator.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            await UntilAsync(async () => Node(await http.GetStringAsync(new Uri("api/nodes", UriKind.Relative), ct)) is { } n && n.GetProperty("online").GetBoolean() ? n : null, "the agent to be online", ct);

            // 16 GB do not fit this node's 8 GB: the allocation starts llm on the agent.
            string id;
            using (var allocated = await http.PostAsJsonAsync(new Uri("api/services/llm/allocate", UriKind.Relative), new { model_candidates = new[] { "m" }, caller = "chat", ttl_s = 600 }, ct))
            {
                Assert.True(allocated.IsSuccessStatusCode, await allocated.Content.ReadAsStringAsync(ct));
                var answer = await allocated.Content.ReadFromJsonAsync<JsonElement>(ct);
                Assert.Equal("heimdall", answer.GetProperty("node_id").GetString());
                id = answer.GetProperty("allocation_id").GetString()!;
            }

            await UntilAsync(async () => await ServiceOn(http, "llm", "running", ct), "llm to run on the agent", ct, () => State(http, ct));
            using (var released = await http.DeleteAsync(new Uri($"api/services/llm/allocations/{id}", UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.OK, released.StatusCode);
            }

            // Idle at once, then stopped through the agent once idle_stop_after_s has passed.
            await UntilAsync(async () => await ServiceOn(http, "llm", "idle", ct), "llm to be idle", ct, () => State(http, ct));
            var stopped = await UntilAsync(async () => (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases/history?service=llm&kind=stopped", UriKind.Relative), ct)).GetProperty("events")
                .EnumerateArray().Select(e => (JsonElement?)e).FirstOrDefault(), "llm's idle stop in the history", ct, () => State(http, ct));
            Assert.Equal(("heimdall", "idle for 2 s"), (stopped.GetProperty("node_id").GetString(), stopped.GetProperty("reason").GetString()));
            Assert.DoesNotContain("llm", (await http.GetFromJsonAsync<JsonElement>(new Uri(agent.BaseAddress, "services"), ct)).GetProperty("running").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases", UriKind.Relative), ct)).GetProperty("leases").GetArrayLength());
        }
        finally
        {
            File.Delete(profile);
        }
    }

    [Fact]
    public async Task After_a_restart_the_coordinator_holds_the_services_it_placed_on_an_agent_again_with_their_leases_which_an_operator_may_release_once_the_agent_is_gone()
    {
        var ct = TestContext.Current.CancellationToken;
        var llmPort = StandIn.FreePort();
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-restart-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(profile, Profile("restart-rig", StandInService("llm", 16000, 2, llmPort)), ct);
        var coordinatorData = Path.Combine(Path.GetTempPath(), "cf-orch-e2e", Guid.NewGuid().ToString("N"));
        var coordinatorEnvironment = Coordinator(profile);
        coordinatorEnvironment["CfOrch__DataDir"] = coordinatorData;
        try
        {
            var first = await AppProcess.StartAsync(coordinatorEnvironment, ct);
            var port = first.BaseAddress.Port;
            await using var agent = await AppProcess.StartAsync(Agent(first, profile, "RTX 4090", 24576), ct);
            using var http = new HttpClient { BaseAddress = first.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            await UntilAsync(async () => Node(await http.GetStringAsync(new Uri("api/nodes", UriKind.Relative), ct)) is { } n && n.GetProperty("online").GetBoolean() ? n : null, "the agent to be online", ct);
            using (var started = await http.PostAsJsonAsync(new Uri("api/services/llm/start", UriKind.Relative), new { }, ct))
            {
                Assert.True(started.StatusCode == HttpStatusCode.OK, await started.Content.ReadAsStringAsync(ct));
            }

            var lease = (await LeaseOf(http, "llm", ct)).GetProperty("lease_id").GetString();
            string? clientLease;
            using (var client = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "heimdall", gpu_id = 0, mb = 2000, service = "batch" }, ct))
            {
                clientLease = (await client.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("lease").GetProperty("lease_id").GetString();
            }

            Assert.Equal(0, await first.SignalAndWaitAsync(kill: false, ct));
            await first.DisposeAsync();

            // The coordinator comes back: llm is unknown until the agent answers, then running again, on the same lease, at the same URL.
            await using var second = await AppProcess.StartAsync(coordinatorEnvironment, ct, port);
            var running = await UntilAsync(async () => await ServiceOn(http, "llm", "running", ct), "llm to be running again", ct, () => State(http, ct));
            Assert.Equal(("heimdall", $"http://127.0.0.1:{llmPort}"), (running.GetProperty("node_id").GetString(), running.GetProperty("url").GetString()));
            Assert.Equal(lease, (await LeaseOf(http, "llm", ct)).GetProperty("lease_id").GetString());
            var batch = await LeaseOf(http, "batch", ct);
            Assert.Equal((clientLease, "heimdall"), (batch.GetProperty("lease_id").GetString(), batch.GetProperty("node_id").GetString()));
            using (var released = await http.DeleteAsync(new Uri($"api/leases/{clientLease}", UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.OK, released.StatusCode);
            }

            // An allocation finds it warm there.
            using (var allocated = await http.PostAsJsonAsync(new Uri("api/services/llm/allocate", UriKind.Relative), new { model_candidates = new[] { "m" } }, ct))
            {
                var answer = await allocated.Content.ReadFromJsonAsync<JsonElement>(ct);
                Assert.True(allocated.StatusCode == HttpStatusCode.OK, answer.ToString());
                Assert.Equal(("heimdall", true, false), (answer.GetProperty("node_id").GetString(), answer.GetProperty("warm").GetBoolean(), answer.GetProperty("started").GetBoolean()));
            }

            // The agent dies: llm is unknown, and an operator may release its lease by hand (which forgets it).
            await agent.SignalAndWaitAsync(kill: true, ct);
            await UntilAsync(async () => await ServiceOn(http, "llm", "unknown", ct), "llm to be unknown", ct, () => State(http, ct));
            using (var released = await http.DeleteAsync(new Uri($"api/leases/{lease}", UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.OK, released.StatusCode);
            }

            Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>(new Uri("api/leases", UriKind.Relative), ct)).GetProperty("leases").GetArrayLength());
            Assert.DoesNotContain((await http.GetFromJsonAsync<JsonElement>(new Uri("api/services", UriKind.Relative), ct)).GetProperty("services").EnumerateArray(), s => s.GetProperty("service").GetString() == "llm");
        }
        finally
        {
            using var end = Process.Start(new ProcessStartInfo("pkill") { ArgumentList = { "-f", $"service --port {llmPort}" }, UseShellExecute = false });
            await end!.WaitForExitAsync(ct);
            File.Delete(profile);
            if (Directory.Exists(coordinatorData))
            {
                Directory.Delete(coordinatorData, recursive: true);
            }
        }
    }

    /// <summary>A profile for a 24 GB card (a coordinator's may name services larger than its own card: they run elsewhere).</summary>
    private static string Profile(string name, string services) =>
        $"schema_version: 1\nname: {name}\nvram_total_mb: 24576\neviction_timeout_s: 3\nservices:\n{services}";

    /// <summary>A service run by the stand-in, answering <c>/health</c> on <paramref name="port"/>.</summary>
    private static string StandInService(string name, long maxMb, int priority, int port) => $"""
          {name}:
            max_mb: {maxMb}
            priority: {priority}
            managed:
              type: process
              exec_path: {StandIn.ExecutablePath}
              args_template: service --port {'{'}port{'}'}
              port: {port}
              host_port: {port}
              health_path: /health

        """;

    /// <summary>A coordinator with one simulated 8 GB GPU and <paramref name="profile"/>, polling its agents every second.</summary>
    private static Dictionary<string, string> Coordinator(string profile) => new()
    {
        ["CfOrch__Profile"] = profile,
        ["CfOrch__Cluster__Token"] = Token,
        ["CfOrch__Cluster__PollSeconds"] = "1",
        ["CfOrch__Gpus__Mode"] = "simulated",
        ["CfOrch__Gpus__Simulated__0__Name"] = "RTX 3070",
        ["CfOrch__Gpus__Simulated__0__TotalMb"] = "8192",
    };

    /// <summary>An agent "heimdall" of <paramref name="coordinator"/> with one simulated GPU, its own profile, re-registering every second.</summary>
    private static Dictionary<string, string> Agent(AppProcess coordinator, string profile, string gpuName, long totalMb) => new()
    {
        ["CfOrch__Role"] = "agent",
        ["CfOrch__Agent__Coordinator"] = coordinator.BaseAddress.ToString(),
        ["CfOrch__Agent__RegisterSeconds"] = "1",
        ["CfOrch__Cluster__Token"] = Token,
        ["CfOrch__NodeId"] = "heimdall",
        ["CfOrch__Profile"] = profile,
        ["CfOrch__Gpus__Mode"] = "simulated",
        ["CfOrch__Gpus__Simulated__0__Name"] = gpuName,
        ["CfOrch__Gpus__Simulated__0__TotalMb"] = totalMb.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

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

    /// <summary>Polls until <paramref name="probe"/> finds something (30 s at most); on timeout, says what <paramref name="detail"/> shows then.</summary>
    private static async Task<JsonElement> UntilAsync(Func<Task<JsonElement?>> probe, string what, CancellationToken ct, Func<Task<string>>? detail = null)
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

        throw new TimeoutException($"waited 30 s for {what}{(detail is null ? "" : $"; then: {await detail()}")}");
    }
}
