using System.Net;
using System.Text;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

public sealed class LeasesApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_lease_without_a_ttl_expires_at_zero_as_the_originals_and_a_more_important_one_revokes_an_idle_client_lease()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var idle = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 6000, service = "script", priority = 3 })).Is(HttpStatusCode.OK).Json.GetProperty("lease");

        Assert.Equal(System.Text.Json.JsonValueKind.Number, idle.GetProperty("expires_at").ValueKind);
        Assert.Equal(0.0, idle.GetProperty("expires_at").GetDouble());

        // Nothing really uses the script's 6000 MB (the simulated GPU is empty): a priority-1 request takes its place.
        var taken = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "notebook", priority = 1 })).Is(HttpStatusCode.OK).Json.GetProperty("lease");
        var leases = (await host.GetAsync("/api/leases")).Json.GetProperty("leases");
        Assert.Equal([taken.GetProperty("lease_id").GetString()], leases.EnumerateArray().Select(l => l.GetProperty("lease_id").GetString()));

        // One not more important than what holds the GPU is refused in the original's words.
        var refused = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 5000, service = "other", priority = 1 })).Is(HttpStatusCode.ServiceUnavailable).Detail;
        Assert.StartsWith("Insufficient VRAM on GPU 0", refused, StringComparison.Ordinal);
        Assert.Contains("notebook 5000 MB (client, priority 1)", refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lease_is_granted_listed_and_released_with_cf_orchs_fields()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var lease = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 3000, service = "whisper", priority = 2, ttl_s = 600 })).Is(HttpStatusCode.OK).Json.GetProperty("lease");

        var id = lease.GetProperty("lease_id").GetString()!;
        Assert.Equal(("local", 0, 3000L, "whisper", 2), (lease.GetProperty("node_id").GetString(), lease.GetProperty("gpu_id").GetInt32(), lease.GetProperty("mb_granted").GetInt64(), lease.GetProperty("holder_service").GetString(), lease.GetProperty("priority").GetInt32()));
        Assert.True(lease.GetProperty("expires_at").GetDouble() > lease.GetProperty("granted_at").GetDouble() + 599);
        Assert.Equal(id, (await host.GetAsync("/api/leases")).Json.GetProperty("leases")[0].GetProperty("lease_id").GetString());

        var released = (await host.DeleteAsync($"/api/leases/{id}")).Is(HttpStatusCode.OK).Json;
        Assert.True(released.GetProperty("released").GetBoolean());
        Assert.Equal($"Lease '{id}' not found", (await host.DeleteAsync($"/api/leases/{id}")).Is(HttpStatusCode.NotFound).Detail);
    }

    [Fact]
    public async Task No_capacity_is_a_503_naming_what_holds_the_gpu()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 6000, service = "comfyui" })).Is(HttpStatusCode.OK);

        var detail = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 4000, service = "vllm" })).Is(HttpStatusCode.ServiceUnavailable).Detail;

        Assert.Contains("comfyui 6000 MB (client, priority 2)", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_services_own_lease_cannot_be_released_behind_its_back()
    {
        var port = EngineApp.FreePort();
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")));
        await host.Orchestrator.EnsureAsync("worker", null, null, Ct);
        var id = host.Orchestrator.Leases.Single().LeaseId;

        Assert.Contains("stop the service to release it", (await host.DeleteAsync($"/api/leases/{id}")).Is(HttpStatusCode.Conflict).Detail, StringComparison.Ordinal);
        Assert.Single(host.Orchestrator.Leases);
    }

    public static TheoryData<string, string, HttpStatusCode, string> BadBodies => new()
    {
        { "malformed JSON", "{\"node_id\": \"local\", \"gpu_id\": 0,", HttpStatusCode.UnprocessableEntity, "the body is not valid" },
        { "not an object", "[1, 2, 3]", HttpStatusCode.UnprocessableEntity, "the body is not valid" },
        { "empty", "", HttpStatusCode.UnprocessableEntity, "the body is empty" },
        { "mb as text", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":\"lots\",\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "at mb" },
        { "gpu_id as float", "{\"node_id\":\"local\",\"gpu_id\":0.5,\"mb\":1,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "at gpu_id" },
        { "negative mb", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":-1,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "mb is required and must be between 0 and 1048576" },
        { "absurd mb", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":99999999999,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "mb is required and must be between 0 and 1048576" },
        { "mb beyond int64", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":1e400,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "at mb" },
        { "missing mb", "{\"node_id\":\"local\",\"gpu_id\":0,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "mb is required" },
        { "missing node", "{\"gpu_id\":0,\"mb\":1,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "node_id is required" },
        { "unknown node", "{\"node_id\":\"nas\",\"gpu_id\":0,\"mb\":1,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "unknown node_id 'nas'" },
        { "unknown gpu", "{\"node_id\":\"local\",\"gpu_id\":5,\"mb\":1,\"service\":\"x\"}", HttpStatusCode.UnprocessableEntity, "has no GPU 5" },
        { "no holder", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":1}", HttpStatusCode.UnprocessableEntity, "service (the holder of the lease) is required" },
        { "negative ttl", "{\"node_id\":\"local\",\"gpu_id\":0,\"mb\":1,\"service\":\"x\",\"ttl_s\":-1}", HttpStatusCode.UnprocessableEntity, "ttl_s must be between" },
        { "deeply nested", "{\"node_id\":" + new string('[', 5000) + new string(']', 5000) + "}", HttpStatusCode.UnprocessableEntity, "the body is not valid" },
        { "huge", "{\"node_id\":\"" + new string('x', 200_000) + "\"}", HttpStatusCode.RequestEntityTooLarge, "the body is larger than 64 KiB" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task A_bad_body_is_a_clear_4xx_and_changes_nothing(string what, string body, HttpStatusCode status, string expected)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var answer = (await host.PostAsync("/api/leases", body)).Is(status);

        Assert.Contains(expected, answer.Detail, StringComparison.Ordinal);
        Assert.True(host.Orchestrator.Leases.Count == 0, what);
    }

    [Fact]
    public async Task History_is_filtered_by_service_gpu_kind_and_time_and_paged()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        for (var i = 0; i < 5; i++)
        {
            var id = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = i % 2 == 0 ? "even" : "odd" })).Json.GetProperty("lease").GetProperty("lease_id").GetString();
            (await host.DeleteAsync($"/api/leases/{id}")).Is(HttpStatusCode.OK);
        }

        await host.Get<CfOrch.Web.Data.HistoryWriter>().FlushAsync(Ct);

        var all = (await host.GetAsync("/api/leases/history")).Is(HttpStatusCode.OK).Json;
        Assert.Equal(10, all.GetProperty("total").GetInt32());
        var even = (await host.GetAsync("/api/leases/history?service=even&kind=granted&gpu_id=0")).Json;
        Assert.Equal(3, even.GetProperty("total").GetInt32());
        Assert.All(even.GetProperty("events").EnumerateArray(), e => Assert.Equal(("even", "granted"), (e.GetProperty("holder").GetString(), e.GetProperty("kind").GetString())));
        var page = (await host.GetAsync("/api/leases/history?page=2&page_size=4")).Json;
        Assert.Equal((10, 2, 4, 4), (page.GetProperty("total").GetInt32(), page.GetProperty("page").GetInt32(), page.GetProperty("page_size").GetInt32(), page.GetProperty("events").GetArrayLength()));
        Assert.Equal(10, (await host.GetAsync($"/api/leases/history?since={Uri.EscapeDataString(before.ToString("O"))}")).Json.GetProperty("total").GetInt32());
        Assert.Equal(0, (await host.GetAsync($"/api/leases/history?until={before.ToUnixTimeSeconds()}")).Json.GetProperty("total").GetInt32());

        Assert.Contains("page_size must be a whole number between 1 and 500", (await host.GetAsync("/api/leases/history?page_size=100000")).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        Assert.Contains("since must be an ISO 8601 time or Unix seconds", (await host.GetAsync("/api/leases/history?since=yesterday")).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
        Assert.Contains("kind must be one of granted, released", (await host.GetAsync("/api/leases/history?kind=exploded")).Is(HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
    }
}
