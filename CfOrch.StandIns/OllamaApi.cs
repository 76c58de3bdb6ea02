using System.Text.Json;

namespace CfOrch.StandIns;

/// <summary>What <c>GET /api/ps</c> reports; replaced as a whole by <c>POST /control/ps</c>.</summary>
public sealed record PsState(int VramMb, IReadOnlyList<string> Loaded);

/// <summary>The endpoints of <c>ollama</c> mode: the part of Ollama's API that cf-orch reads, plus a control endpoint for tests.</summary>
public static class OllamaApi
{
    public static void MapOllamaApi(this WebApplication app, StandInOptions options)
    {
        var tags = new OllamaList<OllamaTag>(options.Models.Select(OllamaCatalog.Tag).ToArray());
        var ps = new PsState(options.VramMb, options.Loaded);

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
            var running = new OllamaList<OllamaRunning>(OllamaCatalog.Running(state.Loaded, state.VramMb));
            return context.Response.WriteAsJsonAsync(running, StandInJson.Default.OllamaListOllamaRunning, cancellationToken: context.RequestAborted);
        });
        // Only what cf-orch sends: {"model": …, "keep_alive": 0} unloads the model (its share of VRAM goes with it).
        app.MapPost("/api/generate", async context =>
        {
            var request = await ReadAsync(context, StandInJson.Default.GenerateRequest, r => r is { Model.Length: > 0, KeepAlive: 0 },
                "this stand-in only unloads: {\"model\": \"name\", \"keep_alive\": 0}");
            if (request is null)
            {
                return;
            }

            var current = Volatile.Read(ref ps);
            var left = current.Loaded.Where(m => m != request.Model).ToArray();
            var vram = current.Loaded.Count == 0 ? 0 : (int)((long)current.VramMb * left.Length / current.Loaded.Count);
            Volatile.Write(ref ps, new PsState(vram, left));
            await context.Response.WriteAsJsonAsync(new GenerateAnswer(request.Model!, OllamaCatalog.ModifiedAt, "", true, "unload"), StandInJson.Default.GenerateAnswer, cancellationToken: context.RequestAborted);
        });
        app.MapPost("/control/ps", async context =>
        {
            var control = await ReadAsync(context, StandInJson.Default.PsControl, c => c is not { VramMb: < 0 },
                "expected {\"vram_mb\": N >= 0, \"loaded\": [\"name\", ...]}");
            if (control is null)
            {
                return;
            }
            var current = Volatile.Read(ref ps);
            Volatile.Write(ref ps, new PsState(control.VramMb ?? current.VramMb, control.Loaded?.ToArray() ?? current.Loaded));
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });
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
