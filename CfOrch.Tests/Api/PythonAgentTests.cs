using System.Net;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;
using CfOrch.Web.Api;
using CfOrch.Web.Cluster;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Api;

/// <summary>The coordinator driving an unchanged Python agent (<see cref="FakeAgent"/>): what it starts there stays its own, and what it refuses changes nothing there.</summary>
public sealed class PythonAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A coordinator's profile for a 24 GB card: the services run on the agent (the stand-in is never started here).</summary>
    private static string Profile() =>
        "schema_version: 1\nname: coordinator\nvram_total_mb: 24576\neviction_timeout_s: 3\nservices:\n"
        + EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags")
        + EngineApp.StandInService("llm", 10000, 2, EngineApp.FreePort(), "service --port {port}", "/health")
        + EngineApp.StandInService("comfyui", 22000, 4, EngineApp.FreePort(), "service --port {port}", "/health")
        + EngineApp.StandInService("pinned", 1000, 3, EngineApp.FreePort(), "service --port {port}", "/health").Replace("    priority: 3\n", "    priority: 3\n    gpus: [1]\n", StringComparison.Ordinal);

    private static async Task<ApiTestHost> CoordinatorOfAsync(FakeAgent agent, Dictionary<string, string?>? settings = null, TimeProvider? clock = null)
    {
        var host = ApiTestHost.Start(Profile(), settings, clock is null ? null : s => s.AddSingleton(clock));
        (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url })).Is(HttpStatusCode.OK);
        return host;
    }

    /// <summary>An agent whose <c>/resident-info</c> lists nothing (no Ollama answers on its well-known port).</summary>
    private static async Task<FakeAgent> AgentListingNoResidentsAsync()
    {
        var agent = await FakeAgent.StartAsync();
        agent.Residents = [];
        return agent;
    }

    /// <summary>An allocate of <paramref name="service"/> on heimdall for <paramref name="model"/>.</summary>
    private static Task<ApiTestHost.Answer> AllocateThereAsync(ApiTestHost host, string service, string model) =>
        host.PostAsync($"/api/services/{service}/allocate", new { node_id = "heimdall", model_candidates = new[] { model }, caller = "t" });

    /// <summary>A coordinator of an agent that lists no residents, with the Ollama there just started for an allocate of <paramref name="model"/> (not claimed yet).</summary>
    private static async Task<StartedThere> OllamaStartedThereAsync(string model)
    {
        var agent = await AgentListingNoResidentsAsync();
        var host = await CoordinatorOfAsync(agent);
        var remote = host.Get<RemoteServices>();
        return new(agent, host, remote, await remote.EnsureAsync(host.Orchestrator.Service("ollama"), "heimdall", null, model, Ct));
    }

    private sealed record StartedThere(FakeAgent Agent, ApiTestHost Host, RemoteServices Remote, EnsureResult Started) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await Agent.DisposeAsync();
        }
    }

    private static List<string> Placed(ApiTestHost host, InstanceState state) =>
        host.Get<RemoteServices>().All.Where(i => i.State == state).Select(i => i.Service).Order(StringComparer.Ordinal).ToList();

    private static List<string> LeasedOnHeimdall(ApiTestHost host) =>
        host.Get<LeaseManager>().All.Where(l => l.NodeId == "heimdall").Select(l => l.Service ?? l.Holder).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task What_cf_orch_started_on_a_python_agent_keeps_running_with_its_lease_across_polls_until_the_agent_says_it_ended()
    {
        await using var agent = await FakeAgent.StartAsync();
        // Two models loaded: the original agent lists its Ollama as ollama/0 and ollama/1, and never a process it started.
        agent.Residents = [("ollama/0", "llama3.1:8b"), ("ollama/1", "qwen2.5:7b")];
        await using var host = await CoordinatorOfAsync(agent);

        var llm = (await AllocateThereAsync(host, "llm", "m")).Is(HttpStatusCode.OK).Json;
        Assert.Equal(("heimdall", true), (llm.GetProperty("node_id").GetString(), llm.GetProperty("started").GetBoolean()));
        (await AllocateThereAsync(host, "ollama", "qwen2.5:7b")).Is(HttpStatusCode.OK);

        // The Python agent's own start of an Ollama that already ran there (a system service) exits at once: only its
        // ollama/0, ollama/1 residents say that it runs.
        agent.Running.TryRemove("ollama", out _);
        var nodes = host.Get<NodeDirectory>();
        await nodes.PollAllAsync(Ct);
        await nodes.PollAllAsync(Ct);

        Assert.Equal(["llm", "ollama"], Placed(host, InstanceState.Running));
        Assert.Equal(["llm", "ollama"], LeasedOnHeimdall(host));
        Assert.True(agent.CallsTo("GET /services") >= 2, "the agent is asked what it runs when it does not list something");

        // Ended there (a crash, a stop by hand): lost at the next poll, its lease released.
        agent.Running.TryRemove("llm", out _);
        await nodes.PollAllAsync(Ct);

        Assert.Equal(["ollama"], Placed(host, InstanceState.Running));
        Assert.Equal(["ollama"], LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task A_poll_asks_the_agent_once_what_it_runs_however_many_services_it_does_not_list()
    {
        await using var agent = await AgentListingNoResidentsAsync();
        await using var host = await CoordinatorOfAsync(agent);
        (await AllocateThereAsync(host, "llm", "m")).Is(HttpStatusCode.OK);
        (await AllocateThereAsync(host, "ollama", "qwen2.5:7b")).Is(HttpStatusCode.OK);
        var nodes = host.Get<NodeDirectory>();
        agent.Calls.Clear();

        await nodes.PollAllAsync(Ct);
        await nodes.PollAllAsync(Ct);

        // What it then no longer runs is ended as lost (the test above).
        Assert.Equal((2, 0), (agent.CallsTo("GET /services"), agent.Calls.Count(c => c.StartsWith("GET /services/", StringComparison.Ordinal))));
        Assert.Equal(["llm", "ollama"], Placed(host, InstanceState.Running));
    }

    [Fact]
    public async Task A_start_the_agent_answered_running_but_does_not_list_yet_keeps_its_lease_while_it_loads_then_follows_what_the_agent_lists()
    {
        // The Python agent answers a start "running" at once and lists the service only once its port answers.
        await using var agent = await AgentListingNoResidentsAsync();
        var clock = new AheadClock();
        await using var host = await CoordinatorOfAsync(agent, clock: clock);
        var nodes = host.Get<NodeDirectory>();
        Assert.Equal(InstanceState.Running, (await host.Get<RemoteServices>().EnsureAsync(host.Orchestrator.Service("llm"), "heimdall", null, null, Ct)).Instance.State);
        agent.Running.TryRemove("llm", out _);

        // Still loading: not listed, not lost.
        clock.Ahead = TimeSpan.FromMinutes(2);
        await nodes.PollAllAsync(Ct);
        Assert.Equal(["llm"], Placed(host, InstanceState.Running));
        Assert.Equal(["llm"], LeasedOnHeimdall(host));

        // Listed once it answers; from then on, no longer listed means it ended there.
        agent.Running["llm"] = true;
        await nodes.PollAllAsync(Ct);
        agent.Running.TryRemove("llm", out _);
        await nodes.PollAllAsync(Ct);
        Assert.Empty(host.Get<RemoteServices>().All);
        Assert.Empty(LeasedOnHeimdall(host));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_start_the_agent_never_lists_keeps_its_lease_until_its_start_timeout_then_is_ended_as_lost(bool answeredRunning)
    {
        // Answered "not running yet", or "running" at once as the Python agent does before the service's port answers.
        await using var agent = await AgentListingNoResidentsAsync();
        agent.StartsRunning = answeredRunning;
        var clock = new AheadClock();
        await using var host = await CoordinatorOfAsync(agent, clock: clock);
        var nodes = host.Get<NodeDirectory>();
        var state = answeredRunning ? InstanceState.Running : InstanceState.Starting;
        Assert.Equal(state, (await host.Get<RemoteServices>().EnsureAsync(host.Orchestrator.Service("llm"), "heimdall", null, null, Ct)).Instance.State);
        agent.Running.TryRemove("llm", out _);

        // Within the agent's start timeout a model may still be loading: it keeps its lease.
        clock.Ahead = AgentClient.StartTimeout - TimeSpan.FromMinutes(1);
        await nodes.PollAllAsync(Ct);
        Assert.Equal(["llm"], Placed(host, state));

        clock.Ahead = AgentClient.StartTimeout + TimeSpan.FromSeconds(1);
        await nodes.PollAllAsync(Ct);

        Assert.Empty(host.Get<RemoteServices>().All);
        Assert.Empty(LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task An_ollama_the_python_agent_lists_as_ollama_0_and_ollama_1_draws_an_allocate_to_its_node()
    {
        await using var agent = await FakeAgent.StartAsync();
        agent.Residents = [("ollama/0", "llama3.1:8b"), ("ollama/1", "qwen2.5:7b")];
        // This node has more room than heimdall: only the warm Ollama there makes heimdall the place.
        await using var host = await CoordinatorOfAsync(agent, new() { ["CfOrch:Gpus:Simulated:0:TotalMb"] = "49152" });

        var answer = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "qwen2.5:7b" }, caller = "t" })).Is(HttpStatusCode.OK).Json;

        Assert.Equal(("heimdall", "qwen2.5:7b"), (answer.GetProperty("node_id").GetString(), answer.GetProperty("model").GetString()));
    }

    [Fact]
    public async Task An_allocate_on_an_agent_for_a_model_its_ollama_lacks_is_422_and_leaves_what_runs_there_as_it_was()
    {
        await using var agent = await AgentListingNoResidentsAsync();
        await using var host = await CoordinatorOfAsync(agent);
        (await AllocateThereAsync(host, "comfyui", "sdxl")).Is(HttpStatusCode.OK);

        // Its Ollama runs there (the agent says where): asked first, nothing is evicted for it and nothing started.
        agent.Running["ollama"] = true;
        var refused = (await AllocateThereAsync(host, "ollama", "mistral:7b")).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("none of the model candidates (mistral:7b) is available on ollama; it has llama3.1:8b, qwen2.5:7b", refused, StringComparison.Ordinal);
        Assert.Equal(["comfyui"], Placed(host, InstanceState.Running));
        Assert.Equal(["comfyui"], LeasedOnHeimdall(host));
        Assert.Equal(0, agent.CallsTo("POST /services/comfyui/stop"));
        Assert.Equal(0, agent.CallsTo("POST /services/ollama/start"));
    }

    [Fact]
    public async Task An_ollama_started_on_an_agent_to_be_asked_for_a_model_it_lacks_is_stopped_again_and_its_lease_released()
    {
        await using var agent = await AgentListingNoResidentsAsync();
        await using var host = await CoordinatorOfAsync(agent);

        var refused = (await AllocateThereAsync(host, "ollama", "mistral:7b")).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("none of the model candidates (mistral:7b) is available on ollama", refused, StringComparison.Ordinal);
        Assert.Contains("ollama, started for it, is stopped again", refused, StringComparison.Ordinal);
        Assert.Equal((1, 1), (agent.CallsTo("POST /services/ollama/start"), agent.CallsTo("POST /services/ollama/stop")));
        Assert.Empty(host.Get<RemoteServices>().All);
        Assert.Empty(LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task An_ollama_that_evicted_a_service_on_an_agent_and_lacks_the_model_is_stopped_again_and_that_service_started_again_there()
    {
        await using var agent = await AgentListingNoResidentsAsync();
        await using var host = await CoordinatorOfAsync(agent);
        (await AllocateThereAsync(host, "comfyui", "sdxl")).Is(HttpStatusCode.OK);

        // 4,096 MB for Ollama (priority 1) do not fit beside comfyui's 22,000 MB (priority 4) on the 24 GB card there:
        // comfyui is evicted through the agent, Ollama started, and asked: it lacks the model.
        var refused = (await AllocateThereAsync(host, "ollama", "mistral:7b")).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("ollama, started for it, is stopped again; comfyui, stopped to make room for it, is starting again", refused, StringComparison.Ordinal);
        Assert.Equal((2, 1), (agent.CallsTo("POST /services/comfyui/start"), agent.CallsTo("POST /services/comfyui/stop")));
        Assert.Equal((1, 1), (agent.CallsTo("POST /services/ollama/start"), agent.CallsTo("POST /services/ollama/stop")));
        Assert.Equal(["comfyui"], Placed(host, InstanceState.Running));
        Assert.Equal(["comfyui"], LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task An_allocate_that_found_warm_what_another_allocate_started_and_then_stopped_again_is_refused_not_handed_a_dead_url()
    {
        // A starts the Ollama there; B finds it warm, and is still asking for its models when A's undo stops it.
        await using var there = await OllamaStartedThereAsync("mistral:7b");
        var (agent, host, remote, a) = there;
        var b = await remote.EnsureAsync(host.Orchestrator.Service("ollama"), "heimdall", null, "qwen2.5:7b", Ct);
        Assert.Equal((true, true), (a.Started, b.Warm));
        await Assert.ThrowsAsync<OrchestrationException>(() => host.Orchestrator.AllocateOnAsync(a, ["mistral:7b"], 0, "a", Ct, remote));
        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => host.Orchestrator.AllocateOnAsync(b, ["qwen2.5:7b"], 0, "b", Ct, remote));

        Assert.Contains("ollama on heimdall GPU 0 stopped while this allocation was made", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, agent.CallsTo("POST /services/ollama/stop"));
        Assert.Empty(host.Orchestrator.Allocations);
        Assert.Empty(remote.All);
        Assert.Empty(LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task A_refused_allocate_whose_started_ollama_was_stopped_meanwhile_says_so_instead_of_stopped_again()
    {
        await using var there = await OllamaStartedThereAsync("mistral:7b");
        var (agent, host, remote, started) = there;

        // Stopped by an operator while the allocate that started it was asking for its models.
        await remote.StopAsync("ollama", "heimdall", null, Ct);
        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => host.Orchestrator.AllocateOnAsync(started, ["mistral:7b"], 0, "t", Ct, remote));

        Assert.EndsWith("; ollama was started for it and ended meanwhile", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, agent.CallsTo("POST /services/ollama/stop"));
    }

    [Fact]
    public async Task An_ollama_started_on_an_agent_for_an_allocate_whose_caller_hung_up_is_stopped_again_and_its_lease_released()
    {
        await using var there = await OllamaStartedThereAsync("qwen2.5:7b");
        var (agent, host, remote, started) = there;
        using var hungUp = new CancellationTokenSource();
        await hungUp.CancelAsync();

        // The caller is gone while its models are checked.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => host.Orchestrator.AllocateOnAsync(started, ["qwen2.5:7b"], 0, "t", hungUp.Token, remote));

        Assert.Equal(1, agent.CallsTo("POST /services/ollama/stop"));
        Assert.Empty(remote.All);
        Assert.Empty(LeasedOnHeimdall(host));
    }

    [Fact]
    public async Task A_service_pinned_to_a_gpu_the_agent_lacks_is_refused_with_its_pin_and_nothing_starts_there()
    {
        await using var agent = await FakeAgent.StartAsync();
        await using var host = await CoordinatorOfAsync(agent);

        var none = (await AllocateThereAsync(host, "pinned", "m")).Is(HttpStatusCode.ServiceUnavailable).Detail;
        var other = (await host.PostAsync("/api/services/pinned/allocate", new { node_id = "heimdall", gpu_id = 0, model_candidates = new[] { "m" }, caller = "t" })).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Equal("pinned is pinned to GPU 1, which node 'heimdall' does not have (it has 0).", none);
        Assert.Equal("pinned is pinned to GPU 1 by its profile", other);
        Assert.Equal(0, agent.CallsTo("POST /services/pinned/start"));
        Assert.Empty(LeasedOnHeimdall(host));
    }

    /// <summary>The system clock, <see cref="Ahead"/> ahead (its timers run in real time): minutes pass for the app at once.</summary>
    private sealed class AheadClock : TimeProvider
    {
        public TimeSpan Ahead { get; set; }

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Ahead;
    }
}
