using System.Net;
using CfOrch.Tests.Engine;
using CfOrch.Web.Api;
using CfOrch.Web.Cluster;

namespace CfOrch.Tests.Api;

/// <summary>Where an allocate that names no node goes: a node already serving the service, else the node with the most room.</summary>
public sealed class ClusterPlacementTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_allocate_without_a_node_goes_to_the_node_with_the_most_room_and_then_to_its_warm_instance_there()
    {
        await using var heimdall = await FakeAgent.StartAsync();
        await using var nas = await FakeAgent.StartAsync();
        nas.TotalMb = 49152;
        await using var host = ApiTestHost.Start(
            "schema_version: 1\nname: coordinator\nvram_total_mb: 49152\neviction_timeout_s: 3\nservices:\n"
            + EngineApp.StandInService("llm", 6000, 2, EngineApp.FreePort(), "service --port {port}", "/health")
            + EngineApp.StandInService("comfyui", 6000, 3, EngineApp.FreePort(), "service --port {port}", "/health"));
        (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = heimdall.Url })).Is(HttpStatusCode.OK);
        (await host.PostAsync("/api/nodes", new { node_id = "nas", agent_url = nas.Url })).Is(HttpStatusCode.OK);

        // Room for it here (8 GB), on heimdall (24 GB) and on nas (48 GB): nas has the most.
        var first = (await host.PostAsync("/api/services/llm/allocate", new { model_candidates = new[] { "m" }, caller = "a" })).Is(HttpStatusCode.OK).Json;
        Assert.Equal(("nas", true, false), (first.GetProperty("node_id").GetString(), first.GetProperty("started").GetBoolean(), first.GetProperty("warm").GetBoolean()));

        // heimdall now has the most room, but llm is warm on nas: it goes there again, and what is not warm goes to heimdall.
        heimdall.TotalMb = 98304;
        await host.Get<NodeDirectory>().PollAllAsync(Ct);
        var second = (await host.PostAsync("/api/services/llm/allocate", new { model_candidates = new[] { "m" }, caller = "b" })).Is(HttpStatusCode.OK).Json;
        var other = (await host.PostAsync("/api/services/comfyui/allocate", new { model_candidates = new[] { "m" }, caller = "c" })).Is(HttpStatusCode.OK).Json;

        Assert.Equal(("nas", false, true), (second.GetProperty("node_id").GetString(), second.GetProperty("started").GetBoolean(), second.GetProperty("warm").GetBoolean()));
        Assert.Equal("heimdall", other.GetProperty("node_id").GetString());
        Assert.Equal(1, nas.CallsTo("POST /services/llm/start"));
    }
}
