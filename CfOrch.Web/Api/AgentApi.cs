using System.Globalization;
using System.Net;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Web.Auth;
using CfOrch.Web.Protocol;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Api;

/// <summary>
/// The agent protocol, served when <c>CfOrch:Role=agent</c>, with the shapes of the original cf-orch agent: a
/// coordinator (the original, or cf-orch) reads this node's GPUs and warm services and starts, stops and evicts its
/// services. Reads are open as the API's are; control needs the cluster token (<c>CfOrch:Cluster:Token</c>), or —
/// with no token set — a request from the coordinator's own address, or the control rights the agent's own settings
/// give (<see cref="Auth.AccessPolicies.AgentControl"/>).
/// </summary>
public static class AgentApi
{
    public static IEndpointRouteBuilder MapAgentApi(this IEndpointRouteBuilder endpoints)
    {
        var read = endpoints.MapGroup("").WithTags("Agent").RequireAuthorization(AccessPolicies.Read);
        var control = endpoints.MapGroup("").WithTags("Agent").RequireAuthorization(AccessPolicies.AgentControl);

        read.MapGet("/health", (Orchestrator o) => TypedResults.Ok(new AgentHealthAnswer("ok", o.NodeId)));

        read.MapGet("/gpu-info", (Orchestrator o, GpuMonitor gpus) =>
            TypedResults.Ok(new AgentGpuInfoAnswer(o.NodeId, gpus.Current.Gpus.Select(NodeGpuRow.From).ToList())));

        read.MapGet("/resident-info", (Orchestrator o) => TypedResults.Ok(new AgentResidentsAnswer(
            o.Instances.Where(i => i.IsServing).Select(i => new AgentResidentRow(i.Service, i.Model)).ToList())));

        read.MapGet("/services", (Orchestrator o) => TypedResults.Ok(new AgentRunningAnswer(
            o.Instances.Where(i => i.IsServing).Select(i => i.Service).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList())));

        read.MapGet("/services/{service}", (string service, Orchestrator o) =>
        {
            var serving = o.Instances.FirstOrDefault(i => i.Service == service && i.IsServing);
            return TypedResults.Ok(new AgentServiceAnswer(service, serving is not null, serving is null ? null : o.ClientUrl(serving.Url)));
        });

        control.MapPost("/services/{service}/start", async (string service, HttpRequest request, Orchestrator o, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<AgentStartBody>(request, ct, allowEmpty: true);
            ApiChecks.Gpu(body.GpuId);
            var ensured = await o.EnsureAsync(service, body.GpuId, ApiChecks.ParamsModel(body.Params), ct);
            var instance = ensured.Instance;
            return TypedResults.Ok(new AgentStartAnswer(service, o.ClientUrl(instance.Url), instance.IsServing, instance.Origin == InstanceOrigin.Adopted));
        }).DocumentsBody<AgentStartBody>("application/json");

        control.MapPost("/services/{service}/stop", async (string service, Orchestrator o, CancellationToken ct) =>
        {
            var outcomes = await o.StopAsync(service, null, ct);
            return TypedResults.Ok(new AgentStopAnswer(service, outcomes.Any(x => x.Instance.State == InstanceState.Stopped)));
        });

        // Only a process of a service cf-orch started here: an agent never signals a PID it does not own. Its processes
        // are those its VRAM is measured by (a container's: every process in its cgroup, docker exec's too). The answer's
        // method is the original agent's: not_found (no such PID), error (not allowed), sigterm or sigkill (how it ended).
        control.MapPost("/evict", async (HttpRequest request, Orchestrator o, Core.Measurement.UsageMeter meter, CancellationToken ct) =>
        {
            var body = await ApiBodies.ReadBodyAsync<AgentEvictBody>(request, ct);
            if (!double.IsFinite(body.GracePeriodS) || body.GracePeriodS is < 0 or > AgentEvictBody.MaxGracePeriodS)
            {
                throw new ApiException(422, string.Create(CultureInfo.InvariantCulture, $"grace_period_s must be between 0 and {AgentEvictBody.MaxGracePeriodS} seconds (got {body.GracePeriodS})"));
            }

            if (body.Pid <= 0 || !Core.Processes.ProcFs.IsRunning(body.Pid))
            {
                return TypedResults.Ok(new AgentEvictAnswer(false, "not_found", string.Create(CultureInfo.InvariantCulture, $"PID {body.Pid} not found")));
            }

            var owner = o.Instances.FirstOrDefault(i => i is { IsActive: true, Origin: InstanceOrigin.Managed } && meter.ProcessesOf(i).Contains(body.Pid));
            if (owner is null)
            {
                return TypedResults.Ok(new AgentEvictAnswer(false, "error",
                    string.Create(CultureInfo.InvariantCulture, $"PID {body.Pid} is not a process of a service cf-orch started on {o.NodeId}; cf-orch never signals other processes")));
            }

            // The stop sends SIGKILL only once the grace has passed: a stop (timed from its SIGTERM) that ended sooner
            // ended on SIGTERM.
            var grace = TimeSpan.FromSeconds(body.GracePeriodS);
            var outcomes = await o.StopAsync(owner.Service, owner.Key.GpuIndex, ct, grace);
            var method = outcomes.Any(x => x.StopTook >= grace) ? "sigkill" : "sigterm";
            return TypedResults.Ok(new AgentEvictAnswer(true, method, string.Join("; ", outcomes.Select(x => x.Message))));
        }).DocumentsBody<AgentEvictBody>("application/json");

        // No dashboard on an agent: one page that says what it is.
        endpoints.MapGet("/", (Orchestrator o, GpuMonitor gpus, IOptions<CfOrchOptions> options, Cluster.AgentRegistration registration) =>
        {
            var services = o.Instances.Where(i => i.IsActive).Select(i => $"<li>{WebUtility.HtmlEncode(i.Service)} on GPU {i.Key.GpuIndex}: {i.State.ToString().ToLowerInvariant()}</li>");
            var gpuList = gpus.Current.Gpus.Select(g => string.Create(CultureInfo.InvariantCulture, $"<li>GPU {g.Index} {WebUtility.HtmlEncode(g.Name)}: {g.UsedMb:N0} of {g.TotalMb:N0} MB used</li>"));
            var html = $"""
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>cf-orch agent {WebUtility.HtmlEncode(o.NodeId)}</title></head>
                <body style="font-family:sans-serif;max-width:48rem;margin:2rem auto">
                <h1>cf-orch agent {WebUtility.HtmlEncode(o.NodeId)}</h1>
                <p>Coordinator: {WebUtility.HtmlEncode(options.Value.Agent.Coordinator ?? "")} · {WebUtility.HtmlEncode(registration.Status)}</p>
                <h2>GPUs</h2><ul>{string.Concat(gpuList)}</ul>
                <h2>Services</h2><ul>{string.Concat(services)}</ul>
                <p>The dashboard is on the coordinator.</p>
                </body></html>
                """;
            return TypedResults.Content(html, "text/html; charset=utf-8");
        }).RequireAuthorization(AccessPolicies.Read);
        return endpoints;
    }
}

public sealed class AgentStartBody
{
    public int? GpuId { get; set; }

    public Dictionary<string, string> Params { get; set; } = [];
}

public sealed class AgentEvictBody
{
    /// <summary>The longest wait between SIGTERM and SIGKILL a caller may ask for.</summary>
    public const double MaxGracePeriodS = 600;

    public int Pid { get; set; }

    /// <summary>Seconds between SIGTERM and SIGKILL (the original agent's default: 5).</summary>
    public double GracePeriodS { get; set; } = 5;
}

public sealed record AgentHealthAnswer(string Status, string NodeId);

public sealed record AgentGpuInfoAnswer(string NodeId, IReadOnlyList<NodeGpuRow> Gpus);

public sealed record AgentResidentRow(string Service, string? ModelName);

public sealed record AgentResidentsAnswer(IReadOnlyList<AgentResidentRow> Residents);

public sealed record AgentEvictAnswer(bool Success, string Method, string Message);
