using CfOrch.Web.Api;
using Quartz;

namespace CfOrch.Web.Jobs;

/// <summary>Polls every registered agent (<c>/gpu-info</c>, <c>/resident-info</c>) every <c>CfOrch:Cluster:PollSeconds</c>.</summary>
[DisallowConcurrentExecution]
public sealed class AgentPollJob(NodeDirectory nodes) : IJob
{
    public static readonly JobKey Key = new("agent-poll", "cf-orch");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) => await nodes.PollAllAsync(cancellationToken);
}

/// <summary>Reads the registered nodes from SQLite before the server listens (with the book of services placed on them following their polls).</summary>
public sealed class NodeDirectoryLoader(NodeDirectory nodes, Cluster.RemoteServices placed) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        placed.FollowPolls();
        return nodes.LoadAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
