using CfOrch.Web.Cluster;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Polls every registered agent (<c>/gpu-info</c>, <c>/resident-info</c>) every <c>CfOrch:Cluster:PollSeconds</c>.</summary>
[DisallowConcurrentExecution]
public sealed class AgentPollJob(NodeDirectory nodes) : IJob
{
    public static readonly JobKey Key = new("agent-poll", "cf-orch");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) => await nodes.PollAllAsync(cancellationToken);
}

/// <summary>
/// Reads the registered nodes from SQLite before the engine starts and the server listens, with the services placed on
/// them (held again as unknown until their agents answer) and the book of those services following their polls.
/// </summary>
public sealed class NodeDirectoryLoader(NodeDirectory nodes, RemoteServices placed, Core.Leases.ILeaseStore store) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        placed.FollowPolls();
        await nodes.LoadAsync(cancellationToken);
        await placed.RestoreAsync(store, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
