using System.Net;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Security;

/// <summary>
/// What a web page open in a browser on the GPU machine can make cf-orch do: nothing. Each request is one a page can
/// make the browser send (a no-cors fetch, a form, a DNS-rebinding page, a page on another port), through the real
/// pipeline, and the engine is checked unchanged afterwards.
/// </summary>
public sealed class BrowserAttackTests
{
    private static readonly object Lease = new { node_id = "local", gpu_id = 0, mb = 100, service = "x" };

    private static Dictionary<string, string> Headers(params (string Name, string Value)[] headers) => headers.ToDictionary(h => h.Name, h => h.Value);

    [Theory]
    [InlineData("http://evil.example")]
    [InlineData("http://localhost:9999")] // another port of this machine: another origin
    [InlineData("https://localhost")] // another scheme
    [InlineData("null")] // a sandboxed frame or a file
    public async Task A_write_from_another_origin_is_refused_and_changes_nothing(string origin)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Origin", origin)))).Is(HttpStatusCode.Forbidden);

        Assert.Contains("web pages may not change cf-orch", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Theory]
    [InlineData("cross-site")]
    [InlineData("same-site")] // a page on another port of this host, or a sibling subdomain: the cookie would go along
    public async Task A_write_the_browser_marks_as_from_another_site_is_refused(string site)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Sec-Fetch-Site", site)))).Is(HttpStatusCode.Forbidden);

        Assert.Contains($"({site})", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Fact]
    public async Task The_dashboards_own_origin_and_programs_without_an_origin_may_write()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Origin", "http://localhost"), ("Sec-Fetch-Site", "same-origin")))).Is(HttpStatusCode.OK);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease)).Is(HttpStatusCode.OK); // curl, the Python client

        Assert.Equal(2, host.Orchestrator.Leases.Count);
    }

    [Fact]
    public async Task An_origin_listed_in_allowed_origins_may_write()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:Auth:AllowedOrigins:0"] = "http://tools.lan:3000" });

        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Origin", "http://TOOLS.lan:3000"), ("Sec-Fetch-Site", "cross-site")))).Is(HttpStatusCode.OK);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Origin", "http://tools.lan:3001")))).Is(HttpStatusCode.Forbidden);

        Assert.Single(host.Orchestrator.Leases);
    }

    [Fact]
    public async Task Reads_from_another_origin_are_answered_the_browser_keeps_them_from_the_page()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.SendAsync(HttpMethod.Get, "/api/services", null, headers: Headers(("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")))).Is(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("text/plain")] // fetch(…, {mode: 'no-cors', body: '{}'}), <form enctype="text/plain">
    [InlineData("application/x-www-form-urlencoded")] // a plain <form>
    [InlineData("multipart/form-data; boundary=x")]
    public async Task A_body_a_page_can_send_without_asking_is_refused_with_415(string contentType)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", """{"node_id":"local","gpu_id":0,"mb":100,"service":"x"}""", contentType: contentType)).Is(HttpStatusCode.UnsupportedMediaType);

        Assert.Contains("takes application/json", refused.Detail, StringComparison.Ordinal);
        (await host.SendAsync(HttpMethod.Post, "/api/services/worker/allocate", """{"caller":"x"}""", contentType: contentType)).Is(HttpStatusCode.UnsupportedMediaType);
        (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test", "schema_version: 1\nname: engine-test\n", contentType: contentType)).Is(HttpStatusCode.UnsupportedMediaType);
        Assert.Empty(host.Orchestrator.Leases);
        Assert.Empty(host.Orchestrator.Allocations);
    }

    [Fact]
    public async Task A_dns_rebinding_page_on_loopback_gets_no_control()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var rebound = Headers(("Host", "rebind.attacker.example:7700"), ("Origin", "http://rebind.attacker.example:7700"));

        // Same origin from the browser's point of view, from 127.0.0.1 — but the Host is the attacker's name.
        var profile = "schema_version: 1\nname: engine-test\nservices:\n  sh:\n    max_mb: 1\n    managed:\n      type: process\n      exec_path: /bin/sh\n";
        var refused = (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test", profile, contentType: "application/yaml", headers: rebound)).Is(HttpStatusCode.Unauthorized);
        Assert.Contains("'rebind.attacker.example'", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("CfOrch:Auth:AllowedHosts", refused.Detail, StringComparison.Ordinal);
        (await host.SendAsync(HttpMethod.Post, "/api/services/worker/start", new { }, headers: rebound)).Is(HttpStatusCode.Unauthorized);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: rebound)).Is(HttpStatusCode.Unauthorized);

        Assert.DoesNotContain("/bin/sh", await File.ReadAllTextAsync(host.App.ProfilePath, TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
        var me = (await host.SendAsync(HttpMethod.Get, "/api/auth/me", null, headers: rebound)).Is(HttpStatusCode.OK).Json;
        Assert.False(me.GetProperty("can_control").GetBoolean());
    }

    [Theory]
    [InlineData("localhost:7700")]
    [InlineData("127.0.0.1:7700")]
    [InlineData("127.0.1.1")]
    [InlineData("[::1]:7700")]
    [InlineData("gpu-box:7700")] // listed in AllowedHosts
    public async Task Loopback_addressed_to_a_name_of_this_machine_controls(string hostHeader)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:Auth:AllowedHosts:0"] = "gpu-box" });

        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers(("Host", hostHeader)))).Is(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("X-Forwarded-For", "192.168.1.50")]
    [InlineData("X-Forwarded-Host", "cf-orch.example")]
    [InlineData("Forwarded", "for=192.168.1.50")]
    [InlineData("X-Real-IP", "192.168.1.50")]
    [InlineData("Via", "1.1 nginx")]
    public async Task A_reverse_proxy_on_this_machine_does_not_hand_out_loopback_rights(string header, string value)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: Headers((header, value)))).Is(HttpStatusCode.Unauthorized);

        Assert.Contains("through a proxy", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_the_forwarded_client_needs_credentials_and_spoofed_headers_from_others_are_ignored()
    {
        const string Token = "proxy-test-token-0123456789";
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:TrustedProxies:0"] = "127.0.0.1",
            ["CfOrch:Auth:TrustedNetworks:0"] = "192.168.1.0/24",
            ["CfOrch:Auth:ApiTokens:0"] = Token,
        });
        var forwarded = Headers(("X-Forwarded-For", "192.168.1.50"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "cf-orch.example"));

        // Through the proxy, even from a trusted network, control needs credentials; the proxy's host and scheme are the origin.
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, headers: forwarded)).Is(HttpStatusCode.Unauthorized);
        var withOrigin = new Dictionary<string, string>(forwarded) { ["Origin"] = "https://cf-orch.example" };
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, bearer: Token, headers: withOrigin)).Is(HttpStatusCode.OK);

        // A machine that is not the proxy gains nothing by sending forwarding headers.
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, remote: "10.0.0.9", headers: Headers(("X-Forwarded-For", "192.168.1.50")))).Is(HttpStatusCode.Unauthorized);

        Assert.Single(host.Orchestrator.Leases);
    }

    [Fact]
    public async Task Trusted_networks_may_control_without_credentials_and_nobody_else()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:TrustedNetworks:0"] = "192.168.1.0/24",
            ["CfOrch:Auth:TrustedNetworks:1"] = "fd00::/8",
            ["CfOrch:Auth:AdminPassword"] = "correct horse battery",
        });

        (await host.PostAsync("/api/leases", Lease, remote: "192.168.1.50")).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", Lease, remote: "::ffff:192.168.1.51")).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", Lease, remote: "fd00::17")).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/leases", Lease, remote: "192.168.2.50")).Is(HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/leases", Lease, remote: "10.0.0.9")).Is(HttpStatusCode.Unauthorized);

        Assert.Equal(3, host.Orchestrator.Leases.Count);
    }

    [Fact]
    public async Task A_dns_rebinding_page_gets_no_control_from_a_trusted_network_either()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new()
        {
            ["CfOrch:Auth:TrustedNetworks:0"] = "192.168.1.0/24",
            ["CfOrch:Auth:AllowedHosts:0"] = "gpu-box.lan",
        });
        var rebound = Headers(("Host", "rebind.attacker.example:7700"), ("Origin", "http://rebind.attacker.example:7700"));

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, remote: "192.168.1.50", headers: rebound)).Is(HttpStatusCode.Unauthorized);

        Assert.Contains("neither an IP address nor a name in CfOrch:Auth:AllowedHosts", refused.Detail, StringComparison.Ordinal);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, remote: "192.168.1.50", headers: Headers(("Host", "192.168.1.10:7700")))).Is(HttpStatusCode.OK);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", Lease, remote: "192.168.1.50", headers: Headers(("Host", "GPU-BOX.lan:7700")))).Is(HttpStatusCode.OK);
        Assert.Equal(2, host.Orchestrator.Leases.Count);
    }

    [Theory]
    [InlineData("/API/leases")]
    [InlineData("/Api/Leases")]
    public async Task Upper_case_paths_reach_the_same_checks(string path)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.SendAsync(HttpMethod.Post, path, """{"node_id":"local","gpu_id":0,"mb":100,"service":"x"}""", contentType: "text/plain")).Is(HttpStatusCode.UnsupportedMediaType);
        (await host.SendAsync(HttpMethod.Post, path, Lease, headers: Headers(("Origin", "http://evil.example")))).Is(HttpStatusCode.Forbidden);
        (await host.SendAsync(HttpMethod.Post, path, Lease, headers: Headers(("Host", "rebind.attacker.example")))).Is(HttpStatusCode.Unauthorized);
        (await host.SendAsync(HttpMethod.Get, path.Replace("leases", "services/a%1b[2J/status", StringComparison.OrdinalIgnoreCase), null)).Is(HttpStatusCode.BadRequest);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Theory]
    [InlineData("/_blazor/negotiate")]
    [InlineData("/_BLAZOR/negotiate")]
    public async Task The_dashboards_live_connection_refuses_other_web_pages(string path)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        (await host.SendAsync(HttpMethod.Post, path, null, headers: Headers(("Origin", "http://evil.example")))).Is(HttpStatusCode.Forbidden);
        (await host.SendAsync(HttpMethod.Get, path, null, headers: Headers(("Sec-Fetch-Site", "cross-site")))).Is(HttpStatusCode.Forbidden);
    }
}
