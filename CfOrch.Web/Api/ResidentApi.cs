using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;

namespace CfOrch.Web.Api;

public static class ResidentApi
{
    /// <summary><c>GET /api/resident</c> (cf-orch): the services that are warm — running or idle — and their model.</summary>
    public static IEndpointRouteBuilder MapResidentApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/resident", (Orchestrator o) => Results.Json(new
        {
            residents = o.Instances.Where(i => i.IsServing).Select(i => new
            {
                service = i.Service,
                node_id = i.Key.NodeId,
                gpu_id = i.Key.GpuIndex,
                model_name = i.Model,
                first_seen = LeaseRow.Unix(i.Since),
                origin = i.Origin,
            }),
        }, ApiJson.Options)).WithTags("Services").RequireAuthorization(AccessPolicies.Read);
        return endpoints;
    }
}
