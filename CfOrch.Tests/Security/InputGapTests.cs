using System.Net;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Security;

/// <summary>Input a client should never send is refused with a JSON 400 that says what and where, and changes nothing.</summary>
public sealed class InputGapTests
{
    [Fact]
    public async Task A_key_given_twice_is_refused()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", """{"node_id":"local","gpu_id":0,"mb":-5,"mb":10,"service":"x"}""")).Is(HttpStatusCode.BadRequest);

        Assert.Equal("the key 'mb' is given twice (line 1, position 39); each key may appear once", refused.Detail);
        Assert.Empty(host.Orchestrator.Leases);
        (await host.SendAsync(HttpMethod.Post, "/api/services/worker/allocate", """{"params":{"a":"1","a":"2"}}""")).Is(HttpStatusCode.BadRequest);

        // The binder matches keys in any case: "MB" is "mb" given twice.
        Assert.StartsWith("the key 'MB' is given twice", (await host.SendAsync(HttpMethod.Post, "/api/leases", """{"node_id":"local","gpu_id":0,"mb":100,"MB":321,"service":"x"}""")).Is(HttpStatusCode.BadRequest).Detail, StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Theory]
    [InlineData("service", "x\u0000y")]
    [InlineData("service", "x\ny")]
    [InlineData("service", "\u001b[31mred")]
    [InlineData("service", "x\u007f")]
    [InlineData("service", "x\u009b31m")]
    [InlineData("node_id", "lo\rcal")]
    public async Task A_control_character_in_a_name_or_holder_is_refused(string field, string value)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var body = new Dictionary<string, object> { ["node_id"] = "local", ["gpu_id"] = 0, ["mb"] = 10, ["service"] = "x" };
        body[field] = value;

        var refused = (await host.PostAsync("/api/leases", body)).Is(HttpStatusCode.BadRequest);

        Assert.StartsWith($"the value of '{field}' holds the control character U+", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(host.Orchestrator.Leases);
    }

    [Theory]
    [InlineData("\u007f", "U+007F")]
    [InlineData("\u009b", "U+009B")]
    [InlineData("\u0085", "U+0085")]
    public async Task A_control_character_sent_unescaped_is_refused_where_it_stands(string character, string named)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        // DEL and the C1 range may stand in JSON unescaped (as UTF-8), unlike C0: the check still finds them, and says
        // on which line.
        var refused = (await host.SendAsync(HttpMethod.Post, "/api/leases", "{\"node_id\": \"local\",\n \"gpu_id\": 0, \"mb\": 10,\n \"service\": \"ab" + character + "c\"}")).Is(HttpStatusCode.BadRequest);

        Assert.Equal($"the value of 'service' holds the control character {named} at position 3 (line 3, position 13); names, holders and callers are printable text", refused.Detail);
        Assert.Empty(host.Orchestrator.Leases);
        (await host.SendAsync(HttpMethod.Post, "/api/leases", "{\"node_id\": \"local\", \"gpu_id\": 0, \"mb\": 10, \"service\": \"caf\u00e9 \u2013 ok\"}")).Is(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_caller_with_an_ansi_escape_is_refused_but_a_password_may_hold_any_character()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:Auth:AdminPassword"] = "pass\u0001word-long", ["CfOrch:Auth:LoopbackAlwaysControls"] = "true" });

        var refused = (await host.PostAsync("/api/services/worker/allocate", new { caller = "bot\u001b[2J", model_candidates = Array.Empty<string>() })).Is(HttpStatusCode.BadRequest);
        Assert.Contains("'caller'", refused.Detail, StringComparison.Ordinal);
        (await host.PostAsync("/api/services/worker/allocate", new { caller = "ok", model_candidates = new[] { "m\u0007" } })).Is(HttpStatusCode.BadRequest);
        Assert.Empty(host.Orchestrator.Allocations);

        (await host.PostAsync("/api/auth/login", new { password = "pass\u0001word-long" }, remote: "192.168.1.50")).Is(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("/api/profiles/abc%0A")]
    [InlineData("/api/services/x%1B%5B2J/start")]
    [InlineData("/api/leases/history?service=x%0Ay")]
    public async Task A_control_character_in_the_path_or_query_is_refused(string path)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var method = path.StartsWith("/api/profiles", StringComparison.Ordinal) ? HttpMethod.Put : path.Contains("history", StringComparison.Ordinal) ? HttpMethod.Get : HttpMethod.Post;
        var body = method == HttpMethod.Put ? "schema_version: 1\nname: abc\n" : null;

        var refused = (await host.SendAsync(method, path, body, contentType: "application/yaml")).Is(HttpStatusCode.BadRequest);

        Assert.Contains("control character", refused.Detail, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(host.App.DataDir, "profiles", "abc\n.yaml")));
    }

    [Fact]
    public void A_name_with_a_trailing_newline_is_not_a_name()
    {
        Assert.True(Core.Profiles.ProfileParser.IsValidName("abc"));
        Assert.False(Core.Profiles.ProfileParser.IsValidName("abc\n"));
    }

    [Theory]
    [InlineData("GET", "/api/services/worker/logs?tail=abc", "tail: 'abc' is not a whole number")]
    [InlineData("GET", "/api/services/worker/logs?gpu_id=x", "gpu_id: 'x' is not a whole number")]
    [InlineData("PUT", "/api/profiles/engine-test?dry_run=maybe", "dry_run: 'maybe' is not true or false")]
    [InlineData("DELETE", "/api/services/worker?gpu_id=1.5", "gpu_id: '1.5' is not a whole number")]
    public async Task A_query_value_that_does_not_bind_is_a_json_400(string method, string path, string expected)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.SendAsync(new HttpMethod(method), path, method == "PUT" ? "schema_version: 1\n" : null, contentType: "application/yaml")).Is(HttpStatusCode.BadRequest);

        Assert.Equal(expected, refused.Detail);
    }

    [Fact]
    public async Task A_method_an_api_route_does_not_take_is_a_json_405()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var refused = (await host.GetAsync("/api/services/worker/stop")).Is(HttpStatusCode.MethodNotAllowed);

        Assert.Equal("GET is not allowed on /api/services/worker/stop; it takes POST", refused.Detail);
    }
}
