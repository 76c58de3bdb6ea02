using CfOrch.Core.Orchestration;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Runs before the server listens: re-attaches managed services that survived a restart, then adopts what already
/// runs, so the first allocation already sees them.
/// </summary>
public sealed class EngineHostedService(EngineStartup startup) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => startup.RunAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
