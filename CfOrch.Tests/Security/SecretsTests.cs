using System.Net;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Security;

/// <summary>Secrets in a profile's env are shown to those who may control cf-orch, and to nobody else.</summary>
public sealed class SecretsTests
{
    private const string Lan = "192.168.1.50";
    private const string Token = "secrets-test-token-0123456789";

    private static readonly string Profile = EngineApp.Profile("""
          vllm:
            max_mb: 1000
            priority: 2
            managed:
              type: process
              exec_path: /bin/true
              port: 8000
              env:
                HF_TOKEN: hf_live_SECRET_value
                OPENAI_API_KEY: "sk-quoted-SECRET"
                CUDA_VISIBLE_DEVICES: "0"
        """);

    [Fact]
    public async Task A_lan_visitor_sees_env_secrets_masked_and_a_controller_sees_them()
    {
        await using var host = ApiTestHost.Start(Profile, new() { ["CfOrch:Auth:ApiTokens:0"] = Token, ["CfOrch:Auth:LoopbackAlwaysControls"] = "true" });

        var masked = (await host.GetAsync("/api/profiles/engine-test", remote: Lan)).Is(HttpStatusCode.OK).Body;
        Assert.DoesNotContain("SECRET", masked, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN: ••••", masked, StringComparison.Ordinal);
        Assert.Contains("CUDA_VISIBLE_DEVICES: \"0\"", masked, StringComparison.Ordinal);

        var json = (await host.SendAsync(HttpMethod.Get, "/api/profiles/engine-test", null, remote: Lan, headers: new Dictionary<string, string> { ["Accept"] = "application/json" })).Is(HttpStatusCode.OK).Body;
        Assert.DoesNotContain("SECRET", json, StringComparison.Ordinal);

        Assert.Contains("hf_live_SECRET_value", (await host.GetAsync("/api/profiles/engine-test", remote: Lan, bearer: Token)).Is(HttpStatusCode.OK).Body, StringComparison.Ordinal);
        Assert.Contains("sk-quoted-SECRET", (await host.GetAsync("/api/profiles/engine-test")).Is(HttpStatusCode.OK).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_services_output_shows_secrets_masked_to_a_lan_visitor()
    {
        var profile = EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, EngineApp.FreePort(), "service --port {port}", "/health")
            .Replace("      port:", "      env:\n        HF_TOKEN: hf_live_SECRET_value\n      port:", StringComparison.Ordinal));
        await using var host = ApiTestHost.Start(profile);
        var worker = (await host.Orchestrator.EnsureAsync("worker", null, null, TestContext.Current.CancellationToken).WaitAsync(EngineApp.Deadline, TestContext.Current.CancellationToken)).Instance;
        var ring = host.Orchestrator.Logs(worker.Key)!;
        ring.Append(Core.Supervision.LogStream.Stdout, "loaded token hf_live_SECRET_value from the environment");
        ring.Append(Core.Supervision.LogStream.Stderr, "retrying with --api-key=sk-other-SECRET and password: SECRETpw");

        var masked = (await host.GetAsync("/api/services/worker/logs?tail=2000", remote: Lan)).Is(HttpStatusCode.OK).Body;
        var own = (await host.GetAsync("/api/services/worker/logs?tail=2000")).Is(HttpStatusCode.OK).Body;

        Assert.DoesNotContain("SECRET", masked, StringComparison.Ordinal);
        Assert.Contains("loaded token •••• from the environment", masked, StringComparison.Ordinal);
        Assert.Contains("--api-key=•••• and password: ••••", masked, StringComparison.Ordinal);
        Assert.Contains("hf_live_SECRET_value", own, StringComparison.Ordinal);
        Assert.Contains("sk-other-SECRET", own, StringComparison.Ordinal);
    }
}
