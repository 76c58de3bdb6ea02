namespace CfOrch.Web.Api;

public static class HealthApi
{
    /// <summary><c>GET /api/health</c>: the process is up and serving (cf-orch's liveness check).</summary>
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/health", () => TypedResults.Ok(new HealthResponse("ok")))
            .WithName("Health")
            .WithTags("Health");
        return endpoints;
    }

    public sealed record HealthResponse(string Status);
}
