using System.Diagnostics;
using CfOrch.Core.Instances;

namespace CfOrch.Core.Health;

/// <summary>GET {url}{health_path} with a short timeout; any 2xx is healthy.</summary>
public sealed class HealthProber(IHttpClientFactory httpClients, TimeProvider time, ILoopbackPorts ports)
{
    /// <summary>The named client: no proxy (probes go to loopback and the LAN), short connect timeout, no redirects.</summary>
    public const string ClientName = Http.HttpClientNames.Probe;

    public async Task<ProbeOutcome> ProbeAsync(string baseUrl, string healthPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var at = time.GetUtcNow();
        var started = Stopwatch.GetTimestamp();
        using var timeoutCts = new CancellationTokenSource(timeout, time);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        try
        {
            // Nothing listening on a loopback port is the common answer of the adoption pass (twice a second for each
            // adoptable service that does not run): found with one connect, without an HTTP request and its exception.
            var target = new Uri(baseUrl.TrimEnd('/') + healthPath);
            if (await ports.RefusedAsync(target) is { } refused)
            {
                return new ProbeOutcome(at, false, null, Elapsed(started), $"cannot connect: {refused}");
            }

            var client = httpClients.CreateClient(ClientName);
            using var request = new HttpRequestMessage(HttpMethod.Get, target);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            var ok = (int)response.StatusCode is >= 200 and < 300;
            return new ProbeOutcome(at, ok, (int)response.StatusCode, Elapsed(started), ok ? null : $"{healthPath} answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ProbeOutcome(at, false, null, Elapsed(started), $"{healthPath} did not answer within {timeout.TotalSeconds:0.##} s");
        }
        catch (HttpRequestException ex)
        {
            return new ProbeOutcome(at, false, null, Elapsed(started), Describe(ex));
        }
    }

    private static double Elapsed(long started) => Stopwatch.GetElapsedTime(started).TotalMilliseconds;

    private static string Describe(HttpRequestException ex) => ex.HttpRequestError switch
    {
        HttpRequestError.ConnectionError => $"cannot connect: {ex.InnerException?.Message ?? ex.Message}",
        HttpRequestError.NameResolutionError => "the host name does not resolve",
        _ => ex.Message,
    };
}
