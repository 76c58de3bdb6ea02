using CfOrch.Core.Gpus;
using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;

namespace CfOrch.Web.Api;

public static class GpusApi
{
    /// <summary><c>GET /api/gpus</c>: every GPU with its processes, who holds what, and its books.</summary>
    public static IEndpointRouteBuilder MapGpusApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/gpus", (GpuMonitor monitor, Orchestrator o) =>
        {
            var snapshot = monitor.Current;
            var accounts = o.Accounts.ToDictionary(a => a.GpuIndex);
            var leases = o.Leases;
            var instances = o.Instances.Where(i => i.IsActive && i.Pid is not null).ToList();
            return TypedResults.Ok(new GpusAnswer(
                o.NodeId,
                snapshot.Source.ToString().ToLowerInvariant(),
                snapshot.Detail,
                snapshot.At == DateTimeOffset.MinValue ? null : LeaseRow.Unix(snapshot.At),
                snapshot.ReadError,
                snapshot.ReadFailedAt is { } failedAt ? LeaseRow.Unix(failedAt) : null,
                snapshot.Gpus.Select(g => new GpuRow(
                    g.Index, g.Name, g.Uuid, g.TotalMb, g.UsedMb, g.FreeMb, g.UtilizationPercent, g.TemperatureC, g.Error,
                    g.Processes.Select(p => new GpuProcessRow(p.Pid, p.Name, p.UsedMb, instances.FirstOrDefault(i => i.Pid == p.Pid)?.Service)).ToList(),
                    leases.Where(l => l.GpuIndex == g.Index).Select(LeaseRow.From).ToList(),
                    GpuAccountRow.From(accounts.GetValueOrDefault(g.Index)))).ToList()));
        }).WithTags("GPUs").RequireAuthorization(AccessPolicies.Read);
        return endpoints;
    }
}
