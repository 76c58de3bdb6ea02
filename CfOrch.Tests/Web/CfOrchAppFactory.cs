using System.Net;
using CfOrch.Core.Gpus;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Web;

/// <summary>
/// The real app in process (the test server), with its own data directory and simulated GPUs unless a test says otherwise.
/// </summary>
public sealed class CfOrchAppFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    private readonly Action<IServiceCollection>? _services;

    /// <summary>Settings override the defaults; a null value removes a default. <paramref name="services"/> replaces the app's services (a clock).</summary>
    public CfOrchAppFactory(Dictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        _services = services;
        DataDir = new TempDir();
        _settings = new Dictionary<string, string?>
        {
            ["CfOrch:DataDir"] = DataDir.Path,
            ["CfOrch:Gpus:Mode"] = "simulated",
            ["CfOrch:Gpus:Simulated:0:Name"] = "Simulated RTX 4090",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "24576",
            ["CfOrch:Gpus:Simulated:1:Name"] = "Simulated RTX 3060",
            ["CfOrch:Gpus:Simulated:1:TotalMb"] = "12288",
        };
        foreach (var (key, value) in settings ?? [])
        {
            if (value is null)
            {
                _settings.Remove(key);
            }
            else
            {
                _settings[key] = value;
            }
        }
    }

    public TempDir DataDir { get; }

    /// <summary>The warnings and errors the app logged.</summary>
    public LogCapture Log { get; } = new();

    public SimulatedGpuInventory SimulatedGpus => (SimulatedGpuInventory)Services.GetRequiredService<IGpuInventory>();

    /// <summary>The header a test sets to play a request from another machine (the test server has no real sockets).</summary>
    public const string RemoteAddressHeader = "X-Test-Remote-Address";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        // Only in this test host: the request's remote address comes from a test header (loopback by default).
        // Production code never reads any header for it.
        builder.ConfigureServices(s => s.AddSingleton<IStartupFilter, RemoteAddressFilter>());
        if (_services is not null)
        {
            builder.ConfigureTestServices(_services);
        }

        // The app's log goes with the test that started it (shown when it fails), not to the shared console.
        builder.ConfigureLogging(logging => logging.ClearProviders().AddProvider(new TestOutputLoggerProvider()).AddProvider(Log));
    }

    private sealed class RemoteAddressFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress = context.Request.Headers.TryGetValue(RemoteAddressHeader, out var value)
                    ? IPAddress.Parse(value.ToString())
                    : IPAddress.Loopback;
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        DataDir.Dispose();
    }
}
