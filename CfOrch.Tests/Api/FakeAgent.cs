using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Api;

/// <summary>
/// An unchanged Python cf-orch agent on 127.0.0.1, with the shapes of its answers: <c>GET /gpu-info</c>;
/// <c>GET /resident-info</c>, which lists only what answers on its well-known ports (an Ollama with several models
/// loaded as <c>ollama/0</c>, <c>ollama/1</c>), never a process it started; <c>GET /services</c>
/// (<c>{running}</c>), <c>GET /services/{s}</c> (<c>{service, running, url}</c>); <c>POST /services/{s}/start</c>
/// (<c>{service, url, running}</c>, no <c>adopted</c>) and <c>/stop</c> (<c>{service, stopped}</c>). The services it
/// "starts" answer at its own address, which also answers Ollama's <c>/api/tags</c> with <see cref="Models"/>. It
/// remembers the Authorization header and the method and path of each call. Started again on the same port, it is the
/// same agent back.
/// </summary>
public sealed class FakeAgent : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeAgent(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>The Authorization header of every call ("" when none was sent).</summary>
    public ConcurrentQueue<string> Authorizations { get; } = new();

    /// <summary>Every call, as "GET /services/llm".</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>What <c>/resident-info</c> lists (service, model_name): by default one Ollama with one model loaded.</summary>
    public IReadOnlyList<(string Service, string? Model)> Residents { get; set; } = [("ollama", "llama3.1:8b")];

    /// <summary>The services it runs (started through it and not stopped since); a test removes one to make it end there.</summary>
    public ConcurrentDictionary<string, bool> Running { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether a start runs the service (false: it answers <c>running: false</c> and never lists it, a start that never came up).</summary>
    public bool StartsRunning { get; set; } = true;

    /// <summary>The models its Ollama has pulled (<c>/api/tags</c>).</summary>
    public IReadOnlyList<string> Models { get; set; } = ["llama3.1:8b", "qwen2.5:7b"];

    /// <summary>The size of its one GPU (1 GB of it in use by programs nobody leased).</summary>
    public long TotalMb { get; set; } = 24576;

    /// <summary>The calls made with this method and path.</summary>
    public int CallsTo(string call) => Calls.Count(c => c == call);

    public static async Task<FakeAgent> StartAsync(int padBytes = 0, int? port = null)
    {
        var chosen = port ?? Testing.FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{chosen}");
        var app = builder.Build();
        var agent = new FakeAgent(app, chosen);
        app.Use(async (context, next) =>
        {
            agent.Authorizations.Enqueue(context.Request.Headers.Authorization.ToString());
            agent.Calls.Enqueue($"{context.Request.Method} {context.Request.Path}");
            await next(context);
        });
        app.MapGet("/gpu-info", () => Results.Json(new
        {
            node_id = "heimdall",
            gpus = new[] { new { gpu_id = 0, name = "RTX 4090", vram_total_mb = agent.TotalMb, vram_used_mb = 1024L, vram_free_mb = agent.TotalMb - 1024 } },
            pad = new string('x', padBytes),
        }));
        app.MapGet("/resident-info", () => Results.Json(new { residents = agent.Residents.Select(r => new { service = r.Service, model_name = r.Model }) }));
        app.MapGet("/services", () => Results.Json(new { running = agent.Running.Keys.Order(StringComparer.Ordinal) }));
        app.MapGet("/services/{service}", (string service) =>
            Results.Json(new { service, running = agent.Running.ContainsKey(service), url = agent.Running.ContainsKey(service) ? agent.Url : null }));
        app.MapPost("/services/{service}/start", (string service) =>
        {
            if (agent.StartsRunning)
            {
                agent.Running[service] = true;
            }

            return Results.Json(new { service, url = agent.Url, running = agent.StartsRunning });
        });
        app.MapPost("/services/{service}/stop", (string service) => Results.Json(new { service, stopped = agent.Running.TryRemove(service, out _) }));
        app.MapGet("/api/tags", () => Results.Json(new { models = agent.Models.Select(m => new { name = m, size = 1_000_000_000L }) }));
        await app.StartAsync(TestContext.Current.CancellationToken);
        return agent;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
