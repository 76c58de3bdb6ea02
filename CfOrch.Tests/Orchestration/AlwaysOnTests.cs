using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Orchestration;

/// <summary>always_on services: started once cf-orch is up (real app, real processes), never stopped for idleness.</summary>
public sealed class AlwaysOnTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_always_on_service_is_started_at_start_up_without_any_request_and_a_container_without_its_engine_says_why()
    {
        var profile = EngineApp.Profile(
            EngineApp.StandInService("whisper", 1000, 2, EngineApp.FreePort(), "service --port {port}", "/health", alwaysOn: true),
            EngineApp.StandInService("comfyui", 1000, 3, EngineApp.FreePort(), "service --port {port}", "/health"),
            $"""
              cf-embed:
                max_mb: 512
                priority: 2
                always_on: true
                managed:
                  type: docker
                  image: ghcr.io/huggingface/text-embeddings-inference:cpu-1.7
                  port: 80
                  host_port: {EngineApp.FreePort()}

            """);
        var socket = $"/tmp/cf-orch-no-engine-{Guid.NewGuid():N}.sock";
        await using var app = EngineApp.Start(profile, new Dictionary<string, string?> { ["CfOrch:Docker:Endpoint"] = $"unix://{socket}" });

        var whisper = await app.WaitForAsync("whisper", i => i.State == InstanceState.Running);

        Assert.Equal(InstanceOrigin.Managed, whisper.Origin);
        Assert.NotNull(whisper.Pid);
        Assert.Single(app.Orchestrator.Leases, l => l.Holder == "whisper");
        Assert.DoesNotContain(app.Orchestrator.Instances, i => i.Service is "comfyui" or "cf-embed");

        // Run again (as a profile change would): nothing is started twice, and the container says why it cannot start.
        var outcomes = await app.Orchestrator.StartAlwaysOnAsync(null, Ct);
        Assert.Equal([$"cf-embed: always_on, but it could not be started: cf-embed cannot start: Docker engine not reachable at unix://{socket}: no socket at {socket} (is dockerd running?)"], outcomes);
        Assert.Single(app.Orchestrator.Instances, i => i.Service == "whisper");
    }

    [Fact]
    public async Task A_service_made_always_on_by_a_profile_change_is_started_and_one_the_user_stopped_stays_stopped()
    {
        var whisperPort = EngineApp.FreePort();
        var comfyPort = EngineApp.FreePort();
        await using var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("whisper", 1000, 2, whisperPort, "service --port {port}", "/health", alwaysOn: true),
            EngineApp.StandInService("comfyui", 1000, 3, comfyPort, "service --port {port}", "/health")));
        await app.WaitForAsync("whisper", i => i.State == InstanceState.Running);
        await app.Orchestrator.StopAsync("whisper", null, Ct);

        await File.WriteAllTextAsync(app.ProfilePath, EngineApp.Profile(
            EngineApp.StandInService("whisper", 1000, 2, whisperPort, "service --port {port}", "/health", alwaysOn: true),
            EngineApp.StandInService("comfyui", 1000, 3, comfyPort, "service --port {port}", "/health", alwaysOn: true)), Ct);
        app.Factory.Services.GetRequiredService<ProfileRegistry>().Reload();

        var comfyui = await app.WaitForAsync("comfyui", i => i.State == InstanceState.Running);
        Assert.Equal(InstanceOrigin.Managed, comfyui.Origin);
        Assert.Equal(InstanceState.Stopped, app.Orchestrator.Instances.Single(i => i.Service == "whisper").State);
    }
}
