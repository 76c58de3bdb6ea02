using System.Net;
using System.Text.Json;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Api;

/// <summary>cf-orch as an agent (<c>CfOrch:Role=agent</c>): every answer of the agent protocol, field by field, as the original agent's.</summary>
public sealed class AgentProtocolTests
{
    private const string Token = "cluster-secret-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_agent_protocol_answers_with_the_original_agents_fields()
    {
        var port = EngineApp.FreePort();
        await using var host = ApiTestHost.Start(
            EngineApp.Profile(
                EngineApp.StandInService("whisper", 1000, 2, port, "service --port {port}", "/health"),
                EngineApp.StandInService("stubborn", 1000, 2, EngineApp.FreePort(), "service --port {port} --ignore-sigterm", "/health")),
            new()
            {
                ["CfOrch:Role"] = "agent",
                ["CfOrch:NodeId"] = "heimdall",
                ["CfOrch:Agent:Coordinator"] = $"http://127.0.0.1:{EngineApp.FreePort()}",
                ["CfOrch:Cluster:Token"] = Token,
            });

        Fields((await host.GetAsync("/health")).Is(HttpStatusCode.OK).Json, "status", "node_id");
        Assert.Equal("heimdall", (await host.GetAsync("/health")).Json.GetProperty("node_id").GetString());

        var info = (await host.GetAsync("/gpu-info")).Is(HttpStatusCode.OK).Json;
        Fields(info, "node_id", "gpus");
        Fields(info.GetProperty("gpus")[0], "gpu_id", "name", "vram_total_mb", "vram_used_mb", "vram_free_mb");
        Assert.Equal(8192, info.GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());

        Assert.Equal(0, Fields((await host.GetAsync("/resident-info")).Is(HttpStatusCode.OK).Json, "residents").GetProperty("residents").GetArrayLength());
        Assert.Equal(0, Fields((await host.GetAsync("/services")).Is(HttpStatusCode.OK).Json, "running").GetProperty("running").GetArrayLength());
        var idle = Fields((await host.GetAsync("/services/whisper")).Is(HttpStatusCode.OK).Json, "service", "running", "url");
        Assert.False(idle.GetProperty("running").GetBoolean());
        Assert.Equal(JsonValueKind.Null, idle.GetProperty("url").ValueKind);

        // Control: with the token (the coordinator's), from anywhere.
        (await host.PostAsync("/services/whisper/start", new { gpu_id = 0, @params = new { } }, remote: "10.0.0.5")).Is(HttpStatusCode.Unauthorized);
        var started = Fields((await host.PostAsync("/services/whisper/start", new { gpu_id = 0, @params = new { } }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json, "service", "url", "running", "adopted");
        Assert.Equal(("whisper", $"http://127.0.0.1:{port}", true, false), (started.GetProperty("service").GetString(), started.GetProperty("url").GetString(), started.GetProperty("running").GetBoolean(), started.GetProperty("adopted").GetBoolean()));

        var resident = Fields((await host.GetAsync("/resident-info")).Json.GetProperty("residents")[0], "service", "model_name");
        Assert.Equal("whisper", resident.GetProperty("service").GetString());
        Assert.Equal(["whisper"], (await host.GetAsync("/services")).Json.GetProperty("running").EnumerateArray().Select(e => e.GetString()));
        Assert.True((await host.GetAsync("/services/whisper")).Json.GetProperty("running").GetBoolean());

        // Evict: only a process of a service it started, answered with the original agent's methods.
        var refused = Fields((await host.PostAsync("/evict", new { pid = 1, grace_period_s = 1.0 }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json, "success", "method", "message");
        Assert.Equal((false, "error"), (refused.GetProperty("success").GetBoolean(), refused.GetProperty("method").GetString()));
        var missing = (await host.PostAsync("/evict", new { pid = 999_999_999, grace_period_s = 1.0 }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json;
        Assert.Equal((false, "not_found", "PID 999999999 not found"), (missing.GetProperty("success").GetBoolean(), missing.GetProperty("method").GetString(), missing.GetProperty("message").GetString()));
        var pid = host.Orchestrator.Instances.Single().Pid!.Value;
        var badGrace = await host.PostAsync("/evict", new { pid, grace_period_s = -1 }, remote: "10.0.0.5", bearer: Token);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badGrace.Status);
        Assert.Contains("grace_period_s must be between 0 and 600 seconds (got -1)", badGrace.Detail, StringComparison.Ordinal);
        Assert.True((await host.GetAsync("/services/whisper")).Json.GetProperty("running").GetBoolean());
        var evicted = (await host.PostAsync("/evict", new { pid, grace_period_s = 10.0 }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json;
        Assert.Equal((true, "sigterm"), (evicted.GetProperty("success").GetBoolean(), evicted.GetProperty("method").GetString()));
        Assert.False((await host.GetAsync("/services/whisper")).Json.GetProperty("running").GetBoolean());

        // A process that ignores SIGTERM is killed once the caller's grace (not the profile's 3 s) has passed.
        (await host.PostAsync("/services/stubborn/start", new { gpu_id = 0, @params = new { } }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK);
        var stubborn = host.Orchestrator.Instances.Single(i => i.Service == "stubborn" && i.IsActive).Pid!.Value;
        var killed = (await host.PostAsync("/evict", new { pid = stubborn, grace_period_s = 0.3 }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json;
        Assert.Equal((true, "sigkill"), (killed.GetProperty("success").GetBoolean(), killed.GetProperty("method").GetString()));
        Assert.False(Core.Processes.ProcFs.IsRunning(stubborn));
        Assert.Contains(host.App.Factory.Log.Lines, l => l.Text.StartsWith($"stubborn: PID {stubborn} did not stop within 00:00:00.3000000 of SIGTERM", StringComparison.Ordinal));

        (await host.PostAsync("/services/whisper/start", new { gpu_id = 0, @params = new { } }, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK);
        var stopped = Fields((await host.PostAsync("/services/whisper/stop", null, remote: "10.0.0.5", bearer: Token)).Is(HttpStatusCode.OK).Json, "service", "stopped");
        Assert.True(stopped.GetProperty("stopped").GetBoolean());

        // An unknown service is a 422 with a detail, as JSON (never the dashboard's page).
        var unknown = await host.PostAsync("/services/nope/start", new { gpu_id = 0 }, remote: "10.0.0.5", bearer: Token);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknown.Status);
        Assert.Contains("nope", unknown.Detail, StringComparison.Ordinal);

        // No dashboard on an agent: a status page.
        var page = await host.GetAsync("/");
        Assert.Contains("cf-orch agent heimdall", page.Body, StringComparison.Ordinal);
    }

    private const string Coordinator = "192.0.2.10";

    /// <summary>An agent named heimdall, with a whisper service, whose coordinator is at <paramref name="coordinator"/>, and one more setting.</summary>
    private static ApiTestHost AgentOf(string coordinator, string key, string value)
    {
        var whisper = EngineApp.StandInService("whisper", 1000, 2, EngineApp.FreePort(), "service --port {port}", "/health");
        return ApiTestHost.Start(EngineApp.Profile(whisper), new()
        {
            ["CfOrch:Role"] = "agent",
            ["CfOrch:NodeId"] = "heimdall",
            ["CfOrch:Agent:Coordinator"] = $"http://{coordinator}:7700",
            [key] = value,
        });
    }

    [Fact]
    public async Task Without_a_cluster_token_the_coordinators_address_controls_the_agent_and_a_stranger_or_a_proxy_does_not()
    {
        await using var host = AgentOf(Coordinator, "CfOrch:Auth:TrustedNetworks:0", "10.9.0.0/16");
        const string coordinator = Coordinator;

        // The agent knows its coordinator's address once it starts registering (the coordinator need not answer).
        await Eventually.TrueAsync(() => host.Get<CfOrch.Web.Cluster.AgentRegistration>().IsCoordinator(IPAddress.Parse(coordinator)), "the agent to resolve its coordinator");

        // It says at start-up what running without the token allows.
        Assert.Contains(host.App.Factory.Log.Lines, l => l.Level == LogLevel.Warning && l.Text.StartsWith($"CfOrch:Cluster:Token is not set: anything that connects from the coordinator's address ({coordinator}) may start, stop and evict services on this agent", StringComparison.Ordinal));

        var start = new { gpu_id = 0, @params = new { } };

        (await host.PostAsync("/services/whisper/start", start, remote: "10.0.0.5")).Is(HttpStatusCode.Unauthorized);
        (await host.SendAsync(HttpMethod.Post, "/services/whisper/start", start, remote: coordinator, headers: new Dictionary<string, string> { ["X-Forwarded-For"] = "10.0.0.5" })).Is(HttpStatusCode.Unauthorized);
        Assert.True((await host.PostAsync("/services/whisper/start", start, remote: coordinator)).Is(HttpStatusCode.OK).Json.GetProperty("running").GetBoolean());

        // As on any cf-orch, the agent's own settings give control too: here a trusted network (documented in the README).
        Assert.True((await host.PostAsync("/services/whisper/stop", null, remote: "10.9.1.2")).Is(HttpStatusCode.OK).Json.GetProperty("stopped").GetBoolean());
    }

    [Fact]
    public async Task With_a_cluster_token_the_coordinators_address_alone_does_not_control_the_agent()
    {
        await using var host = AgentOf(Coordinator, "CfOrch:Cluster:Token", Token);
        const string coordinator = Coordinator;
        await Eventually.TrueAsync(() => host.Get<CfOrch.Web.Cluster.AgentRegistration>().IsCoordinator(IPAddress.Parse(coordinator)), "the agent to resolve its coordinator");
        Assert.DoesNotContain(host.App.Factory.Log.Lines, l => l.Text.Contains("CfOrch:Cluster:Token is not set", StringComparison.Ordinal));

        (await host.PostAsync("/services/whisper/stop", null, remote: coordinator)).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/services/whisper/stop", null, remote: coordinator, bearer: Token)).Is(HttpStatusCode.OK);
    }

    /// <summary>Asserts the object has exactly these fields, in this order.</summary>
    private static JsonElement Fields(JsonElement element, params string[] names)
    {
        Assert.Equal(names, element.EnumerateObject().Select(p => p.Name));
        return element;
    }
}
