using CfOrch.Core.Gpus;

namespace CfOrch.Web.Protocol;

// The agent protocol's answers that both ends read: an agent writes them (Api/AgentApi), its coordinator reads them
// (Cluster/RemoteServices).

/// <summary><c>GET /services/{service}</c> on an agent.</summary>
public sealed record AgentServiceAnswer(string Service, bool Running, string? Url);

/// <summary><c>GET /services</c> on an agent: the services it runs (the Python agent answers the same).</summary>
public sealed record AgentRunningAnswer(IReadOnlyList<string> Running);

/// <summary><c>POST /services/{service}/start</c> on an agent.</summary>
public sealed record AgentStartAnswer(string Service, string Url, bool Running, bool Adopted);

/// <summary><c>POST /services/{service}/stop</c> on an agent.</summary>
public sealed record AgentStopAnswer(string Service, bool Stopped);

/// <summary>A node's GPU as an agent reports it (<c>GET /gpu-info</c>) and as <c>/api/nodes</c> lists it.</summary>
public sealed record NodeGpuRow(int GpuId, string Name, long VramTotalMb, long VramUsedMb, long VramFreeMb)
{
    public static NodeGpuRow From(GpuInfo g) => new(g.Index, g.Name, g.TotalMb, g.UsedMb, g.FreeMb);
}
