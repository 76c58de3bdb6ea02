using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Runtimes;

/// <summary>
/// A stand-in Docker engine on a Unix socket of its own: answers <c>/_ping</c>, <c>/info</c> (its runtimes) and image
/// inspections (from <see cref="Images"/>, as they are when the request arrives). Requests of a kind can be held: they
/// wait, already answered, until the test releases them (newest or all) or the client gives up.
/// </summary>
public sealed class FakeDockerEngine : IAsyncDisposable
{
    public const string Info = "info";
    public const string Image = "image";

    private readonly WebApplication _app;
    private readonly Lock _lock = new();
    private readonly List<TaskCompletionSource> _held = [];
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _waiting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _hold = new(StringComparer.Ordinal);

    private FakeDockerEngine(WebApplication app, string socket)
    {
        _app = app;
        Socket = socket;
    }

    public string Socket { get; }

    public string Endpoint => $"unix://{Socket}";

    /// <summary>The images the engine has.</summary>
    public ConcurrentDictionary<string, bool> Images { get; } = new(StringComparer.Ordinal);

    public static async Task<FakeDockerEngine> StartAsync()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"cf-orch-fake-engine-{Guid.NewGuid():N}.sock");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.ListenUnixSocket(socket));
        var app = builder.Build();
        var engine = new FakeDockerEngine(app, socket);
        app.Run(engine.AnswerAsync);
        await app.StartAsync(TestContext.Current.CancellationToken);
        return engine;
    }

    /// <summary>Holds (or, false, answers at once) the requests of a kind (<see cref="Info"/>, <see cref="Image"/>).</summary>
    public void Hold(string kind, bool hold = true) => _hold[kind] = hold;

    /// <summary>How many requests of a kind arrived.</summary>
    public int Requests(string kind) => _requests.GetValueOrDefault(kind);

    /// <summary>How many requests of a kind are held now.</summary>
    public int Waiting(string kind) => _waiting.GetValueOrDefault(kind);

    /// <summary>Lets the newest held request answer.</summary>
    public void ReleaseNewest()
    {
        lock (_lock)
        {
            _held[^1].TrySetResult();
            _held.RemoveAt(_held.Count - 1);
        }
    }

    public void ReleaseAll()
    {
        lock (_lock)
        {
            _held.ForEach(h => h.TrySetResult());
            _held.Clear();
        }
    }

    private async Task AnswerAsync(HttpContext http)
    {
        var path = Uri.UnescapeDataString(http.Request.Path.Value ?? "");
        var (kind, status, body) = path switch
        {
            _ when path.EndsWith("/_ping", StringComparison.Ordinal) => ("ping", 200, "OK"),
            _ when path.EndsWith("/info", StringComparison.Ordinal) => (Info, 200, """{"Runtimes":{"nvidia":{"path":"runc"},"runc":{"path":"runc"}}}"""),
            _ when path.Contains("/images/", StringComparison.Ordinal) && path.EndsWith("/json", StringComparison.Ordinal) =>
                Images.ContainsKey(path[(path.IndexOf("/images/", StringComparison.Ordinal) + 8)..^5])
                    ? (Image, 200, """{"Id":"sha256:0123"}""")
                    : (Image, 404, """{"message":"No such image"}"""),
            _ => ("other", 404, """{"message":"not faked"}"""),
        };
        _requests.AddOrUpdate(kind, 1, (_, n) => n + 1);
        if (_hold.GetValueOrDefault(kind))
        {
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                _held.Add(release);
            }

            _waiting.AddOrUpdate(kind, 1, (_, n) => n + 1);
            try
            {
                await release.Task.WaitAsync(http.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            finally
            {
                _waiting.AddOrUpdate(kind, 0, (_, n) => n - 1);
                lock (_lock)
                {
                    _held.Remove(release);
                }
            }
        }

        http.Response.StatusCode = status;
        http.Response.ContentType = status == 200 && kind == "ping" ? "text/plain" : "application/json";
        await http.Response.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseAll();
        await _app.DisposeAsync();
        File.Delete(Socket);
    }
}
