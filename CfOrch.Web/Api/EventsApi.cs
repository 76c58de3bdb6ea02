using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;

namespace CfOrch.Web.Api;

public static class EventsApi
{
    /// <summary><c>GET /api/events</c>: the live state stream as server-sent events (see <see cref="ServerSentEvents"/>).</summary>
    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/events", (HttpContext http, Orchestrator orchestrator) => ServerSentEvents.StreamStateAsync(http, orchestrator))
            .WithTags("Events")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .RequireAuthorization(AccessPolicies.Read);
        return endpoints;
    }
}
