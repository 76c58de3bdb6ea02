using System.Net;
using System.Text.Json;
using CfOrch.Core.Processes;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;

namespace CfOrch.Tests.Ollama;

/// <summary>The models an Ollama has loaded, on its service row, and unloading one on request — Ollama itself keeps running.</summary>
public sealed class ModelUnloadTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_loaded_models_are_listed_and_one_is_unloaded_on_request_while_ollama_keeps_running()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 6000, Ct, "--models", "llama3.2:3b,qwen2.5:7b", "--loaded", "llama3.2:3b,qwen2.5:7b");
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 8000, 2, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)),
            new() { ["CfOrch:Gpus:PollIntervalSeconds"] = "0.2" });

        var row = await host.App.PollAsync(async () => Ollama(await host.GetAsync("/api/services")) is { } r && r.GetProperty("loaded_models").GetArrayLength() == 2 ? (object)r : null, "the loaded models to be measured");
        var models = ((JsonElement)row).GetProperty("loaded_models").EnumerateArray().ToList();
        Assert.Equal(["llama3.2:3b", "qwen2.5:7b"], models.Select(m => m.GetProperty("name").GetString()));
        Assert.All(models, m => Assert.Equal(3000, m.GetProperty("vram_mb").GetInt64()));

        // Not for strangers; not a model it has.
        (await host.PostAsync("/api/services/ollama/unload", new { model = "qwen2.5:7b" }, remote: "192.168.1.50")).Is(HttpStatusCode.Unauthorized);
        Assert.Contains("has no model mistral loaded", (await host.PostAsync("/api/services/ollama/unload", new { model = "mistral" })).Is(HttpStatusCode.NotFound).Detail, StringComparison.Ordinal);

        var unloaded = (await host.PostAsync("/api/services/ollama/unload", new { model = "qwen2.5:7b" })).Is(HttpStatusCode.OK).Json;

        Assert.Contains("ollama unloaded qwen2.5:7b (3,000 MB)", unloaded.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var after = Ollama(await host.GetAsync("/api/services"))!.Value;
        Assert.Equal(["llama3.2:3b"], after.GetProperty("loaded_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        Assert.Equal(3000, after.GetProperty("measured_mb").GetInt64());
        Assert.Equal("running", after.GetProperty("state").GetString());
        Assert.True(ProcFs.IsRunning(ollama.Pid));
    }

    private static JsonElement? Ollama(ApiTestHost.Answer answer) =>
        answer.Is(HttpStatusCode.OK).Json.GetProperty("services").EnumerateArray().Where(s => s.GetProperty("service").GetString() == "ollama").Select(s => (JsonElement?)s.Clone()).FirstOrDefault();
}
