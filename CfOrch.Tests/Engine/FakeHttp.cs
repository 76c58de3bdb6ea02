using System.Collections.Concurrent;
using System.Net;

namespace CfOrch.Tests.Engine;

/// <summary>
/// An HTTP client factory whose handler answers by URL from a table a test changes as it goes; an URL set to
/// <see cref="Hang"/> never answers (until the request is cancelled). Every request is counted.
/// </summary>
public sealed class FakeHttp : IHttpClientFactory, CfOrch.Core.Health.ILoopbackPorts
{
    public static readonly HttpStatusCode Hang = (HttpStatusCode)999;

    private readonly ConcurrentDictionary<string, HttpStatusCode> _answers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);

    /// <summary>What GET {url} answers; unset URLs refuse the connection.</summary>
    public void Answer(string url, HttpStatusCode status) => _answers[url] = status;

    public void Refuse(string url) => _answers.TryRemove(url, out _);

    public int Requests(string url) => _requests.GetValueOrDefault(url);

    public HttpClient CreateClient(string name) => new(new Handler(this), disposeHandler: true);

    /// <summary>Every probe goes to the table (a refusal there is counted as a request, as before the pre-check).</summary>
    public ValueTask<string?> RefusedAsync(Uri target) => ValueTask.FromResult<string?>(null);

    private sealed class Handler(FakeHttp http) : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var url = request.RequestUri!.ToString();
            http._requests.AddOrUpdate(url, 1, (_, n) => n + 1);
            if (!http._answers.TryGetValue(url, out var status))
            {
                throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused", new IOException("Connection refused"));
            }

            if (status == Hang)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return new HttpResponseMessage(status) { Content = new StringContent("{}") };
        }
    }
}
