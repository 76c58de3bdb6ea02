using System.Net.Sockets;
using CfOrch.Core.Configuration;
using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Runtimes.Docker;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Runtimes;

/// <summary>No engine, then an engine: containers cannot start (with why) and everything else works; then they can, without a restart.</summary>
public sealed class EngineAvailabilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Without_an_engine_a_start_is_refused_with_why_and_once_it_answers_containers_start_without_a_restart()
    {
        await DockerTestEngine.RequireAsync();
        var socket = Path.Combine(Path.GetTempPath(), $"cf-orch-engine-{Guid.NewGuid():N}.sock");
        var name = DockerTestEngine.UniqueName("later");
        var container = $"cf-orch-{name}-gpu0";
        try
        {
            await using var app = EngineApp.Start(
                EngineApp.Profile(DockerTestEngine.Service(name, EngineApp.FreePort())),
                new Dictionary<string, string?> { ["CfOrch:Docker:Endpoint"] = $"unix://{socket}", ["CfOrch:Docker:RetrySeconds"] = "0.2" });
            var state = app.Factory.Services.GetService(typeof(CfOrch.Core.State.StateStream)) as CfOrch.Core.State.StateStream;
            var down = await app.PollAsync(() => state!.Snapshot().Runtime("docker") is { Available: false, Problem: { } p } && p.Contains("no socket", StringComparison.Ordinal) ? p : null, "the engine to be reported missing");
            Assert.Equal($"Docker engine not reachable at unix://{socket}: no socket at {socket} (is dockerd running?)", down);

            var refused = await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync(name, null, null, Ct));
            Assert.Equal(OrchestrationError.NotStartable, refused.Error);
            Assert.Equal($"{name} cannot start: {down}", refused.Message);
            Assert.Empty(app.Orchestrator.Leases);

            using (new SocketForwarder(socket, "/var/run/docker.sock"))
            {
                await app.PollAsync(() => state!.Snapshot().Runtime("docker") is { Available: true } r ? r : null, "the engine to be picked up");

                await app.Orchestrator.EnsureAsync(name, null, null, Ct);
                var running = await app.WaitForAsync(name, i => i.State == InstanceState.Running);
                Assert.NotNull(running.LeaseId);
                await app.Orchestrator.StopAsync(name, null, Ct);
            }

            Assert.Null(await DockerTestEngine.FindAsync(container));
            await app.PollAsync(() => state!.Snapshot().Runtime("docker") is { Available: false } r ? r : null, "the engine to be missed again");
        }
        finally
        {
            await DockerTestEngine.RemoveAsync(container);
            File.Delete(socket);
        }
    }

    [Fact]
    public async Task A_slow_system_info_or_image_inspection_leaves_the_engine_answering_with_what_was_known_of_them()
    {
        await using var fake = await FakeDockerEngine.StartAsync();
        var time = new FakeTimeProvider();
        using var engine = Engine(fake, time);
        fake.Images["vllm/vllm-openai:v1"] = true;
        Assert.True(await engine.CheckAsync(["vllm/vllm-openai:v1", "cf-stt:1"], Ct));
        var known = engine.Status;
        Assert.Equal(["nvidia", "runc"], known.EngineRuntimes);
        Assert.Equal(["cf-stt:1"], known.MissingImages);

        // /info and the inspections hang (a busy engine); the ping still answers at once.
        fake.Hold(FakeDockerEngine.Info);
        fake.Hold(FakeDockerEngine.Image);
        fake.Images.Clear();
        var check = engine.CheckAsync(["vllm/vllm-openai:v1", "cf-stt:1"], Ct);
        await Eventually.TrueAsync(() => fake.Waiting(FakeDockerEngine.Info) == 1, "the check to ask for the engine's info");
        time.Advance(DockerEngine.QueryTimeout);
        await Eventually.TrueAsync(() => fake.Waiting(FakeDockerEngine.Image) == 1, "the check to inspect an image");
        time.Advance(DockerEngine.QueryTimeout);

        Assert.True(await check);
        Assert.Equal(known, engine.Status);
        Assert.True(engine.Status.Available);

        // A background check of the images gives up the same way, and keeps what was known.
        var background = engine.CheckImagesAsync(["cf-stt:1"], Ct);
        await Eventually.TrueAsync(() => fake.Waiting(FakeDockerEngine.Image) == 1, "the background check to inspect an image");
        time.Advance(DockerEngine.QueryTimeout);
        await background;
        Assert.Equal(known, engine.Status);
    }

    [Fact]
    public async Task Image_checks_asked_for_while_one_runs_are_one_more_check_after_it_and_an_older_answer_never_overwrites_a_newer()
    {
        await using var fake = await FakeDockerEngine.StartAsync();
        using var engine = Engine(fake, TimeProvider.System);
        const string image = "cf-tts:1";
        Assert.True(await engine.CheckAsync([image], Ct));
        Assert.Equal([image], engine.Status.MissingImages);

        // Five image events while a check is held: it runs alone, then once more.
        fake.Hold(FakeDockerEngine.Image);
        for (var i = 0; i < 5; i++)
        {
            engine.CheckImagesSoon(() => [image], Ct);
        }

        await Eventually.TrueAsync(() => fake.Waiting(FakeDockerEngine.Image) == 1, "the first check to inspect the image");
        Assert.Equal(2, fake.Requests(FakeDockerEngine.Image));
        fake.Images[image] = true;
        fake.ReleaseAll();
        await Eventually.TrueAsync(() => fake.Requests(FakeDockerEngine.Image) >= 3 && fake.Waiting(FakeDockerEngine.Image) == 1, "the one check asked for meanwhile");
        Assert.Equal(3, fake.Requests(FakeDockerEngine.Image));
        fake.ReleaseAll();
        await Eventually.TrueAsync(() => engine.Status.MissingImages.Count == 0, "the image to be seen");

        // Once done, the next event starts a check again.
        fake.Images.Clear();
        engine.CheckImagesSoon(() => [image], Ct);
        await Eventually.TrueAsync(() => fake.Requests(FakeDockerEngine.Image) >= 4 && fake.Waiting(FakeDockerEngine.Image) == 1, "a new check");
        Assert.Equal(4, fake.Requests(FakeDockerEngine.Image));
        fake.ReleaseAll();
        await Eventually.TrueAsync(() => engine.Status.MissingImages.Count == 1, "the image to be missed");

        // An older check (image gone) that answers after a newer one (image back) does not overwrite it.
        var older = engine.CheckImagesAsync([image], Ct);
        await Eventually.TrueAsync(() => fake.Requests(FakeDockerEngine.Image) == 5 && fake.Waiting(FakeDockerEngine.Image) == 1, "the older check");
        fake.Images[image] = true;
        var newer = engine.CheckImagesAsync([image], Ct);
        await Eventually.TrueAsync(() => fake.Waiting(FakeDockerEngine.Image) == 2, "the newer check");
        fake.ReleaseNewest();
        await newer;
        Assert.Empty(engine.Status.MissingImages);
        fake.ReleaseAll();
        await older;
        Assert.Empty(engine.Status.MissingImages);
    }

    private static DockerEngine Engine(FakeDockerEngine fake, TimeProvider time) =>
        new(Options.Create(new CfOrchOptions { Docker = new DockerOptions { Endpoint = fake.Endpoint } }), NullLogger<DockerEngine>.Instance, time);

    [Fact]
    public void A_socket_it_may_not_use_is_explained_with_what_to_do()
    {
        var engine = new DockerEngine(Options.Create(new CfOrchOptions { Docker = new DockerOptions { Endpoint = "unix:///var/run/docker.sock" } }), NullLogger<DockerEngine>.Instance, TimeProvider.System);

        Assert.Equal(
            "Docker engine not reachable at unix:///var/run/docker.sock: permission denied on /var/run/docker.sock — add the user to the docker group or mount the socket",
            engine.Describe(new HttpRequestException("x", new SocketException((int)SocketError.AccessDenied))));
        Assert.Equal(
            "Docker engine not reachable at unix:///var/run/docker.sock: connection refused",
            engine.Describe(new HttpRequestException("x", new SocketException((int)SocketError.ConnectionRefused))));
    }

    [Fact]
    public void An_endpoint_that_is_not_one_is_refused_with_the_key_and_a_docker_host_is_used_when_no_key_is_set()
    {
        var result = new CfOrchOptionsValidator().Validate(null, new CfOrchOptions { Docker = new DockerOptions { Endpoint = "/var/run/docker.sock" } });

        Assert.True(result.Failed);
        Assert.Contains("CfOrch:Docker:Endpoint: '/var/run/docker.sock' is not a Docker endpoint", result.FailureMessage, StringComparison.Ordinal);
        Assert.Equal("tcp://10.0.0.2:2375", new DockerOptions { Endpoint = "tcp://10.0.0.2:2375" }.ResolvedEndpoint());
    }
}
