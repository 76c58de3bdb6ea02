using CfOrch.Core.Orchestration;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Runs before the server listens: re-attaches managed services that survived a restart, then adopts what already
/// runs, so the first allocation already sees them. From the moment cf-orch begins to stop, no crashed service is
/// restarted (a process started then would only be re-attached by the next cf-orch).
/// </summary>
public sealed class EngineHostedService(EngineStartup startup, CrashRestarter restarter, IHostApplicationLifetime lifetime) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(restarter.Stop);
        return startup.RunAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
