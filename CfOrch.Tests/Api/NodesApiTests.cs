using System.Net;
using System.Text.Json;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

/// <summary>The coordinator's side of the agent protocol: registration, heartbeat, offline and back, kept across a restart, the cluster token.</summary>
public sealed class NodesApiTests
{
    private static readonly Dictionary<string, string?> FastPolls = new() { ["CfOrch:Cluster:PollSeconds"] = "1" };

    [Fact]
    public async Task An_agent_that_does_not_answer_yet_is_recorded_offline_not_refused()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var url = $"http://127.0.0.1:{EngineApp.FreePort()}";

        var answer = (await host.PostAsync("/api/nodes", new { node_id = "ghost", agent_url = url })).Is(HttpStatusCode.OK).Json;

        Assert.True(answer.GetProperty("registered").GetBoolean());
        var ghost = Node(await host.GetAsync("/api/nodes"), "ghost");
        Assert.False(ghost.GetProperty("online").GetBoolean());
        Assert.Equal(0.0, ghost.GetProperty("last_heartbeat").GetDouble());
        Assert.Equal(JsonValueKind.Null, ghost.GetProperty("last_heartbeat_age_s").ValueKind);
        Assert.False(string.IsNullOrEmpty(ghost.GetProperty("problem").GetString()));
        Assert.Equal(url, ghost.GetProperty("agent_url").GetString());
    }

    [Fact]
    public async Task An_agent_answering_megabytes_is_recorded_offline_with_why()
    {
        await using var agent = await FakeAgent.StartAsync(padBytes: 2 * 1024 * 1024);
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.PostAsync("/api/nodes", new { node_id = "chatty", agent_url = agent.Url })).Is(HttpStatusCode.OK);

        var chatty = Node(await host.GetAsync("/api/nodes"), "chatty");
        Assert.False(chatty.GetProperty("online").GetBoolean());
        Assert.Equal(0, chatty.GetProperty("gpus").GetArrayLength());
    }

    [Fact]
    public async Task A_polled_agent_goes_offline_after_two_missed_polls_and_online_when_it_answers_again()
    {
        var agent = await FakeAgent.StartAsync();
        var port = agent.Port;
        await using var host = ApiTestHost.Start(EngineApp.Profile(), FastPolls);
        try
        {
            (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url })).Is(HttpStatusCode.OK);
            var online = Node(await host.GetAsync("/api/nodes"), "heimdall");
            Assert.True(online.GetProperty("online").GetBoolean());
            Assert.True(online.GetProperty("last_heartbeat").GetDouble() > 0);
            Assert.Equal(24576, online.GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());

            await agent.DisposeAsync();
            var offline = await host.App.PollAsync(async () => Node(await host.GetAsync("/api/nodes"), "heimdall") is var n && !n.GetProperty("online").GetBoolean() ? (object)n : null, "the agent to be marked offline");
            var gone = (JsonElement)offline;
            Assert.True(gone.GetProperty("last_heartbeat_age_s").GetDouble() >= 1, "offline only after two polls missed");
            Assert.Equal(24576, gone.GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());

            agent = await FakeAgent.StartAsync(port: port);
            await host.App.PollAsync(async () => Node(await host.GetAsync("/api/nodes"), "heimdall").GetProperty("online").GetBoolean() ? "online" : null, "the agent to be online again");
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }

    [Fact]
    public async Task Nodes_are_kept_across_a_restart_of_cf_orch()
    {
        await using var agent = await FakeAgent.StartAsync();
        using var data = new TempDir();
        var first = ApiTestHost.Start(EngineApp.Profile(), new(FastPolls) { ["CfOrch:DataDir"] = data.Path });
        (await first.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url })).Is(HttpStatusCode.OK);
        await first.DisposeAsync();

        await using var second = ApiTestHost.Start(EngineApp.Profile(), new(FastPolls) { ["CfOrch:DataDir"] = data.Path });

        Assert.Equal(agent.Url, Node(await second.GetAsync("/api/nodes"), "heimdall").GetProperty("agent_url").GetString());
        await second.App.PollAsync(async () => Node(await second.GetAsync("/api/nodes"), "heimdall").GetProperty("online").GetBoolean() ? "online" : null, "the kept node to be polled");
    }

    [Fact]
    public async Task The_cluster_token_lets_an_agent_register_from_the_lan_and_nothing_else_and_is_sent_to_agents()
    {
        const string token = "cluster-secret-0123456789";
        const string lan = "192.168.1.77";
        await using var agent = await FakeAgent.StartAsync();
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new(FastPolls) { ["CfOrch:Cluster:Token"] = token, ["CfOrch:Auth:AdminPassword"] = "a-long-admin-password" });

        (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url }, remote: lan)).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url }, remote: lan, bearer: "not-the-token-at-all")).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url }, remote: lan, bearer: token)).Is(HttpStatusCode.OK);

        // The token registers nodes, nothing else.
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "x" }, remote: lan, bearer: token)).Is(HttpStatusCode.Forbidden);
        Assert.Contains($"Bearer {token}", agent.Authorizations);
        Assert.DoesNotContain("", agent.Authorizations);
    }

    private static JsonElement Node(ApiTestHost.Answer answer, string nodeId) =>
        answer.Is(HttpStatusCode.OK).Json.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("node_id").GetString() == nodeId);
}
