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
            GenerateRequest? request;
            try
            {
                request = await JsonSerializer.DeserializeAsync(context.Request.Body, StandInJson.Default.GenerateRequest, context.RequestAborted);
            }
            catch (JsonException e)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync(e.Message, context.RequestAborted);
                return;
            }

            if (request is not { Model.Length: > 0, KeepAlive: 0 })
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("this stand-in only unloads: {\"model\": \"name\", \"keep_alive\": 0}", context.RequestAborted);
                return;
            }

            var current = Volatile.Read(ref ps);
            var left = current.Loaded.Where(m => m != request.Model).ToArray();
            var vram = current.Loaded.Count == 0 ? 0 : (int)((long)current.VramMb * left.Length / current.Loaded.Count);
            Volatile.Write(ref ps, new PsState(vram, left));
            await context.Response.WriteAsJsonAsync(new GenerateAnswer(request.Model, OllamaCatalog.ModifiedAt, "", true, "unload"), StandInJson.Default.GenerateAnswer, cancellationToken: context.RequestAborted);
        });
        app.MapPost("/control/ps", async context =>
        {
            PsControl? control;
            try
            {
                control = await JsonSerializer.DeserializeAsync(context.Request.Body, StandInJson.Default.PsControl, context.RequestAborted);
            }
            catch (JsonException e)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync(e.Message, context.RequestAborted);
                return;
            }
            if (control is null || control.VramMb < 0)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("expected {\"vram_mb\": N >= 0, \"loaded\": [\"name\", ...]}", context.RequestAborted);
                return;
            }
            var current = Volatile.Read(ref ps);
            Volatile.Write(ref ps, new PsState(control.VramMb ?? current.VramMb, control.Loaded?.ToArray() ?? current.Loaded));
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });
    }
}
