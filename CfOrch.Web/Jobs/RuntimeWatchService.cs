using CfOrch.Core.Runtimes;

namespace CfOrch.Web.Jobs;

/// <summary>Runs each runtime's watch (a container engine's event stream, reconnecting when the engine comes back) for the life of the app.</summary>
public sealed class RuntimeWatchService(ServiceRuntimes runtimes) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(runtimes.All.Select(r => Task.Run(() => r.WatchAsync(stoppingToken), CancellationToken.None)));
}
