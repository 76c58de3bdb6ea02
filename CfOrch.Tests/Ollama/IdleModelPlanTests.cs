using CfOrch.Core.Allocations;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Ollama;

/// <summary>
/// Which of an Ollama's models may be unloaded for a more important lease (on the fake clock): idle ones only — no
/// allocation names them and their expiry has not moved for the idle time — largest first, only as many as make room,
/// and none at all when even every idle model would not.
/// </summary>
public sealed class IdleModelPlanTests : IDisposable
{
    private const int OllamaPid = 4242;
    private readonly EngineHarness _engine = new(new() { ["CfOrch:Ollama:IdleModelSeconds"] = "60" });
    private readonly InstanceKey _ollama = new("ollama", "local", 0);

    public void Dispose() => _engine.Dispose();

    private IdleModelEviction Eviction => _engine.Get<IdleModelEviction>();

    private DateTimeOffset Now => _engine.Time.GetUtcNow();

    [Fact]
    public void Idle_models_are_unloaded_largest_first_and_only_as_many_as_make_room()
    {
        // 8,192 MB GPU: Ollama (priority 2, budget 6,000) holds 4,466 + 1,926 + 500 MB; 1,300 MB are left.
        Ollama(priority: 2, ("qwen2.5:7b", 4466), ("llama3.2:3b", 1926), ("nomic-embed-text", 500));
        _engine.Time.Advance(TimeSpan.FromSeconds(60));

        Assert.Equal(["qwen2.5:7b"], Eviction.Plan(Request(3000, priority: 1)).Select(u => u.Model.Name));
        Assert.Equal(["qwen2.5:7b"], Eviction.Plan(Request(5700, priority: 1)).Select(u => u.Model.Name));
        Assert.Equal(["qwen2.5:7b", "llama3.2:3b"], Eviction.Plan(Request(5800, priority: 1)).Select(u => u.Model.Name));
        Assert.Equal(["qwen2.5:7b", "llama3.2:3b", "nomic-embed-text"], Eviction.Plan(Request(8000, priority: 1)).Select(u => u.Model.Name));

        // Not for as important a request, nor one that fits anyway, nor one that all idle models could not make room for.
        Assert.Empty(Eviction.Plan(Request(5000, priority: 2)));
        Assert.Empty(Eviction.Plan(Request(1000, priority: 1)));
        Assert.Empty(Eviction.Plan(Request(8193, priority: 1)));
    }

    [Fact]
    public void A_model_used_within_the_idle_time_or_named_by_an_allocation_is_never_unloaded()
    {
        Ollama(priority: 2, ("qwen2.5:7b", 4466), ("llama3.2:3b", 1926));
        _engine.Time.Advance(TimeSpan.FromSeconds(59));

        // Loaded 59 s ago: still in use.
        Assert.Empty(Eviction.Plan(Request(3000, priority: 1)));
        _engine.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["qwen2.5:7b"], Eviction.Plan(Request(3000, priority: 1)).Select(u => u.Model.Name));

        // A request to qwen pushed its expiry forward: used again, so only llama is idle (and it makes room too).
        Measure(("qwen2.5:7b", 4466, Now.AddMinutes(5)), ("llama3.2:3b", 1926, Now.AddMinutes(4)));
        Assert.Equal(["llama3.2:3b"], Eviction.Plan(Request(3000, priority: 1)).Select(u => u.Model.Name));

        // An allocation names llama: nothing idle is left, and nothing is planned.
        _engine.Get<AllocationTable>().Add(new Allocation
        {
            AllocationId = "alloc-1", Service = "ollama", NodeId = "local", GpuIndex = 0, Model = "llama3.2:3b",
            Url = "http://127.0.0.1:11434", Caller = "chat", CreatedAt = Now,
        });
        Assert.Empty(Eviction.Plan(Request(3000, priority: 1)));
    }

    [Fact]
    public void A_model_is_dated_by_the_reading_before_it()
    {
        var t0 = Now;
        var first = new LoadedModel("m", 100, t0.AddMinutes(5)).Following(null, t0);
        Assert.Equal(t0, first.LastUsedAt);

        // The same expiry later: still last used at t0. A later expiry: used now. Kept for ever since: used now.
        var same = new LoadedModel("m", 100, t0.AddMinutes(5)).Following(first, t0.AddMinutes(1));
        Assert.Equal(t0, same.LastUsedAt);
        var pushed = new LoadedModel("m", 100, t0.AddMinutes(7)).Following(same, t0.AddMinutes(2));
        Assert.Equal(t0.AddMinutes(2), pushed.LastUsedAt);
        var forever = new LoadedModel("m", 100, null).Following(pushed, t0.AddMinutes(3));
        Assert.Equal(t0.AddMinutes(3), forever.LastUsedAt);
        Assert.Equal(t0.AddMinutes(3), new LoadedModel("m", 100, null).Following(forever, t0.AddMinutes(9)).LastUsedAt);

        // A request with a shorter keep_alive moves the expiry back: used too.
        Assert.Equal(t0.AddMinutes(4), new LoadedModel("m", 100, t0.AddMinutes(6)).Following(pushed, t0.AddMinutes(4)).LastUsedAt);
    }

    [Fact]
    public void A_model_kept_for_ever_or_past_its_expiry_and_still_loaded_is_never_idle()
    {
        Ollama(priority: 2, ("qwen2.5:7b", 4466), ("llama3.2:3b", 1926));

        // qwen is kept for ever (keep_alive -1); llama is past its expiry yet loaded (a request keeps it busy).
        Measure(("qwen2.5:7b", 4466, null), ("llama3.2:3b", 1926, Now.AddMinutes(1)));
        _engine.Time.Advance(TimeSpan.FromMinutes(2));
        Measure(("qwen2.5:7b", 4466, null), ("llama3.2:3b", 1926, Now.AddMinutes(-1)));
        _engine.Time.Advance(TimeSpan.FromMinutes(2));

        Assert.Empty(Eviction.Plan(Request(3000, priority: 1)));
    }

    [Theory]
    [InlineData("unload_idle_models: false", new string[0])]
    [InlineData("unload_idle_models: true", new[] { "qwen2.5:7b" })]
    [InlineData("", new[] { "qwen2.5:7b" })]
    public void A_profile_that_says_unload_idle_models_false_keeps_every_model(string setting, string[] unloaded)
    {
        var path = _engine.Data.Write("keep.yaml", $"""
            schema_version: 1
            name: keep
            vram_total_mb: 8192
            services:
              ollama:
                max_mb: 6000
                priority: 2
                managed:
                  type: process
                  adopt: true
                  exec_path: /usr/local/bin/ollama
                  port: 11434
                  health_path: /api/tags
                  {setting}
            """);
        using var engine = new EngineHarness(new() { ["CfOrch:Profile"] = path });
        var eviction = engine.Get<IdleModelEviction>();
        var lease = Assert.IsType<Admission.Granted>(engine.Get<LeaseManager>().Request(new LeaseRequest("ollama", "ollama", 0, 6000, 2, HolderOrigin.Adopted) { AlreadyRunning = true })).Lease;
        engine.SetUsage(0, OllamaPid, 6392, "ollama");
        engine.Get<InstanceRegistry>().Set(Instance(engine, lease.LeaseId, 6392, [new LoadedModel("qwen2.5:7b", 4466, engine.Time.GetUtcNow().AddMinutes(10), engine.Time.GetUtcNow())]));
        engine.Get<LeaseManager>().UpdateMeasured(lease.LeaseId, 6392);
        engine.Time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(unloaded, eviction.Plan(Request(3000, priority: 1)).Select(u => u.Model.Name));
    }

    private static LeaseRequest Request(long mb, int priority) => new("vllm", "vllm", 0, mb, priority, HolderOrigin.Managed);

    /// <summary>An adopted Ollama on GPU 0 with these models loaded now (expiring in 5 minutes), measured and shown on the GPU.</summary>
    private void Ollama(int priority, params (string Name, long Mb)[] models)
    {
        var leases = _engine.Get<LeaseManager>();
        var lease = Assert.IsType<Admission.Granted>(leases.Request(new LeaseRequest("ollama", "ollama", 0, 6000, priority, HolderOrigin.Adopted) { AlreadyRunning = true })).Lease;
        _engine.Get<InstanceRegistry>().Set(Instance(_engine, lease.LeaseId, 0, []));
        Measure(models.Select(m => (m.Name, m.Mb, (DateTimeOffset?)Now.AddMinutes(5))).ToArray());
    }

    /// <summary>What a measurement records: the models (dated by the reading before), their sum on the instance, its lease and the GPU.</summary>
    private void Measure(params (string Name, long Mb, DateTimeOffset? Expires)[] models)
    {
        var total = models.Sum(m => m.Mb);
        var instance = _engine.Get<InstanceRegistry>().Update(_ollama, i => i with
        {
            MeasuredMb = total,
            LoadedModels = models.Select(m => new LoadedModel(m.Name, m.Mb, m.Expires).Following(i.LoadedModels.FirstOrDefault(p => p.Name == m.Name), Now)).ToList(),
        })!;
        _engine.Get<LeaseManager>().UpdateMeasured(instance.LeaseId!, total);
        _engine.SetUsage(0, OllamaPid, total, "ollama");
    }

    private static InstanceSnapshot Instance(EngineHarness engine, string leaseId, long measuredMb, IReadOnlyList<LoadedModel> models) => new()
    {
        Key = new InstanceKey("ollama", "local", 0),
        Origin = InstanceOrigin.Adopted,
        State = InstanceState.Running,
        Url = "http://127.0.0.1:11434",
        HealthPath = "/api/tags",
        BudgetMb = 6000,
        LeaseId = leaseId,
        MeasuredMb = measuredMb,
        LoadedModels = models,
        Since = engine.Time.GetUtcNow(),
        StateSince = engine.Time.GetUtcNow(),
    };
}
