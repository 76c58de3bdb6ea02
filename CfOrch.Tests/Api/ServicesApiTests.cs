using CfOrch.Core.Instances;
using System.Net;
using System.Text.Json;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;

namespace CfOrch.Tests.Api;

public sealed class ServicesApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Profile(int ollamaPort, int workerPort, int bigPort) => EngineApp.Profile(
        EngineApp.StandInService("ollama", 4096, 1, ollamaPort, "ollama --port {port}", "/api/tags", adopt: true),
        EngineApp.StandInService("worker", 2000, 2, workerPort, "service --port {port}", "/health"),
        EngineApp.StandInService("big", 7000, 3, bigPort, "service --port {port}", "/health"));

    [Fact]
    public async Task Rows_carry_origin_pid_health_path_budget_and_measured_mb()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 3000, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));
        await host.PostAsync("/api/services/worker/start", new { }).ContinueWith(t => t.Result.Is(HttpStatusCode.OK), Ct);
        await host.Get<Core.Measurement.UsageMeter>().MeasureAllAsync(Ct);

        var rows = (await host.GetAsync("/api/services")).Is(HttpStatusCode.OK).Json.GetProperty("services").EnumerateArray().ToDictionary(r => r.GetProperty("service").GetString()!);

        var o = rows["ollama"];
        Assert.Equal(("running", "adopted", ollama.Pid, "/api/tags", 4096L, 3000L), (o.GetProperty("state").GetString(), o.GetProperty("origin").GetString(), o.GetProperty("pid").GetInt32(), o.GetProperty("health_path").GetString(), o.GetProperty("budget_mb").GetInt64(), o.GetProperty("measured_mb").GetInt64()));
        var w = rows["worker"];
        Assert.Equal(("running", "managed", "/health", 2000L), (w.GetProperty("state").GetString(), w.GetProperty("origin").GetString(), w.GetProperty("health_path").GetString(), w.GetProperty("budget_mb").GetInt64()));
        Assert.True(w.GetProperty("pid").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Null, w.GetProperty("measured_mb").ValueKind);
        Assert.Equal("local", w.GetProperty("node_id").GetString());
    }

    [Fact]
    public async Task Start_and_stop_a_managed_service_and_read_its_logs()
    {
        var port = EngineApp.FreePort();
        await using var host = ApiTestHost.Start(Profile(EngineApp.FreePort(), port, EngineApp.FreePort()));

        var started = (await host.PostAsync("/api/services/worker/start", null)).Is(HttpStatusCode.OK).Json;
        Assert.True(started.GetProperty("started").GetBoolean());
        Assert.Equal("running", started.GetProperty("instance").GetProperty("state").GetString());
        var again = (await host.PostAsync("/api/services/worker/start", new { gpu_id = 0 })).Is(HttpStatusCode.OK).Json;
        Assert.True(again.GetProperty("warm").GetBoolean());

        var logs = (await host.GetAsync("/api/services/worker/logs?tail=50")).Is(HttpStatusCode.OK).Json;
        Assert.Contains(logs.GetProperty("lines").EnumerateArray(), l => l.GetProperty("text").GetString()!.StartsWith("STANDIN LISTENING", StringComparison.Ordinal));

        var stopped = (await host.PostAsync("/api/services/worker/stop", new { })).Is(HttpStatusCode.OK).Json;
        Assert.Equal("stopped", stopped.GetProperty("stopped")[0].GetProperty("instance").GetProperty("state").GetString());
        Assert.Contains("worker stopped", stopped.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Fact]
    public async Task Restart_stops_the_managed_process_and_starts_a_new_one_but_never_touches_an_adopted_service()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));
        var first = (await host.PostAsync("/api/services/worker/start", null)).Is(HttpStatusCode.OK).Json.GetProperty("instance").GetProperty("pid").GetInt32();

        var restarted = (await host.PostAsync("/api/services/worker/restart", new { gpu_id = 0 })).Is(HttpStatusCode.OK).Json;

        Assert.True(restarted.GetProperty("started").GetBoolean());
        Assert.Equal("running", restarted.GetProperty("instance").GetProperty("state").GetString());
        Assert.NotEqual(first, restarted.GetProperty("instance").GetProperty("pid").GetInt32());
        Assert.False(Directory.Exists($"/proc/{first}"));
        Assert.Single(host.Orchestrator.Leases, l => l.Holder == "worker");

        var adopted = (await host.PostAsync("/api/services/ollama/restart", null)).Is(HttpStatusCode.UnprocessableEntity).Detail;
        Assert.Contains("ollama runs outside cf-orch (adopted): restart it with its own service manager", adopted, StringComparison.Ordinal);
        Assert.False(ollama.HasExited);
        Assert.Contains("unknown service 'nope'", (await host.PostAsync("/api/services/nope/restart", null)).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_an_adopted_service_releases_tracking_only_and_says_so()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));

        var answer = (await host.DeleteAsync("/api/services/ollama?node_id=local")).Is(HttpStatusCode.OK).Json;

        Assert.True(answer.GetProperty("stopped").GetBoolean());
        Assert.Contains("the service itself keeps running", answer.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(ollama.HasExited);
        var logs = (await host.GetAsync("/api/services/ollama/logs")).Is(HttpStatusCode.NotFound);
        Assert.Contains("runs outside cf-orch", logs.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ensure_answers_cf_orchs_fields()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));

        var answer = (await host.PostAsync("/api/services/ollama/ensure", new { node_id = "local", gpu_id = 0, @params = new { model = "llama3.2:3b" } })).Is(HttpStatusCode.OK).Json;

        Assert.Equal(("ollama", "local", 0, "llama3.2:3b", true), (answer.GetProperty("service").GetString(), answer.GetProperty("node_id").GetString(), answer.GetProperty("gpu_id").GetInt32(), answer.GetProperty("model").GetString(), answer.GetProperty("running").GetBoolean()));
        Assert.Equal($"http://127.0.0.1:{ollama.Port}", answer.GetProperty("url").GetString());
    }

    [Fact]
    public async Task Ensure_adopts_an_ollama_that_answers_slower_than_the_periodic_check_waits_instead_of_refusing_its_port()
    {
        // 1.5 s per answer: longer than the periodic adoption check waits (1 s), so only the check before a start sees it.
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct, "--answer-delay-ms", "1500");
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));

        var answer = (await host.PostAsync("/api/services/ollama/ensure", new { node_id = "local", gpu_id = 0 })).Is(HttpStatusCode.OK).Json;

        Assert.Equal($"http://127.0.0.1:{ollama.Port}", answer.GetProperty("url").GetString());
        var instance = Assert.Single(host.Orchestrator.Instances, i => i.Key.Service == "ollama");
        Assert.Equal((InstanceOrigin.Adopted, InstanceState.Running), (instance.Origin, instance.State));
    }

    [Fact]
    public async Task Errors_keep_cf_orchs_status_codes_and_say_why()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));

        Assert.Contains("unknown service 'nope'", (await host.PostAsync("/api/services/nope/allocate", new { model_candidates = new[] { "x" } })).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        // As the original: the status of a service nobody knows is empty, not an error.
        var unknownStatus = (await host.GetAsync("/api/services/nope/status")).Is(HttpStatusCode.OK).Json;
        Assert.Equal(("nope", 0, 0), (unknownStatus.GetProperty("service").GetString(), unknownStatus.GetProperty("instances").GetArrayLength(), unknownStatus.GetProperty("allocations").GetArrayLength()));
        Assert.Contains("unknown node_id 'elsewhere'", (await host.DeleteAsync("/api/services/worker?node_id=elsewhere")).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        Assert.Contains("Allocation 'alloc-123' not found for service 'ollama'", (await host.DeleteAsync("/api/services/ollama/allocations/alloc-123")).Is(HttpStatusCode.NotFound).Detail, StringComparison.Ordinal);
        // A model the running Ollama does not have is refused before anything is started or evicted.
        var noModel = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "mistral:7b" } })).Is(HttpStatusCode.UnprocessableEntity).Detail;
        Assert.Contains("none of the model candidates (mistral:7b) is available on ollama; it has llama3.2:3b", noModel, StringComparison.Ordinal);

        // 'big' (7000 MB) does not fit next to the adopted Ollama (4096 MB) on 8 GB, and an adopted service is never evicted.
        Assert.Contains("model_candidates must be non-empty", (await host.PostAsync("/api/services/big/allocate", new { model_candidates = Array.Empty<string>(), caller = "t" })).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        var full = (await host.PostAsync("/api/services/big/allocate", new { model_candidates = new[] { "m" }, caller = "t" })).Is(HttpStatusCode.ServiceUnavailable).Detail;
        Assert.StartsWith("Insufficient VRAM on GPU 0", full, StringComparison.Ordinal);
        Assert.Contains("cannot fit 7000 MB for big", full, StringComparison.Ordinal);
        Assert.Contains("ollama 4096 MB (adopted, priority 1)", full, StringComparison.Ordinal);
        Assert.Contains("gpu_id must be between 0 and 63", (await host.PostAsync("/api/services/worker/allocate", new { gpu_id = 99 })).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        Assert.Contains("ttl_s must be between", (await host.PostAsync("/api/services/worker/allocate", new { ttl_s = -5 })).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        Assert.Single(host.Orchestrator.Instances);
    }

    [Fact]
    public async Task An_allocate_that_starts_an_ollama_lacking_every_candidate_is_422_and_stops_it_again_and_what_ran_keeps_running()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(
            EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags"),
            EngineApp.StandInService("worker", 2000, 3, EngineApp.FreePort(), "service --port {port}", "/health")));
        (await host.PostAsync("/api/services/worker/allocate", new { model_candidates = new[] { "m" }, caller = "t" })).Is(HttpStatusCode.OK);

        // Ollama does not run yet: it can only be asked for its models once started.
        var refused = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "mistral:7b" }, caller = "t" })).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("none of the model candidates (mistral:7b) is available on ollama; it has llama3.2:3b", refused, StringComparison.Ordinal);
        Assert.Contains("ollama, started for it, is stopped again", refused, StringComparison.Ordinal);
        Assert.DoesNotContain(host.Orchestrator.Instances, i => i.Service == "ollama" && i.IsActive);
        Assert.Equal(["worker"], host.Orchestrator.Leases.Select(l => l.Service));
        Assert.Contains(host.Orchestrator.Instances, i => i is { Service: "worker", State: InstanceState.Running });
    }

    [Fact]
    public async Task An_allocate_whose_start_evicted_a_service_and_is_then_refused_starts_that_service_again()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(
            EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags"),
            EngineApp.StandInService("worker", 5000, 3, EngineApp.FreePort(), "service --port {port}", "/health")));
        (await host.PostAsync("/api/services/worker/start", new { })).Is(HttpStatusCode.OK);
        var before = host.Orchestrator.Instances.Single(i => i is { Service: "worker", IsActive: true });

        // 4,096 MB for Ollama do not fit beside the worker's 5,000 MB on 8 GB: the less important worker is evicted for
        // the start, and Ollama, asked once it runs, has none of the candidates.
        var refused = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "mistral:7b" }, caller = "t" })).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("ollama, started for it, is stopped again; worker, stopped to make room for it, is starting again", refused, StringComparison.Ordinal);
        Assert.DoesNotContain(host.Orchestrator.Instances, i => i.Service == "ollama" && i.IsActive);
        var again = await host.App.WaitForAsync("worker", i => i.State == InstanceState.Running);
        Assert.NotEqual(before.Pid, again.Pid);
        Assert.Equal(["worker"], host.Orchestrator.Leases.Select(l => l.Service));
        await host.Get<CfOrch.Web.Data.HistoryWriter>().FlushAsync(Ct);
        var evicted = (await host.GetAsync("/api/leases/history?kind=evicted")).Json.GetProperty("events")[0];
        Assert.Equal("evicted from GPU 0 for ollama (priority 1 over 3)", evicted.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_start_that_evicted_a_service_and_then_fails_starts_that_service_again()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(
            EngineApp.StandInService("vllm", 4096, 1, EngineApp.FreePort(), "service --port {port} --exit-after-ms 50 --exit-code 3", "/health"),
            EngineApp.StandInService("worker", 5000, 3, EngineApp.FreePort(), "service --port {port}", "/health")));
        (await host.PostAsync("/api/services/worker/start", new { })).Is(HttpStatusCode.OK);
        var before = host.Orchestrator.Instances.Single(i => i is { Service: "worker", IsActive: true });

        // vllm (priority 1) evicts the worker for its start, then exits before it is ready (restart: never).
        var failed = (await host.PostAsync("/api/services/vllm/start", new { })).Is(HttpStatusCode.ServiceUnavailable).Detail;

        Assert.Contains("vllm failed to start: the process exited with code 3 while starting; ", failed, StringComparison.Ordinal);
        Assert.Contains("worker, stopped to make room for it, is starting again", failed, StringComparison.Ordinal);
        var again = await host.App.WaitForAsync("worker", i => i.State == InstanceState.Running);
        Assert.NotEqual(before.Pid, again.Pid);
        Assert.Equal(["worker"], host.Orchestrator.Leases.Select(l => l.Service));
    }

    [Fact]
    public async Task An_allocate_that_found_warm_an_ollama_another_allocate_started_and_then_stopped_again_is_refused_not_handed_a_dead_url()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags")));
        var o = host.Orchestrator;

        // A starts the Ollama; B finds it warm, and is still asking for its models when A's undo stops it.
        var a = await o.EnsureAsync("ollama", null, "mistral:7b", Ct);
        var b = await o.EnsureAsync("ollama", null, "llama3.2:3b", Ct);
        Assert.Equal((true, true), (a.Started, b.Warm));
        await Assert.ThrowsAsync<Core.Orchestration.OrchestrationException>(() => o.AllocateOnAsync(a, ["mistral:7b"], 0, "a", Ct));
        var refused = await Assert.ThrowsAsync<Core.Orchestration.OrchestrationException>(() => o.AllocateOnAsync(b, ["llama3.2:3b"], 0, "b", Ct));

        Assert.Contains("ollama on local GPU 0 stopped while this allocation was made", refused.Message, StringComparison.Ordinal);
        Assert.Empty(o.Allocations);
        Assert.Empty(o.Leases);
        Assert.DoesNotContain(o.Instances, i => i.IsActive);
    }

    [Fact]
    public async Task A_refused_allocate_whose_started_ollama_was_restarted_meanwhile_leaves_the_new_run_and_says_so()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags")));
        var o = host.Orchestrator;
        var started = await o.EnsureAsync("ollama", null, "mistral:7b", Ct);

        // Restarted (a new run) while the allocate that started it was asking for its models.
        var again = await o.RestartAsync("ollama", null, Ct);
        var refused = await Assert.ThrowsAsync<Core.Orchestration.OrchestrationException>(() => o.AllocateOnAsync(started, ["mistral:7b"], 0, "t", Ct));

        Assert.EndsWith("; ollama was started for it and ended meanwhile; the one running now was started since and is left as it is", refused.Message, StringComparison.Ordinal);
        Assert.Contains(o.Instances, i => i is { Service: "ollama", IsServing: true } && i.Since == again.Instance.Since);
    }

    [Fact]
    public async Task An_ollama_started_for_an_allocate_whose_caller_hung_up_is_stopped_again_and_its_lease_released()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, EngineApp.FreePort(), "ollama --port {port}", "/api/tags")));
        var o = host.Orchestrator;
        var started = await o.EnsureAsync("ollama", null, "llama3.2:3b", Ct);
        using var hungUp = new CancellationTokenSource();
        await hungUp.CancelAsync();

        // The caller is gone while its models are checked.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => o.AllocateOnAsync(started, ["llama3.2:3b"], 0, "t", hungUp.Token));

        Assert.Empty(o.Leases);
        Assert.DoesNotContain(o.Instances, i => i.IsActive);
    }

    [Fact]
    public async Task Resident_lists_warm_services()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct);
        await using var host = ApiTestHost.Start(Profile(ollama.Port, EngineApp.FreePort(), EngineApp.FreePort()));

        var residents = (await host.GetAsync("/api/resident")).Is(HttpStatusCode.OK).Json.GetProperty("residents");

        var ollamaRow = Assert.Single(residents.EnumerateArray());
        Assert.Equal(("ollama", "local"), (ollamaRow.GetProperty("service").GetString(), ollamaRow.GetProperty("node_id").GetString()));
        Assert.True(ollamaRow.GetProperty("first_seen").GetDouble() > 1.7e9);
    }
}
