using System.Diagnostics;
using System.Net;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Processes;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Core.Runtimes.Docker;
using CfOrch.Tests.Engine;
using CfOrch.Web.Components.Controls;
using Docker.DotNet.Models;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Runtimes;

/// <summary><c>type: docker</c> services against a real Docker engine: start, stop, crash and restart, re-attach, adopt.</summary>
public sealed class ContainerRuntimeTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_container_starts_with_its_gpu_and_labels_answers_and_is_removed_when_stopped()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("web");
        var port = EngineApp.FreePort();
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, port, extra: "      init: true\n      env:\n        GREETING: hello\n")));

            var started = await app.Orchestrator.EnsureAsync(name, null, null, Ct);

            Assert.True(started.Started);
            var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            Assert.Equal($"http://127.0.0.1:{port}", running.Url);
            Assert.NotNull(running.LeaseId);
            using (var answer = await Http.GetAsync(new Uri($"http://127.0.0.1:{port}/health"), Ct))
            {
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            var inspected = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container));
            Assert.Equal(name, inspected.Config!.Labels["cf-orch.service"]);
            Assert.Equal("local", inspected.Config.Labels["cf-orch.node"]);
            Assert.Equal("0", inspected.Config.Labels["cf-orch.gpu"]);
            Assert.True(inspected.Config.Labels.ContainsKey("cf-orch.run"));
            Assert.Contains("GREETING=hello", inspected.Config.Env);
            Assert.Equal("nvidia", inspected.HostConfig!.Runtime);
            var gpu = Assert.Single(inspected.HostConfig!.DeviceRequests);
            Assert.Equal(["0"], gpu.DeviceIDs);
            Assert.Equal("127.0.0.1", Assert.Single(inspected.HostConfig.PortBindings["8080/tcp"]).HostIP);
            Assert.Equal(running.Pid, (int)inspected.State!.Pid);

            // Its VRAM is what NVML reports for its processes (host PIDs): the simulated GPU reports 700 MB for its init's child.
            var busybox = ProcFs.Descendants(running.Pid!.Value).Single();
            app.Factory.SimulatedGpus.SetProcessUsage(0, busybox, 700, "busybox");
            app.Factory.Services.GetRequiredService<GpuMonitor>().Refresh();
            await app.WaitForAsync(name, i => i.MeasuredMb == 700);
            Assert.Equal(700, Assert.Single(app.Orchestrator.Leases).MeasuredMb);

            var stopped = await app.Orchestrator.StopAsync(name, null, Ct);

            Assert.Equal(InstanceState.Stopped, Assert.Single(stopped).Instance.State);
            Assert.Null(await DockerTestEngine.FindAsync(container));
            Assert.Empty(app.Orchestrator.Leases);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task An_agent_evicts_a_container_service_for_a_process_started_in_it_with_docker_exec()
    {
        await DockerTestEngine.RequireAsync();
        const string token = "cluster-secret-0123456789abcdef";
        var name = DockerTestEngine.UniqueName("evict");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var host = Api.ApiTestHost.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), extra: "      init: true\n")), new()
            {
                ["CfOrch:Role"] = "agent",
                ["CfOrch:NodeId"] = "heimdall",
                ["CfOrch:Agent:Coordinator"] = $"http://127.0.0.1:{EngineApp.FreePort()}",
                ["CfOrch:Cluster:Token"] = token,
            });
            await host.Orchestrator.EnsureAsync(name, null, null, Ct);
            var running = await host.App.WaitForAsync(name, i => i.State == InstanceState.Running);
            var id = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID;
            var exec = await DockerTestEngine.Client.Exec.CreateContainerExecAsync(id, new ContainerExecCreateParameters { Cmd = ["/bin/busybox", "sleep", "300"] }, Ct);
            using var attached = await DockerTestEngine.Client.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), Ct);
            var execPid = (int)await host.App.PollAsync(async () => await DockerTestEngine.Client.Exec.InspectContainerExecAsync(exec.ID, Ct) is { Running: true, Pid: > 0 } e ? (object)(int)e.Pid : null, "the exec's process");
            Assert.DoesNotContain(execPid, ProcFs.Descendants(running.Pid!.Value));

            // The coordinator measured that process as the service's (its VRAM) and asks for it to be evicted.
            var evicted = (await host.PostAsync("/evict", new { pid = execPid, grace_period_s = 1.0 }, bearer: token)).Is(HttpStatusCode.OK).Json;

            Assert.True(evicted.GetProperty("success").GetBoolean(), evicted.GetProperty("message").GetString());
            Assert.Null(await DockerTestEngine.FindAsync(container));
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task A_process_started_in_the_container_with_docker_exec_is_one_of_its_processes_and_its_vram_is_measured()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("exec");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), extra: "      init: true\n")));
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            var id = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID;

            // What a user (or the image's own tooling) runs beside the main process: its parent is the engine's shim, not the container's init.
            var exec = await DockerTestEngine.Client.Exec.CreateContainerExecAsync(id, new ContainerExecCreateParameters { Cmd = ["/bin/busybox", "sleep", "300"] }, Ct);
            using var attached = await DockerTestEngine.Client.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), Ct);

            var pid = await app.PollAsync(async () => await DockerTestEngine.Client.Exec.InspectContainerExecAsync(exec.ID, Ct) is { Running: true, Pid: > 0 } e ? (object)(int)e.Pid : null, "the exec's process");
            var execPid = (int)pid;
            Assert.DoesNotContain(execPid, ProcFs.Descendants(running.Pid!.Value));

            Assert.Contains(execPid, app.Factory.Services.GetRequiredService<DockerRuntime>().ProcessesOf(running));
            app.Factory.SimulatedGpus.SetProcessUsage(0, execPid, 600, "sleep");
            app.Factory.Services.GetRequiredService<GpuMonitor>().Refresh();
            await app.WaitForAsync(name, i => i.MeasuredMb == 600);
            await app.Orchestrator.StopAsync(name, null, Ct);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task A_named_volume_and_what_the_container_wrote_to_it_survive_a_stop_and_reach_the_next_start()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("vol");
        var volume = $"cf-orch-test-{name}";
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), extra: $"      init: true\n      volumes:\n        - {volume}:/data\n")));
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            Assert.Equal(0, await ExecAsync(container, "/bin/busybox", "touch", "/data/kept"));

            await app.Orchestrator.StopAsync(name, null, Ct);

            Assert.Null(await DockerTestEngine.FindAsync(container));
            Assert.Equal(volume, (await DockerTestEngine.Client.Volumes.InspectAsync(volume, Ct)).Name);
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            Assert.Equal(0, await ExecAsync(container, "/bin/busybox", "test", "-f", "/data/kept"));
            Assert.Equal(1, await ExecAsync(container, "/bin/busybox", "test", "-f", "/data/never-written"));
            await app.Orchestrator.StopAsync(name, null, Ct);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
            await DockerTestEngine.Client.Volumes.RemoveAsync(volume, force: true, Ct);
        }
    }

    /// <summary>Runs a command in the container (as docker exec does) to its end; returns its exit code.</summary>
    private static async Task<long?> ExecAsync(string container, params string[] command)
    {
        var exec = await DockerTestEngine.Client.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters { Cmd = command, AttachStdout = true, AttachStderr = true }, Ct);
        using (var stream = await DockerTestEngine.Client.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), Ct))
        {
            await stream.ReadOutputToEndAsync(Ct);
        }

        return (await DockerTestEngine.Client.Exec.InspectContainerExecAsync(exec.ID, Ct)).ExitCode;
    }

    [Fact]
    public async Task A_killed_container_fails_with_its_exit_code_and_restart_on_failure_starts_a_new_one()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("crashy");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), extra: "      restart: on-failure\n      max_restarts: 2\n" + DockerTestEngine.Verbose)));
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            var firstId = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID;

            await DockerTestEngine.Client.Containers.KillContainerAsync(firstId, new ContainerKillParameters(), Ct);

            var failed = await app.WaitForAsync(name, i => i.Since == running.Since && i.State == InstanceState.Failed);
            Assert.Equal(137, failed.ExitCode);
            Assert.Contains("the container exited with code 137", failed.Message, StringComparison.Ordinal);
            Assert.Contains(failed.LastLogLines, l => l.Contains("/health", StringComparison.Ordinal));
            // Its health probe may answer before the start has read the new container's PID: both are waited for.
            var restarted = await app.WaitForAsync(name, i => i.RestartNumber == 1 && i.State == InstanceState.Running && i.Pid is not null);
            var second = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container));
            Assert.NotEqual(firstId, second.ID);
            Assert.Equal((int)second.State!.Pid, restarted.Pid);
            Assert.Null(await DockerTestEngine.FindAsync(firstId));
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task A_restarted_cf_orch_attaches_to_its_running_container_instead_of_starting_another()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("keep");
        var container = $"cf-orch-{name}-gpu0";
        using var data = new TempDir();
        var profile = EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort()));
        try
        {
            var first = EngineApp.Start(profile, dataDir: data.Path);
            await first.Orchestrator.EnsureAsync(name, null, null, Ct);
            var before = await first.WaitForAsync(name, i => i.State == InstanceState.Running);
            var id = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID;
            await first.Factory.DisposeAsync();

            await using var second = EngineApp.Start(profile, dataDir: data.Path);
            var after = await second.WaitForAsync(name, i => i.State == InstanceState.Running);

            Assert.True(after.Reattached);
            Assert.Equal(InstanceOrigin.Managed, after.Origin);
            Assert.Equal(before.Pid, after.Pid);
            Assert.Equal(before.Since, after.Since);
            Assert.NotNull(after.LeaseId);
            Assert.Equal(id, second.Factory.Services.GetRequiredService<DockerRuntime>().ContainerOf(after.Key));
            Assert.Equal(id, Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID);

            // Still its owner: a stop removes it.
            await second.Orchestrator.StopAsync(name, null, Ct);
            Assert.Null(await DockerTestEngine.FindAsync(container));
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_container_the_user_runs_is_adopted_by_name_or_published_port_followed_and_never_stopped(bool byName)
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("theirs");
        var theirs = $"user-{name}";
        var port = EngineApp.FreePort();
        var created = await DockerTestEngine.Client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Name = theirs,
            Image = DockerTestEngine.Image,
            Cmd = ["/bin/busybox", "httpd", "-f", "-vv", "-p", "8080", "-h", "/www"],
            ExposedPorts = new Dictionary<string, EmptyStruct> { ["8080/tcp"] = default },
            HostConfig = new HostConfig
            {
                Init = true,
                PortBindings = new Dictionary<string, IList<PortBinding>> { ["8080/tcp"] = [new PortBinding { HostIP = "127.0.0.1", HostPort = port.ToString(System.Globalization.CultureInfo.InvariantCulture) }] },
            },
        }, Ct);
        try
        {
            await DockerTestEngine.Client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), Ct);
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, port, adopt: true, extra: byName ? $"      container_name: {theirs}\n" : "")));

            var adopted = await app.WaitForAdoptedAsync(name);

            Assert.Contains($"container {theirs}", adopted.Message, StringComparison.Ordinal);
            Assert.Equal(theirs, adopted.Container);
            var inspected = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(created.ID));
            Assert.Equal((int)inspected.State!.Pid, adopted.Pid);
            using (var answer = await Http.GetAsync(new Uri($"http://127.0.0.1:{port}/index.html"), Ct))
            {
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            // Its output is followed, as for a container cf-orch started.
            var ring = await app.PollAsync(() => app.Orchestrator.Logs(adopted.Key), "the adopted container's log");
            await app.PollAsync(() => ring.Tail(50).FirstOrDefault(l => l.Text.Contains("index.html", StringComparison.Ordinal)), "httpd's log line of the request");

            var restart = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.RestartAsync(name, null, Ct));
            Assert.Equal($"{name} runs outside cf-orch (adopted container {theirs}): restart it where it was started: docker restart {theirs}, or docker compose restart in its compose project", restart.Message);
            var outcome = Assert.Single(await app.Orchestrator.StopAsync(name, null, Ct));

            Assert.Contains("keeps running", outcome.Message, StringComparison.Ordinal);
            Assert.True(Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(created.ID)).State!.Running);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(created.ID);
        }
    }

    [Fact]
    public async Task A_pull_shows_its_layers_on_the_instance_and_in_the_event_stream_then_the_container_starts_from_the_pulled_image()
    {
        await DockerTestEngine.RequireAsync();
        await using var registry = await TestRegistry.StartAsync();
        var name = DockerTestEngine.UniqueName("pulled");
        var image = registry.Reference($"cf-orch-test/{name}");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), image: image, extra: "      init: true\n")));
            using var http = app.Factory.CreateClient();
            using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, new Uri("/api/events", UriKind.Relative)), HttpCompletionOption.ResponseHeadersRead, Ct);
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));

            var ensure = app.Orchestrator.EnsureAsync(name, null, null, Ct);

            var pulling = await NextInstanceMessageAsync(events, name, m => m.Contains(" layers", StringComparison.Ordinal));
            Assert.Matches($"^pulling {System.Text.RegularExpressions.Regex.Escape(image)}: [01] of 1 layers", pulling);
            Assert.True((await ensure).Started);
            var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            var inspected = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container));
            Assert.Equal(image, inspected.Config!.Image);
            await app.Orchestrator.StopAsync(name, null, Ct);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
            await DockerTestEngine.UntagAsync(image);
        }
    }

    /// <summary>The next <c>instance</c> event of /api/events for <paramref name="service"/> whose message matches.</summary>
    private static async Task<string> NextInstanceMessageAsync(StreamReader events, string service, Func<string, bool> wanted)
    {
        string? name = null;
        while (true)
        {
            var line = await events.ReadLineAsync(Ct).AsTask().WaitAsync(EngineApp.Deadline, Ct) ?? throw new EndOfStreamException();
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (name == "instance" && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var data = System.Text.Json.JsonDocument.Parse(line["data: ".Length..]);
                if (data.RootElement.GetProperty("service").GetString() == service && data.RootElement.GetProperty("message").GetString() is { } message && wanted(message))
                {
                    return message;
                }
            }
        }
    }

    [Fact]
    public async Task An_image_that_cannot_be_pulled_fails_the_start_with_the_registrys_message_and_releases_the_lease()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("nosuch");
        await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), image: "cf-orch-test/no-such-image:1")));

        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync(name, null, null, Ct));

        Assert.Contains("cannot pull cf-orch-test/no-such-image:1: ", refused.Message, StringComparison.Ordinal);
        var failed = Assert.Single(app.Orchestrator.Instances, i => i.Service == name);
        Assert.Equal(InstanceState.Failed, failed.State);
        Assert.Null(failed.LeaseId);
        Assert.Empty(app.Orchestrator.Leases);
        Assert.Null(await DockerTestEngine.FindAsync($"cf-orch-{name}-gpu0"));
    }

    [Fact]
    public async Task An_image_that_is_not_here_with_pull_never_disables_start_with_what_to_do_until_the_image_arrives()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("never");
        var repository = $"cf-orch-test/{name}";
        var image = $"{repository}:1";
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), image: image, extra: "      init: true\n").Replace("pull: missing", "pull: never", StringComparison.Ordinal)));
            var state = app.Factory.Services.GetRequiredService<StateStream>();
            var service = app.Factory.Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services[name];
            var expected = $"image {image} is not on this machine and pull is never — docker pull {image} or set pull: missing";

            var why = await NoImageAsync(app, name);

            Assert.Equal($"{name} is a container (type: docker), and {expected}.", why);
            var refused = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync(name, null, null, Ct));
            Assert.Equal(OrchestrationError.NotStartable, refused.Error);
            Assert.Equal($"{name} cannot start: {expected}", refused.Message);
            Assert.Empty(app.Orchestrator.Leases);

            // The image arrives (docker pull, docker load, a build): Start is enabled again, without a restart.
            await DockerTestEngine.TagAsync(image);
            await app.PollAsync(() => StartCheck.WhyNot(service, state.Snapshot(), name) is null ? "enabled" : null, "Start to be enabled once the image is here");
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            await app.Orchestrator.StopAsync(name, null, Ct);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
            await DockerTestEngine.UntagAsync(image);
        }
    }

    [Fact]
    public async Task A_runtime_the_engine_lacks_disables_start_with_the_reason_and_the_nvidia_runtime_it_has_does_not()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("rt");
        var gpu = DockerTestEngine.UniqueName("nv");
        await using var app = EngineApp.Start(EngineApp.Profile(
            DockerTestEngine.Service(name, EngineApp.FreePort(), extra: "      runtime: no-such-runtime\n"),
            DockerTestEngine.Service(gpu, EngineApp.FreePort(), extra: "      runtime: nvidia\n")));
        var state = app.Factory.Services.GetRequiredService<StateStream>();
        var services = app.Factory.Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services;
        var known = (await DockerTestEngine.Client.System.GetSystemInfoAsync(Ct)).Runtimes.Keys.Order(StringComparer.Ordinal).ToList();
        var expected = $"the Docker engine has no 'no-such-runtime' runtime (it has {string.Join(", ", known)})";

        var why = await app.PollAsync(() => StartCheck.WhyNot(services[name], state.Snapshot(), name) is { } w && w.Contains("no-such-runtime", StringComparison.Ordinal) ? w : null, "Start to be disabled for the runtime");

        Assert.Equal($"{name} is a container (type: docker), and {expected}.", why);
        Assert.Null(StartCheck.WhyNot(services[gpu], state.Snapshot(), gpu));
        var refused = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync(name, null, null, Ct));
        Assert.Equal(OrchestrationError.NotStartable, refused.Error);
        Assert.Equal($"{name} cannot start: {expected}", refused.Message);
        Assert.Empty(app.Orchestrator.Leases);
        Assert.Null(await DockerTestEngine.FindAsync($"cf-orch-{name}-gpu0"));
    }

    [Theory]
    [InlineData(false, 137)]
    [InlineData(true, 143)]
    public async Task A_stop_signals_waits_the_grace_then_kills_and_an_init_process_ends_on_the_signal(bool init, int exitCode)
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName(init ? "init" : "pid1");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            // busybox as PID 1 ignores SIGTERM: without init it is killed after eviction_timeout_s (3 s).
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), extra: $"      init: {(init ? "true" : "false")}\n")));
            await app.Orchestrator.EnsureAsync(name, null, null, Ct);
            await app.WaitForAsync(name, i => i.State == InstanceState.Running);
            var id = Assert.IsType<ContainerInspectResponse>(await DockerTestEngine.FindAsync(container)).ID;
            var died = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var watching = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var events = DockerTestEngine.Client.System.MonitorEventsAsync(new ContainerEventsParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["container"] = new Dictionary<string, bool> { [id] = true }, ["event"] = new Dictionary<string, bool> { ["die"] = true } },
            }, new Progress<Message>(m => died.TrySetResult(m.Actor?.Attributes is { } a && a.TryGetValue("exitCode", out var c) ? c : null)), watching.Token);

            var clock = Stopwatch.StartNew();
            await app.Orchestrator.StopAsync(name, null, Ct);
            clock.Stop();

            Assert.Equal(exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture), await died.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct));
            if (!init)
            {
                Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"the stop took {clock.Elapsed}: the grace was not waited");
            }

            Assert.Null(await DockerTestEngine.FindAsync(container));
            await watching.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => events);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task An_always_on_container_is_started_with_cf_orch_and_its_log_is_served_by_the_api()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("always");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort(), alwaysOn: true, extra: DockerTestEngine.Verbose)));

            var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);

            Assert.Equal(InstanceOrigin.Managed, running.Origin);
            Assert.NotNull(await DockerTestEngine.FindAsync(container));
            using var http = app.Factory.CreateClient();
            var log = await app.PollAsync(async () =>
            {
                var text = await http.GetStringAsync(new Uri($"/api/services/{name}/logs?tail=50", UriKind.Relative), Ct);
                return text.Contains("/health", StringComparison.Ordinal) ? text : null;
            }, "the container's output in /api/services/{s}/logs");
            Assert.Contains("\"stream\"", log, StringComparison.Ordinal);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
        }
    }

    [Fact]
    public async Task An_always_on_container_with_pull_never_starts_when_its_image_arrives_and_no_stopped_service_is_started_with_it()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("waits");
        var other = DockerTestEngine.UniqueName("stays");
        var image = $"cf-orch-test/{name}:1";
        string[] containers = [$"cf-orch-{name}-gpu0", $"cf-orch-{other}-gpu0"];
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(
                DockerTestEngine.Service(name, EngineApp.FreePort(), maxMb: 1000, image: image, alwaysOn: true, extra: "      init: true\n").Replace("pull: missing", "pull: never", StringComparison.Ordinal),
                DockerTestEngine.Service(other, EngineApp.FreePort(), maxMb: 1000, alwaysOn: true, extra: "      init: true\n")));

            // The other always_on container starts with cf-orch; the user stops it, and it stays stopped (it would come first
            // in a pass over every always_on service).
            await app.WaitForAsync(other, i => i.State == InstanceState.Running);
            await app.Orchestrator.StopAsync(other, null, Ct);
            await NoImageAsync(app, name);
            Assert.DoesNotContain(app.Orchestrator.Instances, i => i.Service == name && i.IsActive);

            // The image arrives: the always_on container that waited for it starts, without a restart of cf-orch.
            await DockerTestEngine.TagAsync(image);
            await app.WaitForAsync(name, i => i.State == InstanceState.Running);

            Assert.DoesNotContain(app.Orchestrator.Instances, i => i.Service == other && i.IsActive);
            Assert.Null(await DockerTestEngine.FindAsync(containers[1]));
            await app.Orchestrator.StopAsync(name, null, Ct);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(containers);
            await DockerTestEngine.UntagAsync(image);
        }
    }

    [Fact]
    public async Task A_container_a_start_has_created_but_not_taken_on_yet_is_left_to_it_by_a_recovery_of_the_engines_containers()
    {
        await DockerTestEngine.RequireAsync();
        var name = DockerTestEngine.UniqueName("racing");
        string? id = null;
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort())));
            var runtime = app.Factory.Services.GetRequiredService<DockerRuntime>();
            var service = app.Factory.Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services[name];
            var spec = Assert.IsType<DockerSpec>(service.Managed);
            var key = new InstanceKey(name, "local", 0);

            // Where a start stands just after the engine created its container (an always_on start at boot, while the engine's
            // containers are recovered because it answered): the instance is starting, the container "created".
            var starting = app.Factory.Services.GetRequiredService<InstanceLifecycle>()
                .Register(key, InstanceOrigin.Managed, InstanceState.Starting, spec.LocalUrl, spec.HealthPath, service.MaxMb, service.Priority);
            id = (await DockerTestEngine.Client.Containers.CreateContainerAsync(ContainerRequest.Build(spec, key, null, null, runtime.Owner, starting.Since, service.MaxMb), Ct)).ID;

            await runtime.RecoverAsync(Ct);

            Assert.Equal("created", (await DockerTestEngine.FindAsync(id))?.State?.Status);
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(id ?? $"cf-orch-{name}-gpu0");
        }
    }

    /// <summary>Waits until Start of <paramref name="name"/> is disabled for its missing image (pull: never), and returns why.</summary>
    private static Task<string> NoImageAsync(EngineApp app, string name)
    {
        var state = app.Factory.Services.GetRequiredService<StateStream>();
        var service = app.Factory.Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services[name];
        return app.PollAsync(() => StartCheck.WhyNot(service, state.Snapshot(), name) is { } w && w.Contains("pull is never", StringComparison.Ordinal) ? w : null, "Start to be disabled for the missing image");
    }
}
