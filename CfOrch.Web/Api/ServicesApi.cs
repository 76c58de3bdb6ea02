using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

public static class ServicesApi
{
    /// <summary>cf-orch's service endpoints (ensure, allocate, release, status, list, stop) and cf-orch's additions (start, stop, logs).</summary>
    public static IEndpointRouteBuilder MapServicesApi(this IEndpointRouteBuilder endpoints)
    {
        var read = endpoints.MapGroup("/api/services").WithTags("Services").RequireAuthorization(AccessPolicies.Read);
        var control = endpoints.MapGroup("/api/services").WithTags("Services").RequireAuthorization(AccessPolicies.Control);

        read.MapGet("", (Orchestrator o, ClusterControl cluster) => TypedResults.Ok(new ServicesAnswer(cluster.Instances.Select(i => ServiceRow.From(i, o)).ToList())));

        // As the original: a service nobody knows is answered with empty lists, not an error.
        read.MapGet("/{service}/status", (string service, Orchestrator o, ClusterControl cluster) =>
        {
            var instances = cluster.Instances.Where(i => i.Service == service).ToList();
            return TypedResults.Ok(new ServiceStatusAnswer(
                service,
                instances.Select(i => ServiceRow.From(i, o)).ToList(),
                o.Allocations.Where(a => a.Service == service).Select(AllocationRow.From).ToList()));
        });

        control.MapPost("/{service}/ensure", async (string service, HttpRequest request, Orchestrator o, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ReadTargetAsync<EnsureBody>(request, cluster, ct);
            var candidates = ApiChecks.ModelCandidates(body.ModelCandidates, body.Params);
            var ensured = await cluster.EnsureAsync(service, body.NodeId, body.GpuId, candidates.Count > 0 ? candidates[0] : null, ct);
            var instance = ensured.Instance;
            var model = await o.ResolveModelAsync(instance, candidates, ct);
            return TypedResults.Ok(new EnsureAnswer(
                service, instance.Key.NodeId, instance.Key.GpuIndex, model, o.ClientUrl(instance.Url), instance.IsServing, ensured.Started, ensured.Warm));
        }).DocumentsBody<EnsureBody>("application/json");

        control.MapPost("/{service}/allocate", async (string service, HttpRequest request, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<AllocateBody>(request, ct, allowEmpty: true);
            cluster.Node(body.NodeId);
            ApiChecks.Gpu(body.GpuId);
            ApiChecks.Ttl(body.TtlS);
            if (body.ModelCandidates.Any(c => c is null || c.Length > 256))
            {
                throw new ApiException(422, "model_candidates must be strings of at most 256 characters");
            }

            // As the original: an allocation names its model (model_candidates, else params.model).
            var candidates = ApiChecks.ModelCandidates(body.ModelCandidates, body.Params);
            if (candidates.Count == 0)
            {
                throw new ApiException(422, "model_candidates must be non-empty (or set params.model)");
            }

            var result = await cluster.AllocateAsync(service, candidates, body.NodeId, body.GpuId, body.TtlS, body.Caller ?? "", ct);
            var a = result.Allocation;
            return TypedResults.Ok(new AllocateAnswer(a.AllocationId, a.Service, a.NodeId, a.GpuIndex, a.Model, a.Url, result.Started, result.Warm));
        }).DocumentsBody<AllocateBody>("application/json");

        control.MapDelete("/{service}/allocations/{allocationId}", (string service, string allocationId, Orchestrator o) =>
        {
            o.ReleaseAllocation(service, allocationId);
            return TypedResults.Ok(new AllocationReleasedAnswer(true, allocationId));
        });

        control.MapDelete("/{service}", async (string service, string? node_id, int? gpu_id, Orchestrator o, ClusterControl cluster, CancellationToken ct) =>
        {
            var outcomes = await cluster.StopAsync(service, node_id, gpu_id, ct);
            return TypedResults.Ok(new ServiceDeletedAnswer(service, cluster.Node(node_id) ?? o.NodeId, outcomes.Count > 0, Detail(service, outcomes)));
        });

        control.MapPost("/{service}/start", async (string service, HttpRequest request, Orchestrator o, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ReadTargetAsync<StartStopBody>(request, cluster, ct);
            var ensured = await cluster.EnsureAsync(service, body.NodeId, body.GpuId, body.Model, ct);
            return TypedResults.Ok(new StartAnswer(ensured.Started, ensured.Warm, ServiceRow.From(ensured.Instance, o)));
        }).DocumentsBody<StartStopBody>("application/json");

        control.MapPost("/{service}/restart", async (string service, HttpRequest request, Orchestrator o, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ReadTargetAsync<StartStopBody>(request, cluster, ct);
            var restarted = await cluster.RestartAsync(service, body.NodeId, body.GpuId, ct);
            return TypedResults.Ok(new RestartAnswer(restarted.Started, ServiceRow.From(restarted.Instance, o)));
        }).DocumentsBody<StartStopBody>("application/json");

        control.MapPost("/{service}/stop", async (string service, HttpRequest request, Orchestrator o, ClusterControl cluster, CancellationToken ct) =>
        {
            var body = await ReadTargetAsync<StartStopBody>(request, cluster, ct);
            var outcomes = await cluster.StopAsync(service, body.NodeId, body.GpuId, ct);
            return TypedResults.Ok(new StopAnswer(service, outcomes.Select(x => new StoppedInstance(ServiceRow.From(x.Instance, o), x.Message)).ToList(), Detail(service, outcomes)));
        }).DocumentsBody<StartStopBody>("application/json");

        // Asks a serving Ollama to unload a model now (it keeps running): allowed for an adopted one, since it stops nothing.
        control.MapPost("/{service}/unload", async (string service, HttpRequest request, Orchestrator o, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<UnloadBody>(request, ct);
            ApiChecks.Gpu(body.GpuId);
            if (string.IsNullOrWhiteSpace(body.Model) || body.Model.Length > 256)
            {
                throw new ApiException(422, "model must name a loaded model (at most 256 characters)");
            }

            var detail = await o.UnloadModelAsync(service, body.GpuId, body.Model, "the API", ct);
            return TypedResults.Ok(new UnloadAnswer(service, body.Model, true, detail));
        }).DocumentsBody<UnloadBody>("application/json");

        read.MapGet("/{service}/logs", (string service, int? gpu_id, int? tail, Orchestrator o, HttpContext http, AccessEvaluator access, SecretFilter secrets) =>
        {
            var (key, ring) = LogsOf(service, gpu_id, o);
            var count = Math.Clamp(tail ?? 200, 1, 2000);
            var shown = ShownTo(access.Evaluate(http), secrets);
            return TypedResults.Ok(new LogsAnswer(service, key.GpuIndex, ring.Tail(count).Select(l => LogLineRow.From(l, shown)).ToList()));
        });

        read.MapGet("/{service}/logs/stream", async (string service, int? gpu_id, int? tail, Orchestrator o, HttpContext http, AccessEvaluator access, SecretFilter secrets) =>
        {
            var (_, ring) = LogsOf(service, gpu_id, o);
            await ServerSentEvents.StreamLogAsync(http, ring, Math.Clamp(tail ?? 100, 0, 2000), ShownTo(access.Evaluate(http), secrets));
        });

        return endpoints;
    }

    /// <summary>
    /// Reads the body of a request that targets a node and GPU (ensure, start, restart, stop) and checks both once: the
    /// node must be this one or a registered one, the GPU within range.
    /// </summary>
    private static async Task<T> ReadTargetAsync<T>(HttpRequest request, ClusterControl cluster, CancellationToken ct)
        where T : class, IServiceTarget, new()
    {
        var body = await ApiBodies.ReadBodyAsync<T>(request, ct, allowEmpty: true);
        cluster.Node(body.NodeId);
        ApiChecks.Gpu(body.GpuId);
        return body;
    }

    private static string Detail(string service, IReadOnlyList<StopOutcome> outcomes) =>
        outcomes.Count == 0 ? $"{service} was not running" : string.Join("; ", outcomes.Select(x => x.Message));

    /// <summary>A service's output as this caller may see it: as it is for those who may control cf-orch, secrets masked for everyone else.</summary>
    private static Func<string, string> ShownTo(Access access, SecretFilter secrets) => access.CanControl ? text => text : secrets.Mask;

    private static (InstanceKey Key, Core.Supervision.LogRing Ring) LogsOf(string service, int? gpuIndex, Orchestrator o)
    {
        var instance = o.Instances
            .Where(i => i.Service == service && (gpuIndex is null || i.Key.GpuIndex == gpuIndex))
            .OrderByDescending(i => i.IsActive)
            .ThenByDescending(i => i.Since)
            .FirstOrDefault();
        if (instance is null)
        {
            o.Service(service);
            throw new ApiException(404, $"{service} has no instance{(gpuIndex is null ? "" : $" on GPU {gpuIndex}")}, so no log");
        }

        if (instance.Origin == InstanceOrigin.Adopted)
        {
            throw new ApiException(404, $"{service} runs outside cf-orch (adopted): its output goes wherever its own service manager sends it (for Ollama: journalctl -u ollama)");
        }

        return (instance.Key, o.Logs(instance.Key) ?? throw new ApiException(404, $"{instance.Key} has no log in this run of cf-orch"));
    }
}

public sealed record LogLineRow(long Seq, double At, string Stream, string Text)
{
    public static LogLineRow From(Core.Supervision.LogLine l, Func<string, string> shown) =>
        new(l.Sequence, LeaseRow.Unix(l.At), l.Stream.ToString().ToLowerInvariant(), shown(l.Text));
}
