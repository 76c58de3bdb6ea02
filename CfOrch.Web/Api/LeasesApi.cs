using System.Globalization;
using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

public static class LeasesApi
{
    private const int MaxPageSize = 500;

    /// <summary>cf-orch's lease endpoints, plus the lease history from SQLite.</summary>
    public static IEndpointRouteBuilder MapLeasesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/leases").WithTags("Leases");

        group.MapGet("", (Orchestrator o) => TypedResults.Ok(new LeasesAnswer(o.Leases.Select(LeaseRow.From).ToList())))
            .RequireAuthorization(AccessPolicies.Read);

        group.MapPost("", async (HttpRequest request, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<LeaseRequestBody>(request, ct);
            if (string.IsNullOrWhiteSpace(body.NodeId))
            {
                throw new ApiException(422, "node_id is required");
            }

            cluster.Node(body.NodeId);
            var gpu = ApiChecks.RequiredGpu(body.GpuId);

            if (body.Mb is not { } mb || mb is < 0 or > CfOrchOptionsValidator.MaxGpuMb)
            {
                throw new ApiException(422, $"mb is required and must be between 0 and {CfOrchOptionsValidator.MaxGpuMb} (got {body.Mb?.ToString(CultureInfo.InvariantCulture) ?? "nothing"})");
            }

            if (string.IsNullOrWhiteSpace(body.Service) || body.Service.Length > 128)
            {
                throw new ApiException(422, "service (the holder of the lease) is required, at most 128 characters");
            }

            if (body.Priority is < 0 or > 1000)
            {
                throw new ApiException(422, $"priority must be between 0 and 1000 (got {body.Priority})");
            }

            ApiChecks.Ttl(body.TtlS);

            try
            {
                var lease = await cluster.RequestLeaseAsync(body.Service, body.NodeId, gpu, mb, body.Priority, body.TtlS > 0 ? TimeSpan.FromSeconds(body.TtlS) : null, ct);
                return TypedResults.Ok(new LeaseAnswer(LeaseRow.From(lease)));
            }
            catch (OrchestrationException e) when (e.Error == OrchestrationError.NotFound)
            {
                throw new ApiException(422, e.Message);
            }
        }).RequireAuthorization(AccessPolicies.Control).DocumentsBody<LeaseRequestBody>("application/json");

        group.MapDelete("/{leaseId}", (string leaseId, ClusterControl cluster) =>
        {
            try
            {
                cluster.ReleaseLease(leaseId);
            }
            catch (OrchestrationException e) when (e.Error == OrchestrationError.Invalid)
            {
                throw new ApiException(StatusCodes.Status409Conflict, e.Message);
            }

            return TypedResults.Ok(new LeaseReleasedAnswer(true, leaseId));
        }).RequireAuthorization(AccessPolicies.Control);

        group.MapGet("/history", async (HttpRequest request, IHistoryReader history, CancellationToken ct) =>
        {
            var q = request.Query;
            var page = Int(q, "page", 1, 1, int.MaxValue);
            var size = Int(q, "page_size", 100, 1, MaxPageSize);
            string? kind = null;
            if (q.TryGetValue("kind", out var rawKind) && !string.IsNullOrEmpty(rawKind))
            {
                kind = Enum.TryParse<Core.History.HistoryKind>(rawKind, ignoreCase: true, out var parsed)
                    ? parsed.ToString().ToLowerInvariant()
                    : throw new ApiException(422, $"kind must be one of {string.Join(", ", Enum.GetNames<Core.History.HistoryKind>().Select(n => n.ToLowerInvariant()))} (got '{rawKind}')");
            }

            var filter = new HistoryFilter(
                q.TryGetValue("service", out var service) && !string.IsNullOrEmpty(service) ? service.ToString() : null,
                q.ContainsKey("gpu_id") ? Int(q, "gpu_id", 0, 0, 63) : null,
                kind,
                Time(q, "since"),
                Time(q, "until"));
            var (total, rows) = await history.LeaseEventsAsync(filter, page, size, ct);
            return TypedResults.Ok(new HistoryAnswer(total, page, size, rows.Select(e => new HistoryEventRow(
                e.AtUnixMs / 1000.0, e.Kind, e.LeaseId, e.NodeId, e.GpuIndex, e.Service, e.Holder, e.Origin, e.BudgetMb, e.MeasuredMb, e.Reason,
                e.GrantedAtUnixMs / 1000.0)).ToList()));
        }).RequireAuthorization(AccessPolicies.Read);

        return endpoints;
    }

    private static int Int(IQueryCollection q, string name, int fallback, int min, int max)
    {
        if (!q.TryGetValue(name, out var raw) || string.IsNullOrEmpty(raw))
        {
            return fallback;
        }

        return int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ApiException(422, $"{name} must be a whole number between {min} and {max} (got '{raw}')");
    }

    /// <summary>A time as ISO 8601 or Unix seconds, as Unix milliseconds.</summary>
    private static long? Time(IQueryCollection q, string name)
    {
        if (!q.TryGetValue(name, out var raw) || string.IsNullOrEmpty(raw))
        {
            return null;
        }

        var text = raw.ToString();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds is >= 0 and < 1e11)
        {
            return (long)(seconds * 1000);
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at.ToUnixTimeMilliseconds()
            : throw new ApiException(422, $"{name} must be an ISO 8601 time or Unix seconds (got '{text}')");
    }
}
