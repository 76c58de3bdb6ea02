using System.Text.Json;
using CfOrch.Core.Health;
using CfOrch.Core.Instances;
using CfOrch.Core.Measurement;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Picks the model of an allocation from the caller's candidates, in order: for Ollama, the first one it has pulled
/// (<c>/api/tags</c>; a name without a tag matches <c>:latest</c> or any tag); for other services, the first one.
/// </summary>
public sealed class ModelResolver(IHttpClientFactory httpClients)
{
    private static readonly TimeSpan TagsTimeout = TimeSpan.FromSeconds(3);

    public async Task<string?> ResolveAsync(InstanceSnapshot instance, IReadOnlyList<string> candidates, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(candidates);
        var wanted = candidates.Where(c => !string.IsNullOrWhiteSpace(c)).ToList();
        if (wanted.Count == 0)
        {
            return instance.Model;
        }

        if (!UsageMeter.IsOllama(instance.Service, instance.HealthPath) || await OllamaModelsAsync(instance.Url, cancellationToken) is not { } available)
        {
            return wanted[0];
        }

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

    private async Task<List<string>?> OllamaModelsAsync(string baseUrl, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(TagsTimeout);
        try
        {
            var client = httpClients.CreateClient(HealthProber.ClientName);
            using var response = await client.GetAsync(new Uri(baseUrl.TrimEnd('/') + "/api/tags"), cts.Token);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            await using var body = await response.Content.ReadAsStreamAsync(cts.Token);
            using var json = await JsonDocument.ParseAsync(body, default, cts.Token);
            return json.RootElement.TryGetProperty("models", out var models) && models.ValueKind == JsonValueKind.Array
                ? models.EnumerateArray().Select(m => m.TryGetProperty("name", out var n) ? n.GetString() : null).OfType<string>().ToList()
                : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return null;
        }
    }
}
