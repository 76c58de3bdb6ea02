namespace CfOrch.Web.Api;

public static class HealthApi
{
    /// <summary><c>GET /api/health</c>: the process is up and serving (cf-orch's liveness check).</summary>
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/health", (Core.Storage.StorageHealth storage) => TypedResults.Ok(new HealthResponse(
                "ok", new StorageState(storage.Ok, storage.Problem is { } p ? $"the database cannot be written since {p.Since:u}: {p.Detail.TrimEnd('.')}; history is not being recorded" : null))))
            .WithName("Health")
            .WithTags("Health");
        return endpoints;
    }

    /// <summary>cf-orch's answer (<c>status</c>), plus whether its database can be written (scheduling goes on either way).</summary>
    public sealed record HealthResponse(string Status, StorageState Storage);

    public sealed record StorageState(bool Ok, string? Detail);
}
