using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Console;

namespace CfOrch.StandIns;

/// <summary>Runs the stand-in: signals, the child, the start-up delay, the web server and the lines tests parse.</summary>
public static class StandInHost
{
    public static async Task<int> RunAsync(StandInOptions options)
    {
        // SIGTERM and SIGINT are handled here rather than by the host's ConsoleLifetime, so that --ignore-sigterm can
        // really ignore SIGTERM (every registration runs; the host's own would stop the app).
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Console.Out.WriteLine("STANDIN SIGNAL SIGTERM");
            Console.Out.Flush();
            if (!options.IgnoreSigterm)
                stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            Console.Out.WriteLine("STANDIN SIGNAL SIGINT");
            Console.Out.Flush();
            stop.Cancel();
        });

        if (options.ExitAfterMs is { } exitAfterMs)
            _ = ExitAfterAsync(exitAfterMs, options.ExitCode);

        if (options.Child)
            StartChild();

        try
        {
            await Task.Delay(options.StartupDelayMs, stop.Token);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }

        var exit = new ExitRequest();
        await using var app = Build(options, exit);
        try
        {
            await app.StartAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (IOException e)
        {
            await Console.Error.WriteLineAsync($"STANDIN ERROR {e.Message}");
            return 1;
        }

        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
        Console.Out.WriteLine($"STANDIN LISTENING http://{options.Host}:{address.Port}");
        Console.Out.Flush();

        await app.WaitForShutdownAsync(stop.Token);
        return exit.Code ?? 0;
    }

    private static WebApplication Build(StandInOptions options, ExitRequest exit)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.AddFilter(null, LogLevel.Warning);
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddSingleton<IHostLifetime, SignalLifetime>();

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            Console.Out.WriteLine($"STANDIN REQUEST {context.Request.Method} {context.Request.Path.Value}");
            if (options.AnswerDelayMs > 0 && !context.Request.Path.StartsWithSegments("/control", StringComparison.Ordinal))
                await Task.Delay(options.AnswerDelayMs, context.RequestAborted);
            await next(context);
        });
        app.MapPost("/control/exit", context =>
        {
            // A crash on cue: the process exits with ?code= (default 1) once this answer is sent, so a test decides
            // when a serving service dies instead of racing a timer against its start-up.
            var code = context.Request.Query["code"].ToString() is { Length: > 0 } text ? text : "1";
            if (!int.TryParse(code, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var exitCode) || exitCode > 255)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return context.Response.WriteAsync($"code '{code}' is not a whole number from 0 to 255", context.RequestAborted);
            }
            // A graceful stop, so that this answer reaches the caller before the process is gone (exiting at once
            // could drop it unsent, and the client would retry on a new connection that is refused).
            exit.Code = exitCode;
            context.Response.OnCompleted(() =>
            {
                context.RequestServices.GetRequiredService<IHostApplicationLifetime>().StopApplication();
                return Task.CompletedTask;
            });
            context.Response.StatusCode = StatusCodes.Status202Accepted;
            return context.Response.WriteAsync($"exiting with code {exitCode}", context.RequestAborted);
        });
        if (options.Mode == StandInMode.Ollama)
            app.MapOllamaApi(options);
        else
            app.MapServiceApi(options);
        app.Map("/{**path}", context =>
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("404 page not found", context.RequestAborted);
        });
        return app;
    }

    /// <summary>A child that outlives nothing on its own: it lets tests check that a whole process group is ended.</summary>
    private static void StartChild()
    {
        var start = new ProcessStartInfo("/bin/sleep", ["3600"])
        {
            UseShellExecute = false,
            // Its own pipes, so that it does not hold the stand-in's stdout open after the stand-in is gone.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var child = Process.Start(start) ?? throw new InvalidOperationException("/bin/sleep did not start");
        Console.Out.WriteLine($"STANDIN CHILD {child.Id}");
        Console.Out.Flush();
    }

    private static async Task ExitAfterAsync(int delayMs, int exitCode)
    {
        await Task.Delay(delayMs);
        Console.Out.Flush();
        Environment.Exit(exitCode);
    }

    /// <summary>The exit code asked for by <c>POST /control/exit</c>, if any.</summary>
    private sealed class ExitRequest
    {
        public int? Code { get; set; }
    }

    /// <summary>Replaces the host's ConsoleLifetime, whose signal handlers would stop the app on SIGTERM.</summary>
    private sealed class SignalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
