using System.Net;
using CfOrch.Core.Health;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Health;

public sealed class HealthMonitorTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private readonly FakeHttp _http = new();
    private readonly EngineHarness _engine;

    public HealthMonitorTests() =>
        _engine = new EngineHarness(
            new() { ["CfOrch:Probes:IntervalSeconds"] = "2", ["CfOrch:Probes:StartTimeoutSeconds"] = "30", ["CfOrch:Probes:UnhealthyAfter"] = "3", ["CfOrch:Adoption:LostAfter"] = "2" },
            s => s.AddSingleton<IHttpClientFactory>(_http).AddSingleton<CfOrch.Core.Health.ILoopbackPorts>(_http));

    public void Dispose() => _engine.Dispose();

    private HealthMonitor Health => _engine.Get<HealthMonitor>();

    private InstanceRegistry Registry => _engine.Get<InstanceRegistry>();

    [Fact]
    public async Task A_starting_instance_is_probed_every_250_ms_at_first_and_runs_once_its_health_path_answers()
    {
        var key = Add("vllm", InstanceOrigin.Managed, InstanceState.Starting, "http://127.0.0.1:8000", "/health");
        _http.Answer("http://127.0.0.1:8000/health", HttpStatusCode.ServiceUnavailable);

        await ProbeAsync();
        Assert.Equal((InstanceState.Starting, 1), (Registry.Get(key)!.State, Registry.Get(key)!.ProbeAttempts));

        _engine.Time.Advance(TimeSpan.FromMilliseconds(249));
        await ProbeAsync();
        Assert.Equal(1, _http.Requests("http://127.0.0.1:8000/health"));

        _engine.Time.Advance(TimeSpan.FromMilliseconds(1));
        await ProbeAsync();
        Assert.Equal(2, _http.Requests("http://127.0.0.1:8000/health"));

        // Backing off: the next one is 375 ms later.
        _http.Answer("http://127.0.0.1:8000/health", HttpStatusCode.OK);
        _engine.Time.Advance(TimeSpan.FromMilliseconds(374));
        await ProbeAsync();
        Assert.Equal(InstanceState.Starting, Registry.Get(key)!.State);
        _engine.Time.Advance(TimeSpan.FromMilliseconds(1));
        await ProbeAsync();

        var running = Registry.Get(key)!;
        Assert.Equal(InstanceState.Running, running.State);
        Assert.Equal(_engine.Time.GetUtcNow(), running.ReadyAt);
        Assert.Equal(3, running.ProbeAttempts);
        Assert.Contains("ready after 0.6 s (3 probes)", running.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_probe_asks_for_the_health_path_not_slash_health()
    {
        var key = Add("ollama", InstanceOrigin.Adopted, InstanceState.Running, "http://127.0.0.1:11434", "/api/tags");
        _http.Answer("http://127.0.0.1:11434/api/tags", HttpStatusCode.OK);

        await ProbeAsync();

        Assert.Equal(1, _http.Requests("http://127.0.0.1:11434/api/tags"));
        Assert.Equal(0, _http.Requests("http://127.0.0.1:11434/health"));
        Assert.True(Registry.Get(key)!.LastProbe!.Ok);
    }

    [Fact]
    public async Task A_starting_instance_that_never_answers_fails_after_the_start_timeout()
    {
        var key = Add("slow", InstanceOrigin.Managed, InstanceState.Starting, "http://127.0.0.1:9000", "/health");

        for (var i = 0; i < 40 && Registry.Get(key)!.State == InstanceState.Starting; i++)
        {
            await ProbeAsync();
            _engine.Time.Advance(TimeSpan.FromSeconds(1));
        }

        var failed = await Registry.WaitAsync(key, i => i.State == InstanceState.Failed, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.Contains("did not answer /health with 2xx within 30 s", failed.Message, StringComparison.Ordinal);
        Assert.Contains("Connection refused", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Consecutive_failures_make_a_managed_instance_unhealthy_and_one_success_brings_it_back()
    {
        var key = Add("vllm", InstanceOrigin.Managed, InstanceState.Running, "http://127.0.0.1:8000", "/health");

        for (var i = 0; i < 2; i++)
        {
            await ProbeAsync();
            _engine.Time.Advance(TimeSpan.FromSeconds(2));
        }

        Assert.Equal((InstanceState.Running, 2), (Registry.Get(key)!.State, Registry.Get(key)!.ConsecutiveFailures));
        await ProbeAsync();
        Assert.Equal(InstanceState.Unhealthy, Registry.Get(key)!.State);
        Assert.Contains("3 probes of /health failed in a row", Registry.Get(key)!.Message, StringComparison.Ordinal);

        _http.Answer("http://127.0.0.1:8000/health", HttpStatusCode.NoContent);
        _engine.Time.Advance(TimeSpan.FromSeconds(2));
        await ProbeAsync();
        Assert.Equal((InstanceState.Running, 0), (Registry.Get(key)!.State, Registry.Get(key)!.ConsecutiveFailures));
    }

    [Fact]
    public async Task An_adopted_instance_that_stops_answering_is_stopped_and_its_lease_released()
    {
        var lease = Assert.IsType<Admission.Granted>(_engine.Get<LeaseManager>().Request(new LeaseRequest("ollama", "ollama", 0, 4096, 1, HolderOrigin.Adopted) { AlreadyRunning = true })).Lease;
        var key = Add("ollama", InstanceOrigin.Adopted, InstanceState.Running, "http://127.0.0.1:11434", "/api/tags", lease.LeaseId);

        await ProbeAsync();
        Assert.Equal(InstanceState.Running, Registry.Get(key)!.State);
        _engine.Time.Advance(TimeSpan.FromSeconds(2));
        await ProbeAsync();

        var stopped = Registry.Get(key)!;
        Assert.Equal(InstanceState.Stopped, stopped.State);
        Assert.Null(stopped.LeaseId);
        Assert.Contains("stopped answering /api/tags", stopped.Message, StringComparison.Ordinal);
        Assert.Empty(_engine.Get<LeaseManager>().All);
    }

    [Fact]
    public async Task A_hung_endpoint_never_delays_the_others()
    {
        var hung = Add("hung", InstanceOrigin.Managed, InstanceState.Running, "http://127.0.0.1:7001", "/health");
        var fine = Add("fine", InstanceOrigin.Managed, InstanceState.Starting, "http://127.0.0.1:7002", "/health");
        _http.Answer("http://127.0.0.1:7001/health", FakeHttp.Hang);
        _http.Answer("http://127.0.0.1:7002/health", HttpStatusCode.OK);

        Assert.Equal(2, Health.RunDueProbes(TestContext.Current.CancellationToken));

        await Registry.WaitAsync(fine, i => i.State == InstanceState.Running, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.Null(Registry.Get(hung)!.LastProbe);

        // While it hangs it is not probed a second time; its timeout (2 s of the fake clock) then counts as a failure.
        Assert.Equal(0, Health.RunDueProbes(TestContext.Current.CancellationToken));
        _engine.Time.Advance(TimeSpan.FromSeconds(2));
        var timedOut = await Registry.WaitAsync(hung, i => i.LastProbe is not null, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.Contains("did not answer within 2 s", timedOut.LastProbe!.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_probe_loop_sleeps_with_nothing_to_probe_wakes_for_a_new_instance_and_then_follows_its_schedule()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.Null(Health.NextDueIn());
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loop = Health.RunAsync(stop.Token);
        await Eventually.TrueAsync(() => Health.SleepingUntil == DateTimeOffset.MaxValue, "the probe loop to sleep until woken");

        // No timer ticks it: a new instance wakes it, and it is probed at once.
        _http.Answer("http://127.0.0.1:8000/health", HttpStatusCode.ServiceUnavailable);
        var key = Add("vllm", InstanceOrigin.Managed, InstanceState.Starting, "http://127.0.0.1:8000", "/health");
        await Registry.WaitAsync(key, i => i.ProbeAttempts == 1, ct).WaitAsync(Deadline, ct);
        var asleepUntil = _engine.Time.GetUtcNow() + TimeSpan.FromMilliseconds(250);
        await Eventually.TrueAsync(() => Health.SleepingUntil == asleepUntil, "the probe loop to sleep until the next probe");

        // Its next probe waits for the clock (a fake one here): 249 ms is not yet, 250 ms is.
        _engine.Time.Advance(TimeSpan.FromMilliseconds(249));
        Assert.Equal(1, _http.Requests("http://127.0.0.1:8000/health"));
        _engine.Time.Advance(TimeSpan.FromMilliseconds(1));
        await Registry.WaitAsync(key, i => i.ProbeAttempts == 2, ct).WaitAsync(Deadline, ct);

        // Once nothing lives, there is nothing to wait for.
        Registry.Remove(key);
        Assert.Null(Health.NextDueIn());
        await stop.CancelAsync();
        await loop.WaitAsync(Deadline, ct);
    }

    private async Task ProbeAsync() =>
        await Health.ProbeDueAndWaitAsync(TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

    private InstanceKey Add(string service, InstanceOrigin origin, InstanceState state, string url, string healthPath, string? leaseId = null)
    {
        var key = new InstanceKey(service, "local", 0);
        var now = _engine.Time.GetUtcNow();
        Registry.Set(new InstanceSnapshot
        {
            Key = key,
            Origin = origin,
            State = state,
            Url = url,
            HealthPath = healthPath,
            LeaseId = leaseId,
            Since = now,
            StateSince = now,
        });
        return key;
    }
}
