using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;

namespace CfOrch.Web.Api;

public static class ResidentApi
{
    /// <summary><c>GET /api/resident</c> (cf-orch): the services that are warm — running or idle — and their model.</summary>
    public static IEndpointRouteBuilder MapResidentApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/resident", (Orchestrator o) => TypedResults.Ok(new ResidentsAnswer(
            o.Instances.Where(i => i.IsServing)
                .Select(i => new ResidentRow(i.Service, i.Key.NodeId, i.Key.GpuIndex, i.Model, LeaseRow.Unix(i.Since), i.Origin))
                .ToList()))).WithTags("Services").RequireAuthorization(AccessPolicies.Read);
        return endpoints;
    }
}
