using CfOrch.Core.Instances;
using CfOrch.Core.Measurement;
using CfOrch.Core.Ollama;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Unloads one model from a serving Ollama (adopted or managed) with its own unload call (<c>keep_alive: 0</c>): the
/// service keeps running — nothing is stopped or signalled — and loads the model again on its next request. The
/// figures are read again at once, so the GPU shows the memory coming back.
/// </summary>
public sealed partial class ModelUnloader(InstanceRegistry registry, OllamaClient ollama, UsageMeter meter, ILogger<ModelUnloader> logger)
{
    /// <summary>Unloads <paramref name="model"/> from the service's serving Ollama; says what happened, or throws with why not.</summary>
    public async Task<string> UnloadAsync(string service, int? gpuIndex, string model, string by, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        var instance = registry.ForService(service).FirstOrDefault(i => i.IsServing && (gpuIndex is null || i.Key.GpuIndex == gpuIndex))
            ?? throw new OrchestrationException(OrchestrationError.NotFound, $"{service} is not running{(gpuIndex is null ? "" : $" on GPU {gpuIndex}")}");
        if (!OllamaClient.IsOllama(instance.Service, instance.HealthPath))
        {
            throw new OrchestrationException(OrchestrationError.Invalid, $"{service} does not speak Ollama's API: cf-orch cannot ask it to unload a model");
        }

        var loaded = instance.LoadedModels.FirstOrDefault(m => m.Name == model);
        if (loaded is null && (await ollama.PsAsync(instance.Url, cancellationToken))?.Any(m => m.Name == model) != true)
        {
            throw new OrchestrationException(OrchestrationError.NotFound, $"{service} has no model {model} loaded");
        }

        if (!await ollama.UnloadAsync(instance.Url, model, cancellationToken))
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{service} did not unload {model} (it did not answer its unload call)");
        }

        LogUnloaded(model, instance.Key, by, loaded?.VramMb ?? 0);
        await meter.MeasureAllAsync(cancellationToken);
        return $"{service} unloaded {model}{(loaded is null ? "" : $" ({loaded.VramMb:N0} MB)")}; it loads it again on its next request.";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloaded {Model} ({Mb} MB) from {Key}, asked by {By}")]
    private partial void LogUnloaded(string model, InstanceKey key, string by, long mb);
}
