
namespace CfOrch.Web.Cluster;

public static class ClusterServiceCollectionExtensions
{
    /// <summary>The coordinator's side of several nodes: the registered agents, the calls to them, the services placed on them, and the façade over every node.</summary>
    public static IServiceCollection AddCfOrchCluster(this IServiceCollection services)
    {
        // An agent's /gpu-info is a few hundred bytes: a larger answer is refused rather than read into memory. Each call
        // sets its own deadline (a start may take minutes while a model loads; a poll, seconds).
        services.AddHttpClient(NodeDirectory.ClientName, c =>
        {
            c.MaxResponseContentBufferSize = NodeDirectory.MaxAnswerBytes;
            c.Timeout = Timeout.InfiniteTimeSpan;
        }).RemoveAllLoggers();
        services.AddSingleton<AgentClient>();
        services.AddSingleton<NodeDirectory>();
        services.AddSingleton<Core.Nodes.IRemoteNodes>(sp => sp.GetRequiredService<NodeDirectory>());
        services.AddSingleton<RemoteServices>();
        services.AddSingleton<ClusterControl>();
        return services;
    }
}
