using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CfOrch.Core.Processes;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;

namespace CfOrch.Tests.Ollama;

/// <summary>
/// Memory pressure meets a real (stand-in) Ollama, adopted with priority 2 on an 8 GB simulated GPU, over real HTTP: a
/// more important lease gets the memory of an idle model through Ollama's own unload call, a model in use is never
/// unloaded, nothing is unloaded when unloading cannot make room, and Ollama itself is never signalled.
/// </summary>
public sealed class IdleModelEvictionTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_more_important_lease_gets_the_memory_of_the_largest_idle_model_and_ollama_takes_its_budget_back_after()
    {
        await using var rig = await IdleRigAsync();
        var (ollama, host) = (rig.Ollama, rig.Host);
        var pid = ollama.Pid;

        // 8,192 MB less Ollama's 6,391 MB: 5,000 MB fit only once qwen (4,466 MB) is unloaded; llama alone would not do.
        var granted = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "batch", priority = 1 })).Is(HttpStatusCode.OK).Json;
        var leaseId = granted.GetProperty("lease").GetProperty("lease_id").GetString();

        Assert.Equal(["llama3.2:3b"], await LoadedAsync(ollama));
        var row = Ollama(await host.GetAsync("/api/services"));
        Assert.Equal(["llama3.2:3b"], row.GetProperty("loaded_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        Assert.Equal("running", row.GetProperty("state").GetString());

        // Ollama's lease lends the batch job what it needs of its 6,000 MB budget: 8,192 − 5,000 = 3,192 MB stay Ollama's.
        var ollamaLease = OllamaLease(await host.GetAsync("/api/leases"));
        Assert.Equal(("batch", 2808L), (ollamaLease.GetProperty("yielded_to").GetString(), ollamaLease.GetProperty("lent_mb").GetInt64()));

        // What it lent is the batch job's: a less important lease does not get it.
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 1000, service = "other", priority = 5 })).Is(HttpStatusCode.ServiceUnavailable);
        var gpu = (await host.GetAsync("/api/gpus")).Json.GetProperty("gpus")[0];
        Assert.True(gpu.GetProperty("free_mb").GetInt64() >= 5000, gpu.ToString());

        // Said in the history, the events and the metrics.
        var history = await host.App.PollAsync(
            async () => (await host.GetAsync("/api/leases/history?kind=unloaded")).Json.GetProperty("events") is { ValueKind: JsonValueKind.Array } events && events.GetArrayLength() > 0 ? (object)events[0].Clone() : null,
            "the unload to be written to the history");
        Assert.Equal("unloaded qwen2.5:7b (4.7 GB) from ollama for batch, priority 1 over 2", ((JsonElement)history).GetProperty("reason").GetString());
        // Counted from the state stream, a moment after the change.
        await host.App.PollAsync(
            async () => (await host.GetAsync("/metrics")).Body.Contains("cf_orch_model_unloads_total{service=\"ollama\",model=\"qwen2.5:7b\"} 1", StringComparison.Ordinal) ? "counted" : null,
            "the unload to be counted in /metrics");

        // The batch job ends: Ollama's lease takes its budget back.
        (await host.DeleteAsync($"/api/leases/{leaseId}")).Is(HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, OllamaLease(await host.GetAsync("/api/leases")).GetProperty("yielded_to").ValueKind);

        // Ollama was never stopped or signalled.
        Assert.Equal(pid, ollama.Pid);
        Assert.True(ProcFs.IsRunning(pid));
        Assert.DoesNotContain("STANDIN SIGNAL", ollama.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_an_allocation_names_is_never_unloaded_and_when_the_others_cannot_make_room_nothing_is()
    {
        await using var rig = await IdleRigAsync();
        var (ollama, host) = (rig.Ollama, rig.Host);

        // A chat client holds qwen through an allocation.
        (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "qwen2.5:7b" }, caller = "chat" })).Is(HttpStatusCode.OK);

        // Unloading llama (1,925 MB) alone would leave 3,726 MB: short of 5,000, so nothing is unloaded.
        var refused = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "batch", priority = 1 })).Is(HttpStatusCode.ServiceUnavailable);
        Assert.Contains("Insufficient VRAM on GPU 0", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("ollama", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(["llama3.2:3b", "qwen2.5:7b"], (await LoadedAsync(ollama)).Order(StringComparer.Ordinal));

        // What fits beside qwen is granted by unloading llama.
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 3000, service = "batch", priority = 1 })).Is(HttpStatusCode.OK);
        Assert.Equal(["qwen2.5:7b"], await LoadedAsync(ollama));
        Assert.DoesNotContain("STANDIN SIGNAL", ollama.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_more_important_service_starts_in_the_memory_of_an_idle_model_and_ollama_takes_its_budget_back_when_it_stops()
    {
        await using var rig = await IdleRigAsync(EngineApp.StandInService("worker", 5000, 1, EngineApp.FreePort(), "service --port {port}", "/health"));
        var (ollama, host) = (rig.Ollama, rig.Host);

        var started = (await host.PostAsync("/api/services/worker/start", new { })).Is(HttpStatusCode.OK).Json;

        Assert.Equal("running", started.GetProperty("instance").GetProperty("state").GetString());
        Assert.Equal(["llama3.2:3b"], await LoadedAsync(ollama));
        Assert.Equal("worker", OllamaLease(await host.GetAsync("/api/leases")).GetProperty("yielded_to").GetString());

        (await host.PostAsync("/api/services/worker/stop", new { })).Is(HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, OllamaLease(await host.GetAsync("/api/leases")).GetProperty("yielded_to").ValueKind);
        Assert.DoesNotContain("STANDIN SIGNAL", ollama.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_allocation_prefers_a_loaded_candidate_and_a_model_that_does_not_fit_the_budget_beside_the_loaded_ones_unloads_an_idle_one_first()
    {
        await using var rig = await IdleRigAsync(budgetMb: 8000, pulled: "llama3.2:3b,qwen2.5:7b,mistral:7b");
        var (ollama, host) = (rig.Ollama, rig.Host);

        // mistral is the first candidate, but llama is loaded: llama it is, and nothing is unloaded.
        var first = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "mistral:7b", "llama3.2:3b" }, caller = "chat" })).Is(HttpStatusCode.OK).Json;
        Assert.Equal("llama3.2:3b", first.GetProperty("model").GetString());
        Assert.Equal(2, (await LoadedAsync(ollama)).Count);

        // mistral (3,922 MB) beside 6,391 MB would pass the 8,000 MB budget: the idle qwen goes, never the allocated llama.
        var second = (await host.PostAsync("/api/services/ollama/allocate", new { model_candidates = new[] { "mistral:7b" }, caller = "writer" })).Is(HttpStatusCode.OK).Json;
        Assert.Equal("mistral:7b", second.GetProperty("model").GetString());
        Assert.Equal(["llama3.2:3b"], await LoadedAsync(ollama));
        var history = await host.App.PollAsync(
            async () => (await host.GetAsync("/api/leases/history?kind=unloaded")).Json.GetProperty("events") is { ValueKind: JsonValueKind.Array } events && events.GetArrayLength() > 0 ? (object)events[0].Clone() : null,
            "the unload to be written to the history");
        Assert.Equal("unloaded qwen2.5:7b (4.7 GB) from ollama to load mistral:7b (4.1 GB) for writer within its 8000 MB", ((JsonElement)history).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_lease_as_important_as_ollama_is_refused_without_unloading()
    {
        await using var rig = await IdleRigAsync();
        var (ollama, host) = (rig.Ollama, rig.Host);

        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "batch", priority = 2 })).Is(HttpStatusCode.ServiceUnavailable);

        Assert.Equal(2, (await LoadedAsync(ollama)).Count);
        Assert.Equal(0, (await host.GetAsync("/api/leases/history?kind=unloaded")).Json.GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_loan_is_kept_across_a_restart_of_cf_orch_so_the_gpu_is_not_over_committed_and_it_ends_with_its_lease()
    {
        using var data = new TempDir();
        await using var rig = await IdleRigAsync(settings: new() { ["CfOrch:DataDir"] = data.Path });
        var leaseId = (await rig.Host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "batch", priority = 1, ttl_s = 3600 }))
            .Is(HttpStatusCode.OK).Json.GetProperty("lease").GetProperty("lease_id").GetString();
        Assert.Equal(2808L, OllamaLease(await rig.Host.GetAsync("/api/leases")).GetProperty("lent_mb").GetInt64());

        // cf-orch stops and starts again; Ollama (adopted, outside cf-orch) keeps running with llama loaded.
        await rig.RestartAsync();

        // The batch job's lease is held again, and Ollama, adopted again, lends it the same 2,808 MB: it holds
        // max(1,925 measured, 6,000 − 2,808) = 3,192 MB, and the GPU's books add up to its 8,192 MB.
        var leases = (await rig.Host.GetAsync("/api/leases")).Is(HttpStatusCode.OK).Json.GetProperty("leases");
        Assert.Contains(leases.EnumerateArray(), l => l.GetProperty("lease_id").GetString() == leaseId);
        var ollamaLease = OllamaLease(await rig.Host.GetAsync("/api/leases"));
        Assert.Equal(("batch", 2808L), (ollamaLease.GetProperty("yielded_to").GetString(), ollamaLease.GetProperty("lent_mb").GetInt64()));
        var account = (await rig.Host.GetAsync("/api/gpus")).Json.GetProperty("gpus")[0].GetProperty("account");
        Assert.False(account.GetProperty("overcommitted").GetBoolean(), account.ToString());

        // The batch job ends: Ollama's budget is whole again, and nothing is kept for the next start.
        (await rig.Host.DeleteAsync($"/api/leases/{leaseId}")).Is(HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, OllamaLease(await rig.Host.GetAsync("/api/leases")).GetProperty("yielded_to").ValueKind);
        await rig.RestartAsync();
        Assert.Equal(JsonValueKind.Null, OllamaLease(await rig.Host.GetAsync("/api/leases")).GetProperty("yielded_to").ValueKind);
    }

    /// <summary>The stand-in Ollama and cf-orch with it adopted; disposed in that order, cf-orch first.</summary>
    private sealed class Rig(StandInProcess ollama, string profile, Dictionary<string, string?> settings) : IAsyncDisposable
    {
        public StandInProcess Ollama { get; } = ollama;

        public ApiTestHost Host { get; private set; } = ApiTestHost.Start(profile, settings);

        /// <summary>Stops cf-orch and starts it again with the same profile and settings (and data directory, when they name one).</summary>
        public async Task RestartAsync()
        {
            await Host.DisposeAsync();
            Host = ApiTestHost.Start(profile, settings);
        }

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await Ollama.DisposeAsync();
        }
    }

    /// <summary>
    /// cf-orch with the stand-in adopted as <c>ollama</c> (priority 2, budget <paramref name="budgetMb"/>) beside
    /// <paramref name="otherServices"/>, measured every 0.2 s, a model unused for 1 s being idle; qwen2.5:7b (4,466 MB)
    /// and llama3.2:3b (1,925 MB) loaded by a client and idle by the time it returns.
    /// </summary>
    private static async Task<Rig> IdleRigAsync(string otherServices = "", int budgetMb = 6000, string pulled = "llama3.2:3b,qwen2.5:7b", Dictionary<string, string?>? settings = null)
    {
        var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct, "--models", pulled);
        var all = new Dictionary<string, string?>(settings ?? []) { ["CfOrch:Gpus:PollIntervalSeconds"] = "0.2", ["CfOrch:Ollama:IdleModelSeconds"] = "1" };
        Rig rig;
        try
        {
            rig = new Rig(ollama, EngineApp.Profile(EngineApp.StandInService("ollama", budgetMb, 2, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true), otherServices), all);
        }
        catch
        {
            await ollama.DisposeAsync();
            throw;
        }

        try
        {
            await LoadAsync(ollama, "qwen2.5:7b");
            await LoadAsync(ollama, "llama3.2:3b");
            await WaitUntilIdleAsync(rig.Host, "qwen2.5:7b", "llama3.2:3b");
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    /// <summary>Uses the model once, as a client would: Ollama loads it and keeps it 10 minutes.</summary>
    private static async Task LoadAsync(StandInProcess ollama, string model)
    {
        using var answer = await Http.PostAsJsonAsync(new Uri(ollama.BaseAddress, "/api/generate"), new { model, prompt = "hi", keep_alive = "10m" }, Ct);
        answer.EnsureSuccessStatusCode();
    }

    private static async Task<List<string>> LoadedAsync(StandInProcess ollama)
    {
        using var ps = JsonDocument.Parse(await Http.GetStringAsync(new Uri(ollama.BaseAddress, "/api/ps"), Ct));
        return ps.RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!).ToList();
    }

    /// <summary>Waits until cf-orch has measured these models and last saw each used over 1 s ago (the idle time these tests set).</summary>
    private static async Task WaitUntilIdleAsync(ApiTestHost host, params string[] models) =>
        await host.App.PollAsync(async () =>
        {
            var loaded = Ollama(await host.GetAsync("/api/services")).GetProperty("loaded_models").EnumerateArray().ToList();
            var idleSince = DateTimeOffset.UtcNow.AddSeconds(-1.2).ToUnixTimeMilliseconds() / 1000.0;
            return models.All(name => loaded.Any(m => m.GetProperty("name").GetString() == name && m.GetProperty("last_used_at") is { ValueKind: JsonValueKind.Number } at && at.GetDouble() <= idleSince))
                ? "idle" : null;
        }, "the loaded models to be measured and idle");

    private static JsonElement Ollama(ApiTestHost.Answer answer) =>
        answer.Is(HttpStatusCode.OK).Json.GetProperty("services").EnumerateArray().Single(s => s.GetProperty("service").GetString() == "ollama").Clone();

    private static JsonElement OllamaLease(ApiTestHost.Answer answer) =>
        answer.Is(HttpStatusCode.OK).Json.GetProperty("leases").EnumerateArray().Single(l => l.GetProperty("holder_service").GetString() == "ollama").Clone();
}
