using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Api;

/// <summary>
/// A cf-orch agent on 127.0.0.1 answering <c>GET /gpu-info</c> and <c>GET /resident-info</c> as the Python agent does;
/// it remembers the Authorization header of each call. Started again on the same port, it is the same agent back.
/// </summary>
public sealed class FakeAgent : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeAgent(WebApplication app, int port, ConcurrentQueue<string> authorizations)
    {
        _app = app;
        Port = port;
        Authorizations = authorizations;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>The Authorization header of every call ("" when none was sent).</summary>
    public ConcurrentQueue<string> Authorizations { get; }

    public static async Task<FakeAgent> StartAsync(int padBytes = 0, int? port = null)
    {
        var chosen = port ?? Testing.FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{chosen}");
        var app = builder.Build();
        var authorizations = new ConcurrentQueue<string>();
        app.Use(async (context, next) =>
        {
            authorizations.Enqueue(context.Request.Headers.Authorization.ToString());
            await next(context);
        });
        app.MapGet("/gpu-info", () => Results.Json(new
        {
            node_id = "heimdall",
            gpus = new[] { new { gpu_id = 0, name = "RTX 4090", vram_total_mb = 24576, vram_used_mb = 1024, vram_free_mb = 23552 } },
            pad = new string('x', padBytes),
        }));
        app.MapGet("/resident-info", () => Results.Json(new { residents = new[] { new { service = "ollama", model_name = "llama3.1:8b" } } }));
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new FakeAgent(app, chosen, authorizations);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
