namespace CfOrch.Web.Protocol;

/// <summary>The paths of the agent protocol (served by <c>Api/AgentApi</c> on an agent), and how a request to one is marked.</summary>
public static class AgentPaths
{
    /// <summary>The HttpContext item that marks a request to an agent path: answered as a machine's, never with an HTML page.</summary>
    public const string Marker = "cf-orch.agent-path";

    public static bool IsAgentPath(PathString path) =>
        path.StartsWithSegments("/health", StringComparison.Ordinal)
        || path.StartsWithSegments("/gpu-info", StringComparison.Ordinal)
        || path.StartsWithSegments("/resident-info", StringComparison.Ordinal)
        || path.StartsWithSegments("/services", StringComparison.Ordinal)
        || path.StartsWithSegments("/evict", StringComparison.Ordinal);
}
