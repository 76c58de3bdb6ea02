using System.Net;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

public sealed class MiscApiTests
{
    [Fact]
    public async Task Gpus_list_processes_leases_and_books()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        host.App.Factory.SimulatedGpus.SetProcessUsage(0, 4242, 1500, "python3");
        host.Get<Core.Gpus.GpuMonitor>().Refresh();
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 2000, service = "x" })).Is(HttpStatusCode.OK);

        var answer = (await host.GetAsync("/api/gpus")).Is(HttpStatusCode.OK).Json;

        Assert.Equal("simulated", answer.GetProperty("source").GetString());
        var gpu = answer.GetProperty("gpus")[0];
        Assert.Equal((8192L, 1500L, 6692L), (gpu.GetProperty("total_mb").GetInt64(), gpu.GetProperty("used_mb").GetInt64(), gpu.GetProperty("free_mb").GetInt64()));
        Assert.Equal((4242, "python3", 1500L), (gpu.GetProperty("processes")[0].GetProperty("pid").GetInt32(), gpu.GetProperty("processes")[0].GetProperty("name").GetString(), gpu.GetProperty("processes")[0].GetProperty("used_mb").GetInt64()));
        Assert.Equal("x", gpu.GetProperty("leases")[0].GetProperty("holder_service").GetString());
        // The client's lease cannot be measured: the 1,500 MB nobody else accounts for is presumed to be its own, not
        // counted a second time as external.
        var account = gpu.GetProperty("account");
        Assert.Equal((2000L, 0L, 2000L, 6192L), (account.GetProperty("leased_mb").GetInt64(), account.GetProperty("external_mb").GetInt64(), account.GetProperty("committed_mb").GetInt64(), account.GetProperty("available_mb").GetInt64()));

        // Beyond the client's budget it is external: 3,000 MB in use against a 2,000 MB lease leaves 1,000 MB unexplained.
        host.App.Factory.SimulatedGpus.SetProcessUsage(0, 4242, 3000, "python3");
        host.Get<Core.Gpus.GpuMonitor>().Refresh();
        account = (await host.GetAsync("/api/gpus")).Is(HttpStatusCode.OK).Json.GetProperty("gpus")[0].GetProperty("account");
        Assert.Equal((1000L, 3000L, 5192L, false), (account.GetProperty("external_mb").GetInt64(), account.GetProperty("committed_mb").GetInt64(), account.GetProperty("available_mb").GetInt64(), account.GetProperty("overcommitted").GetBoolean()));
    }

    [Fact]
    public async Task Healthz_metrics_and_openapi_are_served()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 2000, service = "x" })).Is(HttpStatusCode.OK);

        Assert.Equal("Healthy", (await host.GetAsync("/healthz")).Is(HttpStatusCode.OK).Body);
        var metrics = (await host.GetAsync("/metrics")).Is(HttpStatusCode.OK).Body;
        Assert.Contains("cf_orch_gpu_vram_total_mb{gpu=\"0\"} 8192", metrics, StringComparison.Ordinal);
        Assert.Contains("cf_orch_gpu_vram_committed_mb{gpu=\"0\"} 2000", metrics, StringComparison.Ordinal);
        Assert.Contains("cf_orch_leases{gpu=\"0\",origin=\"client\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("cf_orch_probe_latency_seconds", metrics, StringComparison.Ordinal);

        var openapi = (await host.GetAsync("/openapi/v1.json")).Is(HttpStatusCode.OK).Json;
        var paths = openapi.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/services/{service}/allocate", paths);
        Assert.Contains("/api/leases/history", paths);
        Assert.Contains("/api/events", paths);
        Assert.True(openapi.GetProperty("paths").GetProperty("/api/leases").GetProperty("post").TryGetProperty("requestBody", out _));
    }

    [Fact]
    public async Task An_unknown_api_path_is_a_json_404()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        Assert.Contains("no endpoint GET /api/nothing-here", (await host.GetAsync("/api/nothing-here")).Is(HttpStatusCode.NotFound).Detail, StringComparison.Ordinal);
        // A path that exists for other methods is a 405 that names them.
        Assert.Equal("DELETE is not allowed on /api/health; it takes GET", (await host.DeleteAsync("/api/health")).Is(HttpStatusCode.MethodNotAllowed).Detail);
    }
}
