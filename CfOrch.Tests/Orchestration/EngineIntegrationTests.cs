using System.Net;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Measurement;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Processes;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Orchestration;

/// <summary>
/// The engine's acceptance: the real app in process, a stand-in Ollama on 127.0.0.1, real child processes, SQLite.
/// </summary>
public sealed class EngineIntegrationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_ollama_already_running_is_adopted_at_start_up_and_no_process_is_started()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 3000, Ct);
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)));

        // Start-up adoption runs before the host serves anything: no polling needed.
        var instance = Assert.Single(app.Orchestrator.Instances);
        Assert.Equal((InstanceOrigin.Adopted, InstanceState.Running), (instance.Origin, instance.State));
        Assert.Equal($"http://127.0.0.1:{ollama.Port}", instance.Url);
        Assert.Equal(ollama.Pid, instance.Pid);
        Assert.Empty(app.Factory.Services.GetRequiredService<ManagedProcesses>().All);
        var lease = Assert.Single(app.Orchestrator.Leases);
        Assert.Equal((4096L, HolderOrigin.Adopted, instance.LeaseId), (lease.Mb, lease.Origin, lease.LeaseId));
        Assert.Contains("STANDIN REQUEST GET /api/tags", ollama.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("GET /health", ollama.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_ollama_not_running_is_started_from_its_process_spec_and_runs_once_its_health_path_answers()
    {
        var port = EngineApp.FreePort();
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, port, "ollama --port {port} --startup-delay-ms 300", "/api/tags", adopt: true)));
        Assert.Empty(app.Orchestrator.Instances);
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var subscription = app.Orchestrator.Subscribe(watch.Token);
        var states = CollectStatesAsync(subscription, "ollama", watch.Token);

        var result = await app.Orchestrator.EnsureAsync("ollama", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct);

        Assert.True(result.Started);
        Assert.False(result.Warm);
        Assert.Equal((InstanceOrigin.Managed, InstanceState.Running), (result.Instance.Origin, result.Instance.State));
        var pid = result.Instance.Pid!.Value;
        Assert.Contains("CfOrch.StandIns", await File.ReadAllTextAsync($"/proc/{pid}/cmdline", Ct), StringComparison.Ordinal);
        Assert.Equal(pid, ProcFs.ListeningPids(port).Single());
        await watch.CancelAsync();
        var seen = await states;
        Assert.Equal([InstanceState.Starting, InstanceState.Running], seen.Distinct());
        Assert.True(result.Instance.ProbeAttempts >= 2, $"probed {result.Instance.ProbeAttempts} times: the 300 ms start-up delay was not waited out");
        Assert.True(result.Instance.ReadyAt - result.Instance.Since < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task The_adopted_ollamas_lease_blocks_what_does_not_fit_admits_what_does_and_grows_with_its_measured_size_vram()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 3000, Ct);
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)));
        await app.WaitForAdoptedAsync("ollama");

        var refused = await Assert.ThrowsAsync<OrchestrationException>(async () => await app.Orchestrator.RequestLeaseAsync("comfyui-batch", 0, 5000, 2, null, TestContext.Current.CancellationToken));
        Assert.Equal(OrchestrationError.NoCapacity, refused.Error);
        Assert.Contains("ollama 4096 MB (adopted, priority 1)", refused.Message, StringComparison.Ordinal);
        var fits = await app.Orchestrator.RequestLeaseAsync("whisper", 0, 4000, 2, null, TestContext.Current.CancellationToken);
        app.Orchestrator.ReleaseLease(fits.LeaseId);

        // Ollama loads a bigger model: /api/ps reports 6000 MB of size_vram, above its 4096 MB budget.
        await ollama.SetPsAsync(6000, Ct, "qwen2.5:14b");
        await app.Factory.Services.GetRequiredService<UsageMeter>().MeasureAllAsync(Ct);

        var lease = Assert.Single(app.Orchestrator.Leases);
        Assert.Equal((4096L, 6000L, 6000L), (lease.Mb, lease.MeasuredMb!.Value, lease.HeldMb));
        Assert.Equal(6000, app.Orchestrator.Instances.Single().MeasuredMb);
        await Assert.ThrowsAsync<OrchestrationException>(async () => await app.Orchestrator.RequestLeaseAsync("whisper", 0, 4000, 2, null, TestContext.Current.CancellationToken));
        await app.Orchestrator.RequestLeaseAsync("whisper", 0, 2192, 2, null, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_start_that_is_not_ready_yet_can_be_stopped_and_says_so()
    {
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("comfyui", 2000, 2, EngineApp.FreePort(), "service --port {port} --startup-delay-ms 30000", "/health")));
        var ensure = app.Orchestrator.EnsureAsync("comfyui", null, null, Ct);
        var starting = await app.WaitForAsync("comfyui", i => i is { State: InstanceState.Starting, Pid: not null });

        await app.Orchestrator.StopAsync("comfyui", null, Ct).WaitAsync(EngineApp.Deadline, Ct);

        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => ensure.WaitAsync(EngineApp.Deadline, Ct));
        Assert.StartsWith("comfyui was stopped before it was ready", refused.Message, StringComparison.Ordinal);
        Assert.False(ProcFs.IsRunning(starting.Pid!.Value));
        Assert.Empty(app.Orchestrator.Leases);
    }

    [Fact]
    public async Task A_stop_whose_caller_gives_up_still_ends_the_process_and_releases_the_lease()
    {
        // It ignores SIGTERM: the stop takes the whole grace (3 s) and then SIGKILL.
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("comfyui", 2000, 2, EngineApp.FreePort(), "service --port {port} --ignore-sigterm", "/health")));
        var pid = (await app.Orchestrator.EnsureAsync("comfyui", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance.Pid!.Value;

        using var impatient = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        impatient.CancelAfter(TimeSpan.FromMilliseconds(200));
        var outcome = Assert.Single(await app.Orchestrator.StopAsync("comfyui", null, impatient.Token).WaitAsync(EngineApp.Deadline, Ct));

        Assert.Equal(InstanceState.Stopped, outcome.Instance.State);
        Assert.Empty(app.Orchestrator.Leases);
        Assert.False(ProcFs.IsRunning(pid));
    }

    [Fact]
    public async Task When_a_service_exits_on_its_own_what_is_left_of_its_process_group_is_stopped_too()
    {
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("vllm", 2000, 2, EngineApp.FreePort(), "service --port {port} --child", "/health")));
        var started = (await app.Orchestrator.EnsureAsync("vllm", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;
        var childLine = await app.PollAsync(() => app.Orchestrator.Logs(started.Key)?.Tail(50).FirstOrDefault(l => l.Text.StartsWith("STANDIN CHILD ", StringComparison.Ordinal)), "the stand-in's child");
        var child = int.Parse(childLine.Text["STANDIN CHILD ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(ProcFs.IsRunning(child));

        var failed = await app.CrashAsync(started, 3);

        Assert.Equal(3, failed.ExitCode);
        Assert.Empty(app.Orchestrator.Leases);
        await app.PollAsync(() => ProcFs.IsRunning(child) ? null : "gone", "the child of the exited service to be stopped");
    }

    [Fact]
    public async Task A_simulated_gpu_shows_ollamas_size_vram_as_used_by_its_process_and_follows_it_down()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 3000, Ct);
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)));
        await app.WaitForAdoptedAsync("ollama");
        var meter = app.Factory.Services.GetRequiredService<UsageMeter>();
        var gpus = app.Factory.Services.GetRequiredService<Core.Gpus.GpuMonitor>();
        var before = gpus.Current.Gpus[0];
        var baseUsed = before.UsedMb - before.Processes.Sum(p => p.UsedMb ?? 0);

        await meter.MeasureAllAsync(Ct);
        var gpu = gpus.Current.Gpus[0];
        Assert.Equal((ollama.Pid, 3000L, "ollama"), gpu.Processes.Select(p => (p.Pid, p.UsedMb!.Value, p.Name!)).Single());
        Assert.Equal(baseUsed + 3000, gpu.UsedMb);
        // What the GPU shows for Ollama is Ollama's, not memory of programs cf-orch does not track.
        Assert.Equal(baseUsed, app.Orchestrator.Accounts.Single().ExternalMb);

        // The reflection is never read back as a measurement: when Ollama unloads, the figure follows it down at once.
        await ollama.SetPsAsync(1000, Ct, "llama3.2:1b");
        await meter.MeasureAllAsync(Ct);
        Assert.Equal(1000, app.Orchestrator.Instances.Single().MeasuredMb);
        Assert.Equal(baseUsed + 1000, gpus.Current.Gpus[0].UsedMb);

        await ollama.SetPsAsync(0, Ct);
        await meter.MeasureAllAsync(Ct);
        Assert.Empty(gpus.Current.Gpus[0].Processes);
        Assert.Equal(baseUsed, gpus.Current.Gpus[0].UsedMb);
    }

    [Fact]
    public async Task A_killed_ollama_is_stopped_and_its_lease_released_within_seconds_and_adopted_again_when_it_returns()
    {
        var port = EngineApp.FreePort();
        var ollama = await StandInProcess.StartOllamaAsync(port, 3000, Ct);
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, port, "ollama --port {port}", "/api/tags", adopt: true)));
        await app.WaitForAdoptedAsync("ollama");

        await ollama.KillAsync();
        await ollama.DisposeAsync();
        var killedAt = DateTime.UtcNow;
        var stopped = await app.WaitForAsync("ollama", i => i.State == InstanceState.Stopped);

        Assert.True(DateTime.UtcNow - killedAt < TimeSpan.FromSeconds(10), $"took {DateTime.UtcNow - killedAt}");
        Assert.Null(stopped.LeaseId);
        Assert.Empty(app.Orchestrator.Leases);
        Assert.Contains("stopped answering /api/tags", stopped.Message, StringComparison.Ordinal);

        await using var again = await StandInProcess.StartOllamaAsync(port, 3000, Ct);
        var readopted = await app.WaitForAsync("ollama", i => i.State == InstanceState.Running);
        Assert.Equal((InstanceOrigin.Adopted, again.Pid), (readopted.Origin, readopted.Pid));
        Assert.Single(app.Orchestrator.Leases);
    }

    [Fact]
    public async Task A_managed_service_is_evicted_for_a_more_important_one_its_process_group_gone_and_the_newcomer_granted()
    {
        var comfyPort = EngineApp.FreePort();
        var vllmPort = EngineApp.FreePort();
        await using var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("comfyui", 5000, 4, comfyPort, "service --port {port} --health-path /system_stats --child", "/system_stats"),
            EngineApp.StandInService("vllm", 5000, 1, vllmPort, "service --port {port}", "/health")));
        var comfy = (await app.Orchestrator.EnsureAsync("comfyui", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;
        var comfyPid = comfy.Pid!.Value;
        var child = ProcFs.Descendants(comfyPid).Single();

        var vllm = await app.Orchestrator.EnsureAsync("vllm", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct);

        Assert.Equal(InstanceState.Running, vllm.Instance.State);
        var evicted = app.Orchestrator.Instances.Single(i => i.Service == "comfyui");
        Assert.Equal(InstanceState.Stopped, evicted.State);
        Assert.Contains("evicted from GPU 0 for vllm", evicted.Message, StringComparison.Ordinal);
        Assert.False(ProcFs.IsRunning(comfyPid));
        Assert.False(ProcFs.IsRunning(child));
        Assert.Equal(["vllm"], app.Orchestrator.Leases.Select(l => l.Holder));
        var events = await HistoryAsync(app);
        Assert.Contains(events, e => e is { Kind: "evicted", Service: "comfyui" });
    }

    [Fact]
    public async Task Lease_history_survives_a_restart_and_a_still_running_managed_service_is_reattached_not_started_twice()
    {
        using var data = new TempDir();
        var port = EngineApp.FreePort();
        var profile = EngineApp.Profile(EngineApp.StandInService("vllm", 3000, 1, port, "service --port {port}", "/health"));
        var first = EngineApp.Start(profile, dataDir: data.Path);
        var pid = (await first.Orchestrator.EnsureAsync("vllm", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance.Pid!.Value;

        // The app goes away without stopping its service (EngineApp's own dispose would stop it: dispose the host only).
        await first.Factory.DisposeAsync();

        try
        {
            Assert.True(ProcFs.IsRunning(pid), "the service died with cf-orch");
            await using var second = EngineApp.Start(profile, dataDir: data.Path);

            var reattached = Assert.Single(second.Orchestrator.Instances);
            Assert.Equal((InstanceOrigin.Managed, pid), (reattached.Origin, reattached.Pid));
            Assert.Contains($"re-attached to PID {pid}", reattached.Message, StringComparison.Ordinal);
            Assert.True(reattached.Reattached);
            var running = await second.WaitForAsync("vllm", i => i.State == InstanceState.Running);
            // Re-attaching is not a start: the process-start counter of this run stays at zero.
            using var metrics = second.Factory.CreateClient();
            Assert.DoesNotContain("cf_orch_process_starts_total{service=\"vllm\"} 1", await metrics.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct), StringComparison.Ordinal);
            var ensured = await second.Orchestrator.EnsureAsync("vllm", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct);
            Assert.Equal((true, false, pid), (ensured.Warm, ensured.Started, ensured.Instance.Pid!.Value));
            Assert.Equal(running.Since, ensured.Instance.Since);
            Assert.Single(ProcFs.ListeningPids(port));

            var events = await HistoryAsync(second);
            Assert.Contains(events, e => e is { Kind: "granted", Service: "vllm", Origin: "managed" } && e.Reason.Contains("3000 MB", StringComparison.Ordinal));
            Assert.True(events.Count(e => e.Kind == "granted") >= 2, "the grant of the first run and the re-attachment's grant");

            // Its output is followed again from its log file after the restart.
            await second.PollAsync(() => second.Orchestrator.Logs(reattached.Key)?.Tail(50).FirstOrDefault(l => l.Text.Contains("STANDIN REQUEST GET /health", StringComparison.Ordinal)), "the re-attached service's log");
        }
        finally
        {
            EngineApp.KillGroup(pid);
        }
    }

    [Fact]
    public async Task Every_lease_change_reaches_the_sqlite_history()
    {
        var port = EngineApp.FreePort();
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("vllm", 3000, 1, port, "service --port {port}", "/health")));
        await app.Orchestrator.EnsureAsync("vllm", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct);
        var client = await app.Orchestrator.RequestLeaseAsync("script", 0, 1000, 3, TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        app.Orchestrator.ReleaseLease(client.LeaseId);
        await app.Orchestrator.StopAsync("vllm", null, Ct);

        var events = await HistoryAsync(app);

        Assert.Equal(
            [("granted", "vllm"), ("granted", "script"), ("released", "script"), ("stopped", "vllm")],
            events.Select(e => (e.Kind, e.Holder)));
        Assert.All(events, e => Assert.Equal((app.Orchestrator.NodeId, 0), (e.NodeId, e.GpuIndex)));
        Assert.Equal("stopped on request", events[^1].Reason);
    }

    [Fact]
    public async Task Bad_input_fails_only_that_instance_with_a_clear_message_and_nothing_else_stops()
    {
        var goodPort = EngineApp.FreePort();
        await using var squatter = await StandInProcess.StartServiceAsync(EngineApp.FreePort(), "/health", Ct, "--status", "503");
        await using var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("good", 1000, 1, goodPort, "service --port {port}", "/health"),
            EngineApp.StandInService("squatted", 1000, 2, squatter.Port, "service --port {port}", "/health", adopt: true),
            """
              missing:
                max_mb: 1000
                priority: 2
                managed:
                  type: process
                  exec_path: /opt/nowhere/bin/server
                  port: 9
                  health_path: /health

            """));
        var good = (await app.Orchestrator.EnsureAsync("good", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;

        var squatted = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync("squatted", null, null, Ct));
        Assert.Equal(OrchestrationError.StartFailed, squatted.Error);
        Assert.Contains($"port {squatter.Port} is already in use by PID {squatter.Pid}", squatted.Message, StringComparison.Ordinal);
        Assert.Contains("does not answer /health", squatted.Message, StringComparison.Ordinal);
        Assert.Equal(InstanceState.Failed, app.Orchestrator.Instances.Single(i => i.Service == "squatted").State);

        var missing = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync("missing", null, null, Ct));
        Assert.Contains("exec_path /opt/nowhere/bin/server does not exist", missing.Message, StringComparison.Ordinal);
        Assert.Contains("exec_path /opt/nowhere/bin/server does not exist", app.Orchestrator.Instances.Single(i => i.Service == "missing").Message, StringComparison.Ordinal);

        // A profile change that removes the running service: it keeps running, and says so.
        await File.WriteAllTextAsync(app.ProfilePath, EngineApp.Profile(EngineApp.StandInService("other", 1000, 1, EngineApp.FreePort(), "service --port {port}", "/health")), Ct);
        app.Factory.Services.GetRequiredService<ProfileRegistry>().Reload();

        var kept = app.Orchestrator.Instances.Single(i => i.Service == "good");
        Assert.Equal((InstanceState.Running, good.Pid), (kept.State, kept.Pid));
        Assert.Contains("is not in profile 'engine-test' any more; it keeps running until you stop it", kept.Message, StringComparison.Ordinal);
        Assert.True(ProcFs.IsRunning(good.Pid!.Value));
        Assert.Single(app.Orchestrator.Leases);
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{goodPort}/health"), Ct)).StatusCode);
    }

    [Fact]
    public async Task The_adoption_loop_adopts_an_ollama_that_appears_sleeps_while_it_runs_and_adopts_it_again_after_it_was_lost()
    {
        var port = EngineApp.FreePort();
        await using var app = EngineApp.Start(
            EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, port, "ollama --port {port}", "/api/tags", adopt: true)),
            new() { ["CfOrch:Probes:IntervalSeconds"] = "0.2", ["CfOrch:Adoption:LostAfter"] = "2" });
        var adoption = app.Factory.Services.GetRequiredService<Core.Adoption.AdoptionService>();
        Assert.Empty(app.Orchestrator.Instances);

        // It appears: the periodic pass (not a call of the test's) adopts it, and then has nothing to do.
        var first = await StandInProcess.StartOllamaAsync(port, 1000, Ct);
        var adopted = await app.PollAsync(() => app.Orchestrator.Instances.FirstOrDefault(i => i is { Origin: InstanceOrigin.Adopted, IsActive: true }), "the ollama that appeared to be adopted");
        Assert.Equal(first.Pid, adopted.Pid);
        Assert.True(adoption.NothingToCheck);
        var loop = app.Factory.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<CfOrch.Web.Jobs.AdoptionLoop>().Single();
        await app.PollAsync(() => loop.Asleep ? "asleep" : null, "the adoption loop to sleep while the ollama runs");

        // It goes away: the health probes end it, which wakes the pass; it comes back and is adopted again.
        await first.DisposeAsync();
        await app.PollAsync(() => app.Orchestrator.Instances.Any(i => i.IsActive) ? null : "gone", "the lost ollama to end");
        await using var second = await StandInProcess.StartOllamaAsync(port, 1000, Ct);
        var again = await app.PollAsync(() => app.Orchestrator.Instances.FirstOrDefault(i => i is { Origin: InstanceOrigin.Adopted, IsActive: true }), "the ollama that came back to be adopted again");
        Assert.Equal(second.Pid, again.Pid);
    }

    [Fact]
    public async Task An_adopted_service_is_registered_on_the_gpu_where_its_processes_hold_memory()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 0, Ct, "--child");
        var runner = ProcFs.Descendants(ollama.Pid).Single();
        await using var app = EngineApp.Start(
            EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)),
            new() { ["CfOrch:Gpus:Simulated:1:Name"] = "Second GPU", ["CfOrch:Gpus:Simulated:1:TotalMb"] = "24576", ["CfOrch:Adoption:IntervalSeconds"] = "3600" });
        Assert.Equal(0, app.Orchestrator.Instances.Single().Key.GpuIndex);
        await app.Orchestrator.StopAsync("ollama", null, Ct);

        // Its runner (a child of the serving process, as Ollama's runners are) holds memory on GPU 1; /api/ps says nothing.
        app.Factory.SimulatedGpus.SetProcessUsage(1, runner, 3500, "ollama_llama_server");
        app.Factory.Services.GetRequiredService<Core.Gpus.GpuMonitor>().Refresh();
        app.Factory.Services.GetRequiredService<Core.Adoption.AdoptionService>().Unrelease("ollama");
        var adopted = await app.Factory.Services.GetRequiredService<Core.Adoption.AdoptionService>().CheckAsync(
            app.Factory.Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services["ollama"], Ct);

        Assert.NotNull(adopted);
        Assert.Equal((1, 3500L), (adopted.Key.GpuIndex, adopted.MeasuredMb!.Value));
        Assert.Equal(1, Assert.Single(app.Orchestrator.Leases).GpuIndex);
    }

    [Fact]
    public async Task A_managed_process_that_exits_unexpectedly_fails_at_once_with_its_exit_code_and_last_lines()
    {
        var port = EngineApp.FreePort();
        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("flaky", 2000, 1, port, "service --port {port}", "/health")));
        var serving = (await app.Orchestrator.EnsureAsync("flaky", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;

        var failed = await app.CrashAsync(serving, 3);

        Assert.Equal(3, failed.ExitCode);
        Assert.Equal("the process exited with code 3", failed.Message);
        Assert.Contains(failed.LastLogLines, l => l.StartsWith("STANDIN LISTENING", StringComparison.Ordinal));
        Assert.Empty(app.Orchestrator.Leases);
        var events = await HistoryAsync(app);
        Assert.Equal(("lost", "the process exited with code 3"), (events[^1].Kind, events[^1].Reason));
    }

    [Fact]
    public async Task No_history_is_lost_on_a_clean_shutdown()
    {
        using var data = new TempDir();
        var app = EngineApp.Start(EngineApp.Profile(), dataDir: data.Path);
        for (var i = 0; i < 2000; i++)
        {
            app.Orchestrator.ReleaseLease((await app.Orchestrator.RequestLeaseAsync($"client-{i}", 0, 10, 5, null, TestContext.Current.CancellationToken)).LeaseId);
        }

        await app.Factory.DisposeAsync();

        await using var db = new CfOrchDb(new DbContextOptionsBuilder<CfOrchDb>().UseSqlite($"Data Source={Path.Combine(data.Path, DataServiceCollectionExtensions.DatabaseFileName)}").Options);
        Assert.Equal(4000, await db.LeaseEvents.CountAsync(Ct));
    }

    private static async Task<List<InstanceState>> CollectStatesAsync(StateSubscription subscription, string service, CancellationToken ct)
    {
        var states = new List<InstanceState>();
        try
        {
            await foreach (var batch in subscription.Changes.WithCancellation(ct))
            {
                states.AddRange(batch.OfType<InstanceChanged>().Where(c => c.Instance.Service == service).Select(c => c.Instance.State));
            }
        }
        catch (OperationCanceledException)
        {
        }

        return states;
    }

    private static async Task<List<LeaseEventRow>> HistoryAsync(EngineApp app)
    {
        await app.Factory.Services.GetRequiredService<HistoryWriter>().FlushAsync(Ct);
        var factory = app.Factory.Services.GetRequiredService<IDbContextFactory<CfOrchDb>>();
        await using var db = await factory.CreateDbContextAsync(Ct);
        return await db.LeaseEvents.AsNoTracking().OrderBy(e => e.Id).ToListAsync(Ct);
    }
}
