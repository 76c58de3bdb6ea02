using CfOrch.Core.Instances;
using CfOrch.Core.Ollama;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Picks the model of an allocation from the caller's candidates, in order: for Ollama, the first one it has loaded,
/// else the first one it has pulled (<c>/api/tags</c>; a name without a tag matches <c>:latest</c> or any tag); for
/// other services, the first one.
/// </summary>
public sealed class ModelResolver(OllamaClient ollama)
{
    /// <summary>
    /// Before anything is started or evicted for an allocation: an Ollama that already answers (adopted or not yet) and
    /// has none of the candidates refuses it now (<see cref="OrchestrationError.Invalid"/>, naming what it has), so a
    /// refused allocation changes nothing. Services that cannot be asked (not running yet, not Ollama) pass. It is
    /// asked on this node (its spec's address), or where <paramref name="where"/> says it answers (another node's
    /// Ollama; null: nowhere yet), which is only looked up for an Ollama and candidates to check.
    /// </summary>
    public async Task PrecheckAsync(Profiles.ServiceProfile service, IReadOnlyList<string> candidates, CancellationToken cancellationToken, Func<CancellationToken, Task<string?>>? where = null)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(candidates);
        var wanted = candidates.Where(c => !string.IsNullOrWhiteSpace(c)).ToList();
        if (wanted.Count == 0 || service.Managed is not { } spec || !OllamaClient.IsOllama(service.Name, spec.HealthPath)
            || (where is null ? spec.LocalUrl : await where(cancellationToken)) is not { } url
            || await ollama.TagsAsync(url, cancellationToken) is not { } tags)
        {
            return;
        }

        Match(service.Name, wanted, tags.Select(t => t.Name).ToList());
    }

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

        // A candidate Ollama has loaded answers at once (nothing to load, nothing to unload): it goes first.
        var available = tags.Select(t => t.Name).ToList();
        return wanted.Select(c => TryMatch(c, available)).FirstOrDefault(m => m is not null && instance.LoadedModels.Any(l => l.Name == m))
            ?? Match(instance.Service, wanted, available);
    }

    /// <summary>What Ollama calls <paramref name="candidate"/> (a name without a tag matches <c>:latest</c>, else any tag); null when it does not have it.</summary>
    private static string? TryMatch(string candidate, List<string> available) =>
        available.FirstOrDefault(a => a == candidate)
        ?? (candidate.Contains(':', StringComparison.Ordinal) ? null : available.FirstOrDefault(a => a == candidate + ":latest") ?? available.FirstOrDefault(a => a.StartsWith(candidate + ":", StringComparison.Ordinal)));

    /// <summary>The first candidate Ollama has (a name without a tag matches <c>:latest</c> or any tag); none: refused (422) with what it has.</summary>
    private static string Match(string service, List<string> wanted, List<string> available)
    {
        foreach (var candidate in wanted)
        {
            if (TryMatch(candidate, available) is { } match)
            {
                return match;
            }
        }

        throw new OrchestrationException(OrchestrationError.Invalid,
            $"none of the model candidates ({string.Join(", ", wanted)}) is available on {service}; it has {(available.Count == 0 ? "no models" : string.Join(", ", available))}");
    }
}
