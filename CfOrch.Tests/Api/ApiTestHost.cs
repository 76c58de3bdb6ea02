using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;
using CfOrch.Tests.Web;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Api;

/// <summary>The app in process with a test profile, and helpers to call its API as JSON.</summary>
public sealed class ApiTestHost : IAsyncDisposable
{
    private readonly EngineApp _app;

    private ApiTestHost(EngineApp app)
    {
        _app = app;
        Client = app.Factory.CreateClient();
    }

    public HttpClient Client { get; }

    public EngineApp App => _app;

    public Orchestrator Orchestrator => _app.Orchestrator;

    public static ApiTestHost Start(string profile, Dictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null) => new(EngineApp.Start(profile, settings, services: services));

    public T Get<T>()
        where T : notnull => _app.Factory.Services.GetRequiredService<T>();

    public Task<Answer> GetAsync(string path, string? remote = null, string? bearer = null) => SendAsync(HttpMethod.Get, path, null, remote, bearer);

    public Task<Answer> DeleteAsync(string path, string? remote = null, string? bearer = null) => SendAsync(HttpMethod.Delete, path, null, remote, bearer);

    public Task<Answer> PostAsync(string path, object? body, string? remote = null, string? bearer = null, string? cookie = null) => SendAsync(HttpMethod.Post, path, body, remote, bearer, cookie: cookie);

    /// <summary>Sends a request as from <paramref name="remote"/>, with a bearer token or a <c>Cookie</c> header (<c>name=value</c>) when given.</summary>
    public async Task<Answer> SendAsync(HttpMethod method, string path, object? body, string? remote = null, string? bearer = null, string contentType = "application/json", string? cookie = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            var text = body as string ?? JsonSerializer.Serialize(body);
            request.Content = new StringContent(text, Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.Host = value;
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        if (remote is not null)
        {
            request.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, remote);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        using var response = await Client.SendAsync(request, TestContext.Current.CancellationToken).WaitAsync(EngineApp.Deadline, TestContext.Current.CancellationToken);
        var content = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return new Answer(response.StatusCode, content, response.Content.Headers.ContentType?.MediaType);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.DisposeAsync();
    }

    public sealed record Answer(HttpStatusCode Status, string Body, string? MediaType)
    {
        public JsonElement Json => JsonDocument.Parse(Body).RootElement;

        /// <summary>The error's <c>detail</c>; fails unless the body is a problem (<c>application/problem+json</c>) with a detail.</summary>
        public string Detail
        {
            get
            {
                Assert.Equal("application/problem+json", MediaType);
                return Json.GetProperty("detail").GetString()!;
            }
        }

        public Answer Is(HttpStatusCode expected)
        {
            Assert.True(Status == expected, $"expected {(int)expected} {expected}, got {(int)Status} {Status}: {Body}");
            return this;
        }
    }
}
