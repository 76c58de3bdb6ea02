using System.Net;
using System.Net.Http.Json;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

/// <summary>
/// The access policy through the real pipeline. "Another machine" is a remote address the test host sets for the
/// request (the header is read only by the test host; production code never trusts a header for it).
/// </summary>
public sealed class AuthorizationTests
{
    private const string Lan = "192.168.1.50";
    private const string Token = "test-token-0123456789abcdef";
    private const string Password = "correct horse battery";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Without_a_password_the_lan_reads_but_cannot_change_anything()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.GetAsync("/api/leases", remote: Lan)).Is(HttpStatusCode.OK);
        (await host.GetAsync("/api/services", remote: Lan)).Is(HttpStatusCode.OK);
        var denied = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "x" }, remote: Lan)).Is(HttpStatusCode.Unauthorized);
        Assert.Contains("Set CfOrch:Auth:AdminPassword", denied.Detail, StringComparison.Ordinal);
        (await host.PostAsync("/api/services/worker/start", new { }, remote: Lan)).Is(HttpStatusCode.Unauthorized);
        (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test", "schema_version: 1\nname: engine-test\n", remote: Lan, contentType: "application/yaml")).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/nodes", new { node_id = "n", agent_url = "http://127.0.0.1:1" }, remote: "::ffff:10.0.0.9")).Is(HttpStatusCode.Unauthorized);
        Assert.Empty(host.Orchestrator.Leases);

        // From this machine (IPv4 or IPv6 loopback) the same request is allowed.
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "x" }, remote: "::1")).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "y" }, remote: "::ffff:127.0.0.1")).Is(HttpStatusCode.OK);
    }

    [Fact]
    public async Task With_a_password_lan_users_sign_in_and_api_clients_send_tokens()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:AdminPassword"] = Password,
            ["CfOrch:Auth:ApiTokens:0"] = Token,
        });
        var lease = new { node_id = "local", gpu_id = 0, mb = 100, service = "x" };

        (await host.PostAsync("/api/leases", lease, remote: Lan)).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/leases", lease)).Is(HttpStatusCode.Unauthorized); // loopback needs credentials too now
        Assert.Contains("bearer token is not one of", (await host.PostAsync("/api/leases", lease, remote: Lan, bearer: "wrong-token-000000000")).Is(HttpStatusCode.Unauthorized).Detail, StringComparison.Ordinal);
        (await host.PostAsync("/api/leases", lease, remote: Lan, bearer: Token)).Is(HttpStatusCode.OK);
        (await host.GetAsync("/api/leases", remote: Lan)).Is(HttpStatusCode.OK);

        Assert.Equal("wrong password", (await host.PostAsync("/api/auth/login", new { password = "guess" }, remote: Lan)).Is(HttpStatusCode.Unauthorized).Detail);
        using var login = new HttpRequestMessage(HttpMethod.Post, new Uri("/api/auth/login", UriKind.Relative)) { Content = JsonContent.Create(new { password = Password }) };
        login.Headers.Add(Web.CfOrchAppFactory.RemoteAddressHeader, Lan);
        using var signedIn = await host.Client.SendAsync(login, Ct);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("cf-orch.auth=", StringComparison.Ordinal));
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);

        var session = cookie.Split(';')[0];
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "y" }, remote: Lan, cookie: session)).Is(HttpStatusCode.OK);
        Assert.Equal(2, host.Orchestrator.Leases.Count);

        // Signing out ends that sign-in on the server too: a copy of the cookie no longer controls anything.
        (await host.PostAsync("/api/auth/logout", null, remote: Lan, cookie: session)).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "z" }, remote: Lan, cookie: session)).Is(HttpStatusCode.Unauthorized);
        Assert.Equal(2, host.Orchestrator.Leases.Count);
    }

    [Fact]
    public async Task Reads_can_require_a_sign_in_too()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:ApiTokens:0"] = Token,
            ["CfOrch:Auth:ReadRequiresLogin"] = "true",
        });

        (await host.GetAsync("/api/services", remote: Lan)).Is(HttpStatusCode.Unauthorized);
        (await host.GetAsync("/metrics", remote: Lan)).Is(HttpStatusCode.Unauthorized);
        (await host.GetAsync("/api/services", remote: Lan, bearer: Token)).Is(HttpStatusCode.OK);
        (await host.GetAsync("/api/health", remote: Lan)).Is(HttpStatusCode.OK);
        (await host.GetAsync("/healthz", remote: Lan)).Is(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Loopback_can_be_trusted_explicitly_when_credentials_are_set()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:ApiTokens:0"] = Token,
            ["CfOrch:Auth:LoopbackAlwaysControls"] = "true",
        });

        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "x" })).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "x" }, remote: Lan)).Is(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task What_a_caller_may_do_is_visible_at_api_auth_me()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var me = (await host.GetAsync("/api/auth/me", remote: Lan)).Is(HttpStatusCode.OK).Json;

        Assert.True(me.GetProperty("can_read").GetBoolean());
        Assert.False(me.GetProperty("can_control").GetBoolean());
        Assert.False(me.GetProperty("password_configured").GetBoolean());
        Assert.True((await host.GetAsync("/api/auth/me")).Json.GetProperty("can_control").GetBoolean());
    }
}
