using CfOrch.Core.Instances;
using CfOrch.Core.Ollama;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Picks the model of an allocation from the caller's candidates, in order: for Ollama, the first one it has pulled
/// (<c>/api/tags</c>; a name without a tag matches <c>:latest</c> or any tag); for other services, the first one.
/// </summary>
public sealed class ModelResolver(OllamaClient ollama)
{
    public async Task<string?> ResolveAsync(InstanceSnapshot instance, IReadOnlyList<string> candidates, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(candidates);
        var wanted = candidates.Where(c => !string.IsNullOrWhiteSpace(c)).ToList();
        if (wanted.Count == 0)
        {
            return instance.Model;
        }

        if (!OllamaClient.IsOllama(instance.Service, instance.HealthPath) || await ollama.TagsAsync(instance.Url, cancellationToken) is not { } tags)
        {
            return wanted[0];
        }

        var available = tags.Select(t => t.Name).ToList();
        foreach (var candidate in wanted)
        {
            var match = available.FirstOrDefault(a => a == candidate)
                ?? (candidate.Contains(':', StringComparison.Ordinal) ? null : available.FirstOrDefault(a => a == candidate + ":latest") ?? available.FirstOrDefault(a => a.StartsWith(candidate + ":", StringComparison.Ordinal)));
            if (match is not null)
            {
                return match;
            }
        }

        throw new OrchestrationException(OrchestrationError.StartFailed,
            $"none of the model candidates ({string.Join(", ", wanted)}) is available on {instance.Service}; it has {(available.Count == 0 ? "no models" : string.Join(", ", available))}");
    }
}
