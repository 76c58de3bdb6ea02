using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CfOrch.Core.Ollama;

/// <summary>One pulled model of <c>GET /api/tags</c>.</summary>
public sealed record OllamaModel(string Name, long Size);

/// <summary>One loaded model of <c>GET /api/ps</c>: <see cref="SizeVram"/> bytes of it are on the GPU; it unloads at <see cref="ExpiresAt"/>.</summary>
public sealed record OllamaLoadedModel(string Name, long Size, long SizeVram, DateTimeOffset? ExpiresAt = null);

/// <summary>What <c>GET /api/ps</c> says: the VRAM all loaded models hold, in MB, and the models by name.</summary>
public sealed record OllamaPs(long VramMb, IReadOnlyList<OllamaLoadedModel> Models);

/// <summary>
/// The one place that speaks Ollama's API (the parts cf-orch uses): what is pulled (<c>/api/tags</c>), what is loaded and
/// how much VRAM it holds (<c>/api/ps</c>), the version (<c>/api/version</c>), and unloading a model (<c>/api/generate</c>
/// with <c>keep_alive: 0</c>). Every call is bounded by a timeout and answers null (or false) when Ollama does not
/// answer as Ollama does — never an exception for a service that is down or is not Ollama.
/// </summary>
public sealed class OllamaClient(IHttpClientFactory httpClients)
{
    /// <summary>The named HTTP client: the health prober's (short timeouts, no logging of every call).</summary>
    public const string ClientName = Http.HttpClientNames.Probe;

    /// <summary>How long a question may take: <c>/api/ps</c> is asked on every measurement pass (every 2 s), so briefly.</summary>
    public static readonly TimeSpan PsTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How long the other questions may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private const long BytesPerMb = 1024 * 1024;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>Ollama is recognised by its service name or its health path (<c>/api/tags</c>).</summary>
    public static bool IsOllama(string service, string healthPath)
    {
        ArgumentNullException.ThrowIfNull(service);
        return service.StartsWith("ollama", StringComparison.OrdinalIgnoreCase) || healthPath == "/api/tags";
    }

    /// <summary>The models Ollama has pulled; null when it does not answer as Ollama does.</summary>
    public async Task<IReadOnlyList<OllamaModel>?> TagsAsync(string baseUrl, CancellationToken cancellationToken) =>
        (await GetAsync<ModelList<TagEntry>>(baseUrl, "/api/tags", Timeout, cancellationToken))?.Models?
            .Where(m => m?.Name is not null).Select(m => new OllamaModel(m!.Name!, m.Size ?? 0)).ToList();

    /// <summary>The models Ollama has loaded; null when it does not answer as Ollama does.</summary>
    public async Task<IReadOnlyList<OllamaLoadedModel>?> PsAsync(string baseUrl, CancellationToken cancellationToken) =>
        (await LoadedAsync(baseUrl, cancellationToken))?.Models;

    /// <summary>
    /// One read of <c>/api/ps</c>: Σ size_vram of every entry in MB (an entry without a usable size_vram counts as
    /// nothing; the others still count, named or not) and the named models; null when Ollama does not answer as Ollama does.
    /// </summary>
    public async Task<OllamaPs?> LoadedAsync(string baseUrl, CancellationToken cancellationToken)
    {
        if ((await GetAsync<ModelList<PsEntry>>(baseUrl, "/api/ps", PsTimeout, cancellationToken))?.Models is not { } entries)
        {
            return null;
        }

        var models = entries.Where(m => m?.Name is not null)
            .Select(m => new OllamaLoadedModel(m!.Name!, m.Size ?? 0, Math.Max(0, m.SizeVram ?? 0), ExpiresAt(m.ExpiresAt)))
            .ToList();
        return new OllamaPs(entries.Sum(m => Math.Max(0, m?.SizeVram ?? 0)) / BytesPerMb, models);
    }

    /// <summary>Ollama's <c>expires_at</c>; a year far ahead (a model kept forever) or one that does not parse is no expiry.</summary>
    private static DateTimeOffset? ExpiresAt(string? text) =>
        DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var at) && at.Year < 2200 ? at : null;

    /// <summary>Ollama's version (<c>0.5.7</c>); null when it does not answer as Ollama does.</summary>
    public async Task<string?> VersionAsync(string baseUrl, CancellationToken cancellationToken) =>
        (await GetAsync<VersionAnswer>(baseUrl, "/api/version", Timeout, cancellationToken))?.Version;

    /// <summary>Asks Ollama to unload <paramref name="model"/> now (<c>keep_alive: 0</c>); true when it said yes.</summary>
    public async Task<bool> UnloadAsync(string baseUrl, string model, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        using var cts = Bounded(Timeout, cancellationToken);
        try
        {
            var client = httpClients.CreateClient(ClientName);
            using var response = await client.PostAsJsonAsync(Endpoint(baseUrl, "/api/generate"), new UnloadRequest(model, 0), Json, cts.Token);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (IsNoAnswer(ex, cancellationToken))
        {
            return false;
        }
    }

    private async Task<T?> GetAsync<T>(string baseUrl, string path, TimeSpan timeout, CancellationToken cancellationToken)
        where T : class
    {
        using var cts = Bounded(timeout, cancellationToken);
        try
        {
            var client = httpClients.CreateClient(ClientName);
            using var response = await client.GetAsync(Endpoint(baseUrl, path), cts.Token);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            await using var body = await response.Content.ReadAsStreamAsync(cts.Token);
            return await JsonSerializer.DeserializeAsync<T>(body, Json, cts.Token);
        }
        catch (Exception ex) when (IsNoAnswer(ex, cancellationToken))
        {
            return null;
        }
    }

    private static CancellationTokenSource Bounded(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        return cts;
    }

    private static Uri Endpoint(string baseUrl, string path) => new(baseUrl.TrimEnd('/') + path);

    // Down, slow, or not Ollama: no answer. The caller's own cancellation still propagates.
    private static bool IsNoAnswer(Exception ex, CancellationToken cancellationToken) =>
        ex is HttpRequestException or JsonException or InvalidOperationException or NotSupportedException
        || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested;

    private sealed record ModelList<T>(IReadOnlyList<T?>? Models);

    private sealed record TagEntry(string? Name, long? Size);

    private sealed record PsEntry(string? Name, long? Size, long? SizeVram, string? ExpiresAt);

    private sealed record VersionAnswer(string? Version);

    private sealed record UnloadRequest(string Model, [property: JsonPropertyName("keep_alive")] int KeepAlive);
}
