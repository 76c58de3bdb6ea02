using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CfOrch.Core.Configuration;
using CfOrch.Web.Protocol;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Cluster;

/// <summary>
/// Calls between the nodes of a cluster — the coordinator's to an agent (the original's or cf-orch's own), an agent's
/// registration with its coordinator — with the cluster token as a bearer token when one is set: answers bounded to
/// <see cref="NodeDirectory.MaxAnswerBytes"/>, each call under its own deadline.
/// </summary>
public sealed class AgentClient(IHttpClientFactory httpClients, IOptions<CfOrchOptions> options)
{
    /// <summary>How long a start may take on the agent: it answers once the service is healthy (a model may be loading).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Stops, evictions and reads: an agent that takes longer is treated as not answering.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>A read from an agent; one that takes longer than <paramref name="timeout"/> (default <see cref="CallTimeout"/>) is one that did not answer.</summary>
    public async Task<T?> GetAsync<T>(Uri url, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout ?? CallTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        try
        {
            return await SendAsync<T>(request, cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpRequestException($"GET {url.AbsolutePath} got no answer within {(timeout ?? CallTimeout).TotalSeconds:0} s");
        }
    }

    public async Task<T?> PostAsync<T>(Uri url, object body, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body, options: ApiJson.Options) };
        try
        {
            return await SendAsync<T>(request, cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpRequestException($"POST {url.AbsolutePath} got no answer within {timeout.TotalSeconds:0} s");
        }
    }

    private async Task<T?> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (options.Value.Cluster.Token is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Trim());
        }

        var client = httpClients.CreateClient(NodeDirectory.ClientName);
        using var response = await client.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{request.Method} {request.RequestUri?.AbsolutePath} answered {(int)response.StatusCode}{await DetailAsync(response, cancellationToken)}", null, response.StatusCode);
        }

        return await response.Content.ReadFromJsonAsync<T>(ApiJson.Options, cancellationToken);
    }

    /// <summary>The agent's own words for a refusal (its <c>detail</c>), when it gave any.</summary>
    private static async Task<string> DetailAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            using var json = JsonDocument.Parse(text);
            return json.RootElement.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String ? $": {detail.GetString()}" : "";
        }
        catch (Exception ex) when (ex is JsonException or HttpRequestException or InvalidOperationException)
        {
            return "";
        }
    }
}
