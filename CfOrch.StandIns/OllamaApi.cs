using System.Globalization;
using System.Text.Json;

namespace CfOrch.StandIns;

/// <summary>One model in memory: what <c>GET /api/ps</c> reports for it.</summary>
public sealed record LoadedEntry(string Name, long SizeVram, string ExpiresAt);

/// <summary>What <c>GET /api/ps</c> reports: the loaded models, replaced as a whole on every change.</summary>
public sealed record PsState(IReadOnlyList<LoadedEntry> Models);

/// <summary>
/// The endpoints of <c>ollama</c> mode: the part of Ollama's API that cf-orch reads, plus a control endpoint for tests.
/// Like Ollama, <c>/api/generate</c> and <c>/api/chat</c> load the model they name (its size from <c>/api/tags</c>)
/// and push its <c>expires_at</c> to now + <c>keep_alive</c> (default 5m; negative: kept for ever), and
/// <c>keep_alive: 0</c> unloads it.
/// </summary>
public static class OllamaApi
{
    /// <summary>How long a model stays loaded after a request that does not say (Ollama's default).</summary>
    public static readonly TimeSpan DefaultKeepAlive = TimeSpan.FromMinutes(5);

    /// <summary>Ollama's expires_at for a model kept for ever (a year far ahead).</summary>
    public const string Forever = "2318-11-23T00:00:00Z";

    public static void MapOllamaApi(this WebApplication app, StandInOptions options)
    {
        var tags = new OllamaList<OllamaTag>(options.Models.Select(OllamaCatalog.Tag).ToArray());
        var ps = new PsState(OllamaCatalog.Split(options.Loaded, options.VramMb));
        var gate = new Lock();

        app.MapMethods("/", ["GET", "HEAD"], context =>
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync("Ollama is running", context.RequestAborted);
        });
        app.MapMethods("/api/version", ["GET", "HEAD"], context =>
            context.Response.WriteAsJsonAsync(new OllamaVersion("0.5.7"), StandInJson.Default.OllamaVersion, cancellationToken: context.RequestAborted));
        app.MapMethods("/api/tags", ["GET", "HEAD"], context =>
            context.Response.WriteAsJsonAsync(tags, StandInJson.Default.OllamaListOllamaTag, cancellationToken: context.RequestAborted));
        app.MapGet("/api/ps", context =>
        {
            var state = Volatile.Read(ref ps);
            var running = new OllamaList<OllamaRunning>(state.Models.Select(OllamaCatalog.Running).ToArray());
            return context.Response.WriteAsJsonAsync(running, StandInJson.Default.OllamaListOllamaRunning, cancellationToken: context.RequestAborted);
        });

        // A request that names a model loads it (or keeps it loaded longer); keep_alive: 0 unloads it.
        async Task UseAsync(HttpContext context, bool chat)
        {
            var request = await ReadAsync(context, StandInJson.Default.GenerateRequest, r => r is { Model.Length: > 0 },
                "expected {\"model\": \"name\", \"keep_alive\": 0 | seconds | \"5m\"}");
            if (request is null)
            {
                return;
            }

            if (KeepAlive(request.KeepAlive) is not { } keepAlive)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync($"keep_alive {request.KeepAlive} is not a duration", context.RequestAborted);
                return;
            }

            var model = request.Model!;
            var now = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture);
            if (keepAlive == TimeSpan.Zero)
            {
                lock (gate)
                {
                    Volatile.Write(ref ps, new PsState(Volatile.Read(ref ps).Models.Where(m => m.Name != model).ToArray()));
                }

                await context.Response.WriteAsJsonAsync(new GenerateAnswer(model, now, "", true, "unload"), StandInJson.Default.GenerateAnswer, cancellationToken: context.RequestAborted);
                return;
            }

            if (tags.Models.FirstOrDefault(t => t.Name == model) is not { } tag)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsJsonAsync(new OllamaError($"model '{model}' not found"), StandInJson.Default.OllamaError, cancellationToken: context.RequestAborted);
                return;
            }

            var expires = keepAlive < TimeSpan.Zero ? Forever : (DateTimeOffset.UtcNow + keepAlive).ToString("o", CultureInfo.InvariantCulture);
            lock (gate)
            {
                var models = Volatile.Read(ref ps).Models;
                var loaded = models.FirstOrDefault(m => m.Name == model);
                var entry = new LoadedEntry(model, loaded?.SizeVram ?? tag.Size, expires);
                Volatile.Write(ref ps, new PsState(loaded is null ? [.. models, entry] : models.Select(m => m.Name == model ? entry : m).ToArray()));
            }

            if (chat)
            {
                await context.Response.WriteAsJsonAsync(new ChatAnswer(model, now, new ChatMessage("assistant", "ok"), true, "stop"), StandInJson.Default.ChatAnswer, cancellationToken: context.RequestAborted);
            }
            else
            {
                await context.Response.WriteAsJsonAsync(new GenerateAnswer(model, now, "ok", true, "stop"), StandInJson.Default.GenerateAnswer, cancellationToken: context.RequestAborted);
            }
        }

        app.MapPost("/api/generate", context => UseAsync(context, chat: false));
        app.MapPost("/api/chat", context => UseAsync(context, chat: true));
        app.MapPost("/control/ps", async context =>
        {
            var control = await ReadAsync(context, StandInJson.Default.PsControl, c => c is not { VramMb: < 0 },
                "expected {\"vram_mb\": N >= 0, \"loaded\": [\"name\", ...]}");
            if (control is null)
            {
                return;
            }

            lock (gate)
            {
                var current = Volatile.Read(ref ps).Models;
                var names = control.Loaded ?? current.Select(m => m.Name).ToArray();
                var vram = control.VramMb ?? (int)(current.Sum(m => m.SizeVram) / OllamaCatalog.MiB);
                Volatile.Write(ref ps, new PsState(OllamaCatalog.Split(names, vram)));
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });
    }

    /// <summary>Ollama's keep_alive: absent (5m), a number of seconds, or a duration such as "10m", "1h", "30s", "0"; negative is for ever; null when it is none of these.</summary>
    public static TimeSpan? KeepAlive(JsonElement? value)
    {
        switch (value)
        {
            case null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined }:
                return DefaultKeepAlive;
            case { ValueKind: JsonValueKind.Number } number when number.TryGetDouble(out var seconds):
                return TimeSpan.FromSeconds(seconds);
            case { ValueKind: JsonValueKind.String } text:
                var s = text.GetString()!.Trim();
                var unit = s.Length > 0 && char.IsAsciiLetter(s[^1]) ? s[^1] : 's';
                var digits = char.IsAsciiLetter(unit) && s.Length > 0 && char.IsAsciiLetter(s[^1]) ? s[..^1] : s;
                if (!double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out var amount))
                {
                    return null;
                }

                return unit switch
                {
                    's' => TimeSpan.FromSeconds(amount),
                    'm' => TimeSpan.FromMinutes(amount),
                    'h' => TimeSpan.FromHours(amount),
                    _ => null,
                };
            default:
                return null;
        }
    }

    /// <summary>The JSON body when it parses and <paramref name="valid"/> holds; else null, after answering 400 with why.</summary>
    private static async Task<T?> ReadAsync<T>(HttpContext context, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, Func<T, bool> valid, string expected)
        where T : class
    {
        string problem;
        try
        {
            if (await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted) is { } body && valid(body))
            {
                return body;
            }

            problem = expected;
        }
        catch (JsonException e)
        {
            problem = e.Message;
        }

        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        await context.Response.WriteAsync(problem, context.RequestAborted);
        return null;
    }
}
