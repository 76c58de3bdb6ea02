using System.Net;
using CfOrch.Core.Adoption;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Adoption;

/// <summary>Adoption, allocation and the idle/stop rules, with Ollama answering through a fake HTTP handler.</summary>
public sealed class AdoptionAndAllocationTests : IDisposable
{
    private const string Tags = "http://127.0.0.1:11434/api/tags";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private readonly FakeHttp _http = new();
    private readonly EngineHarness _engine;

    public AdoptionAndAllocationTests()
    {
        var profile = new TempDir();
        var path = profile.Write("p.yaml", """
            schema_version: 1
            name: test
            vram_total_mb: 8192
            services:
              ollama:
                max_mb: 4096
                priority: 1
                idle_stop_after_s: 60
                managed:
                  type: process
                  adopt: true
                  exec_path: /usr/local/bin/ollama
                  args_template: serve
                  port: 11434
                  host_port: 11434
                  health_path: /api/tags
              vllm:
                max_mb: 6000
                priority: 1
                managed:
                  type: docker
                  image: vllm/vllm-openai:latest
                  port: 8000
                  host_port: 8000
              budget-only:
                max_mb: 100
                priority: 3
            """);
        _engine = new EngineHarness(
            new() { ["CfOrch:Profile"] = path, ["CfOrch:Adoption:LostAfter"] = "2", ["CfOrch:Docker:Endpoint"] = "unix:///nonexistent/docker.sock" },
            s => s.AddSingleton<IHttpClientFactory>(_http).AddSingleton<CfOrch.Core.Health.ILoopbackPorts>(_http));
    }

    public void Dispose() => _engine.Dispose();

    private Orchestrator Orchestrator => _engine.Get<Orchestrator>();

    [Fact]
    public async Task An_ollama_that_already_answers_is_adopted_running_with_a_lease_of_its_budget()
    {
        _http.Answer(Tags, HttpStatusCode.OK);

        Assert.Equal(1, await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken));

        var ollama = Assert.Single(Orchestrator.Instances);
        Assert.Equal((InstanceOrigin.Adopted, InstanceState.Running, "http://127.0.0.1:11434"), (ollama.Origin, ollama.State, ollama.Url));
        var lease = Assert.Single(Orchestrator.Leases);
        Assert.Equal((lease.LeaseId, 4096L, HolderOrigin.Adopted), (ollama.LeaseId, lease.Mb, lease.Origin));
        Assert.Equal(0, await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Nothing_is_adopted_while_nothing_answers()
    {
        Assert.Equal(0, await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken));

        Assert.Empty(Orchestrator.Instances);
        Assert.Equal(1, _http.Requests(Tags));
    }

    [Fact]
    public async Task Allocating_on_an_adopted_ollama_is_warm_and_the_last_release_makes_it_idle()
    {
        _http.Answer(Tags, HttpStatusCode.OK);

        var first = await Orchestrator.AllocateAsync("ollama", ["llama3.2:3b"], null, 0, "test-client", TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        var second = await Orchestrator.AllocateAsync("ollama", ["llama3.2:3b"], null, 0, "other", TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.True(first.Warm);
        Assert.False(first.Started);
        Assert.Equal(("http://127.0.0.1:11434", "llama3.2:3b", 0), (first.Allocation.Url, first.Allocation.Model, first.Allocation.GpuIndex));
        Assert.Equal(2, second.Instance.Allocations);

        Orchestrator.ReleaseAllocation("ollama", first.Allocation.AllocationId);
        Assert.Equal(InstanceState.Running, Orchestrator.Instances.Single().State);
        Orchestrator.ReleaseAllocation("ollama", second.Allocation.AllocationId);
        Assert.Equal((InstanceState.Idle, 0), (Orchestrator.Instances.Single().State, Orchestrator.Instances.Single().Allocations));

        var again = await Orchestrator.AllocateAsync("ollama", [], null, 0, "x", TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.Equal(InstanceState.Running, again.Instance.State);
    }

    [Fact]
    public async Task An_allocation_expires_with_its_ttl_and_an_adopted_service_is_never_stopped_for_idleness()
    {
        _http.Answer(Tags, HttpStatusCode.OK);
        var result = await Orchestrator.AllocateAsync("ollama", [], null, 30, "ttl", TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        _engine.Time.Advance(TimeSpan.FromSeconds(31));
        await Orchestrator.SweepAsync(TestContext.Current.CancellationToken);
        Assert.Empty(Orchestrator.Allocations);
        Assert.Equal(InstanceState.Idle, Orchestrator.Instances.Single().State);

        _engine.Time.Advance(TimeSpan.FromSeconds(120));
        await Orchestrator.SweepAsync(TestContext.Current.CancellationToken);
        Assert.Equal(InstanceState.Idle, Orchestrator.Instances.Single().State);
        Assert.Throws<OrchestrationException>(() => Orchestrator.ReleaseAllocation("ollama", result.Allocation.AllocationId));
    }

    [Fact]
    public async Task A_start_pinned_to_a_gpu_the_node_lacks_is_refused_naming_the_pin()
    {
        var path = _engine.Data.Write("pinned.yaml", Components.StartCheckTests.PinnedProfile);
        using var engine = new EngineHarness(new() { ["CfOrch:Profile"] = path });

        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => engine.Get<Orchestrator>().EnsureAsync("whisper", null, null, TestContext.Current.CancellationToken));

        Assert.Equal(OrchestrationError.NoCapacity, refused.Error);
        Assert.Equal("whisper is pinned to GPU 1, which this node does not have (it has 0).", refused.Message);
        Assert.Empty(engine.Get<Orchestrator>().Leases);
    }

    [Theory]
    [InlineData(false, InstanceState.Stopped)]
    [InlineData(true, InstanceState.Idle)]
    public async Task A_managed_service_idle_past_idle_stop_after_s_is_stopped_unless_it_is_always_on(bool alwaysOn, InstanceState expected)
    {
        var path = _engine.Data.Write("idle.yaml", $"""
            schema_version: 1
            name: idle-test
            services:
              whisper:
                max_mb: 1000
                priority: 2
                idle_stop_after_s: 60
                always_on: {(alwaysOn ? "true" : "false")}
                managed:
                  type: process
                  exec_path: /usr/bin/true
                  port: 9000
            """);
        using var engine = new EngineHarness(new() { ["CfOrch:Profile"] = path });
        var orchestrator = engine.Get<Orchestrator>();
        var key = new InstanceKey("whisper", "local", 0);
        engine.Get<InstanceRegistry>().Set(new InstanceSnapshot
        {
            Key = key,
            Origin = InstanceOrigin.Managed,
            State = InstanceState.Idle,
            Url = "http://127.0.0.1:9000",
            HealthPath = "/health",
            BudgetMb = 1000,
            Since = engine.Time.GetUtcNow(),
            StateSince = engine.Time.GetUtcNow(),
        });

        engine.Time.Advance(TimeSpan.FromSeconds(59));
        await orchestrator.SweepAsync(TestContext.Current.CancellationToken);
        Assert.Equal(InstanceState.Idle, orchestrator.Instances.Single().State);

        engine.Time.Advance(TimeSpan.FromSeconds(2));
        await orchestrator.SweepAsync(TestContext.Current.CancellationToken);
        var instance = orchestrator.Instances.Single();
        Assert.Equal(expected, instance.State);
        if (!alwaysOn)
        {
            Assert.Contains("idle for 60 s", instance.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Stopping_an_adopted_service_releases_tracking_only_and_it_is_not_taken_straight_back()
    {
        _http.Answer(Tags, HttpStatusCode.OK);
        await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken);

        var outcome = Assert.Single(await Orchestrator.StopAsync("ollama", null, TestContext.Current.CancellationToken));

        Assert.Contains("the service itself keeps running", outcome.Message, StringComparison.Ordinal);
        Assert.Equal(InstanceState.Stopped, outcome.Instance.State);
        Assert.Empty(Orchestrator.Leases);
        Assert.Equal(0, await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken));

        // Once it has gone away and come back, it is adopted again.
        _http.Refuse(Tags);
        await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken);
        _http.Answer(Tags, HttpStatusCode.OK);
        Assert.Equal(1, await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task An_adopted_service_that_does_not_fit_is_tracked_without_a_lease_and_gets_one_when_room_appears()
    {
        // As important as Ollama: its lease is not revoked to make room.
        var client = await Orchestrator.RequestLeaseAsync("batch-job", 0, 6000, 1, null, TestContext.Current.CancellationToken);
        _http.Answer(Tags, HttpStatusCode.OK);

        await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken);
        var ollama = Assert.Single(Orchestrator.Instances);
        Assert.Null(ollama.LeaseId);
        Assert.Contains("adopted without a lease", ollama.Message, StringComparison.Ordinal);
        Assert.Contains("batch-job 6000 MB", ollama.Message, StringComparison.Ordinal);

        // Tracked but without its lease: the periodic pass keeps trying, it does not sleep.
        Assert.False(_engine.Get<AdoptionService>().NothingToCheck);

        Orchestrator.ReleaseLease(client.LeaseId);
        await _engine.Get<AdoptionService>().CheckAllAsync(TestContext.Current.CancellationToken);
        Assert.NotNull(Orchestrator.Instances.Single().LeaseId);
        Assert.True(_engine.Get<AdoptionService>().NothingToCheck);
    }

    [Fact]
    public async Task The_periodic_pass_sleeps_while_every_adoptable_service_is_tracked_and_is_told_when_that_changes()
    {
        var adoption = _engine.Get<AdoptionService>();
        var told = 0;
        adoption.Changed += () => Interlocked.Increment(ref told);

        // Not tracked yet: passes must look for it.
        Assert.False(adoption.NothingToCheck);

        _http.Answer(Tags, HttpStatusCode.OK);
        Assert.Equal(1, await adoption.CheckAllAsync(TestContext.Current.CancellationToken));
        Assert.True(adoption.NothingToCheck);
        Assert.True(told > 0);

        // Released by the user: watched again, until it stops answering.
        adoption.Release("ollama");
        Assert.False(adoption.NothingToCheck);
        adoption.Unrelease("ollama");

        // Gone (its instance ends): told, and looked for again.
        var before = told;
        await Orchestrator.StopAsync("ollama", null, TestContext.Current.CancellationToken);
        Assert.True(told > before);
        Assert.False(adoption.NothingToCheck);
    }

    [Fact]
    public async Task Services_cf_orch_cannot_start_say_why()
    {
        var docker = await Assert.ThrowsAsync<OrchestrationException>(() => Orchestrator.EnsureAsync("vllm", null, null, TestContext.Current.CancellationToken));
        Assert.Equal(OrchestrationError.NotStartable, docker.Error);
        Assert.Equal("vllm cannot start: Docker engine not reachable at unix:///nonexistent/docker.sock: no socket at /nonexistent/docker.sock (is dockerd running?)", docker.Message);

        var budgetOnly = await Assert.ThrowsAsync<OrchestrationException>(() => Orchestrator.EnsureAsync("budget-only", null, null, TestContext.Current.CancellationToken));
        Assert.Contains("no managed block", budgetOnly.Message, StringComparison.Ordinal);

        var unknown = await Assert.ThrowsAsync<OrchestrationException>(() => Orchestrator.EnsureAsync("ollamma", null, null, TestContext.Current.CancellationToken));
        Assert.Equal(OrchestrationError.UnknownService, unknown.Error);
        Assert.Contains("budget-only, ollama, vllm", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_leases_are_refused_with_what_holds_the_gpu_and_released_by_id()
    {
        var lease = await Orchestrator.RequestLeaseAsync("script", 0, 5000, 3, TimeSpan.FromMinutes(5), TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<OrchestrationException>(async () => await Orchestrator.RequestLeaseAsync("other", 0, 5000, 3, null, TestContext.Current.CancellationToken));
        Assert.Equal(OrchestrationError.NoCapacity, refused.Error);
        Assert.Contains("script 5000 MB (client, priority 3)", refused.Message, StringComparison.Ordinal);

        // A more important request takes its place: the client's memory is not really in use.
        var taken = await Orchestrator.RequestLeaseAsync("other", 0, 5000, 1, null, TestContext.Current.CancellationToken);
        Assert.Null(Orchestrator.Leases.FirstOrDefault(l => l.LeaseId == lease.LeaseId));
        Assert.Equal(OrchestrationError.NotFound, Assert.Throws<OrchestrationException>(() => Orchestrator.ReleaseLease(lease.LeaseId)).Error);
        lease = taken;
        Assert.Equal(OrchestrationError.NotFound, (await Assert.ThrowsAsync<OrchestrationException>(async () => await Orchestrator.RequestLeaseAsync("x", 7, 1, 1, null, TestContext.Current.CancellationToken))).Error);

        Assert.Equal(lease.LeaseId, Orchestrator.ReleaseLease(lease.LeaseId).LeaseId);
        Assert.Equal(OrchestrationError.NotFound, Assert.Throws<OrchestrationException>(() => Orchestrator.ReleaseLease(lease.LeaseId)).Error);
    }
}
