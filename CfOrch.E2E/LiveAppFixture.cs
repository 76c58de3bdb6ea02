using System.Globalization;

namespace CfOrch.E2E;

/// <summary>
/// The app with a stand-in Ollama already running (so it is adopted) and two managed stand-in services, on the
/// README's two simulated GPUs: what the live dashboard tests look at.
/// </summary>
public sealed class LiveAppFixture : IAsyncLifetime
{
    public AppProcess App { get; private set; } = null!;

    public StandIn Ollama { get; private set; } = null!;

    public string ProfilePath { get; private set; } = "";

    public int ComfyPort { get; } = StandIn.FreePort();

    public int WhisperPort { get; } = StandIn.FreePort();

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        Ollama = await StandIn.StartAsync(StandIn.FreePort(), ct, "ollama", "--vram-mb", "3100");
        ProfilePath = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(ProfilePath, Profile(comfyBudget: 6144), ct);
        var environment = AppProcess.SimulatedGpus();
        environment["CfOrch__Profile"] = ProfilePath;
        App = await AppProcess.StartAsync(environment, ct);
    }

    public string Profile(int comfyBudget) => string.Create(CultureInfo.InvariantCulture, $"""
        # The E2E profile: an adoptable Ollama and two services cf-orch starts itself.
        schema_version: 1
        name: e2e-rig
        vram_total_mb: 24576
        eviction_timeout_s: 3
        services:
          ollama:
            max_mb: 8192
            priority: 1
            managed:
              type: process
              adopt: true
              exec_path: {StandIn.ExecutablePath}
              args_template: ollama --port {'{'}port{'}'}
              port: {Ollama.Port}
              host_port: {Ollama.Port}
              health_path: /api/tags
          comfyui:
            max_mb: {comfyBudget}
            priority: 4
            managed:
              type: process
              exec_path: {StandIn.ExecutablePath}
              args_template: service --port {'{'}port{'}'} --health-path /system_stats --startup-delay-ms 400
              port: {ComfyPort}
              host_port: {ComfyPort}
              health_path: /system_stats
          whisper:
            max_mb: 1200
            priority: 2
            managed:
              type: process
              exec_path: {StandIn.ExecutablePath}
              args_template: service --port {'{'}port{'}'}
              port: {WhisperPort}
              host_port: {WhisperPort}
              health_path: /health
        """);

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            using var http = new HttpClient { BaseAddress = App.BaseAddress };
            foreach (var service in new[] { "comfyui", "whisper" })
            {
                using var stopped = await http.PostAsync(new Uri($"api/services/{service}/stop", UriKind.Relative), null);
            }

            await App.DisposeAsync();
        }

        if (Ollama is not null)
        {
            await Ollama.DisposeAsync();
        }

        File.Delete(ProfilePath);
    }
}
