using System.Net;
using System.Text.Json;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Api;

/// <summary>Exactly what cf-orch's Python CFOrchClient and its node agent send, and what they read back.</summary>
public sealed class ConformanceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_python_clients_allocate_and_release_work_unchanged()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 2500, Ct, "--models", "llama3.2:3b,qwen2.5:7b");
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("ollama", 4096, 1, ollama.Port, "ollama --port {port}", "/api/tags", adopt: true)));

        // CFOrchClient._build_body: {"model_candidates": [...], "ttl_s": ..., "caller": ...}
        var answer = (await host.PostAsync("/api/services/ollama/allocate", new Dictionary<string, object>
        {
            ["model_candidates"] = new[] { "mistral:7b", "qwen2.5:7b" },
            ["ttl_s"] = 3600.0,
            ["caller"] = "peregrine",
        })).Is(HttpStatusCode.OK);

        // CFOrchClient._parse_allocation reads these fields.
        var data = answer.Json;
        var allocationId = data.GetProperty("allocation_id").GetString()!;
        Assert.Equal("ollama", data.GetProperty("service").GetString());
        Assert.Equal("local", data.GetProperty("node_id").GetString());
        Assert.Equal(0, data.GetProperty("gpu_id").GetInt32());
        Assert.Equal("qwen2.5:7b", data.GetProperty("model").GetString());
        Assert.Equal($"http://127.0.0.1:{ollama.Port}", data.GetProperty("url").GetString());
        Assert.False(data.GetProperty("started").GetBoolean());
        Assert.True(data.GetProperty("warm").GetBoolean());
        Assert.Equal(["allocation_id", "service", "node_id", "gpu_id", "model", "url", "started", "warm"], data.EnumerateObject().Select(p => p.Name));

        var status = (await host.GetAsync("/api/services/ollama/status")).Is(HttpStatusCode.OK).Json;
        Assert.Equal("peregrine", status.GetProperty("allocations")[0].GetProperty("caller").GetString());

        // The client's release on exit.
        var released = (await host.DeleteAsync($"/api/services/ollama/allocations/{allocationId}")).Is(HttpStatusCode.OK).Json;
        Assert.True(released.GetProperty("released").GetBoolean());
        Assert.Equal(allocationId, released.GetProperty("allocation_id").GetString());
        Assert.Equal(0, (await host.GetAsync("/api/services/ollama/status")).Json.GetProperty("allocations").GetArrayLength());
    }

    [Fact]
    public async Task The_agents_registration_works_unchanged()
    {
        await using var agent = await FakeAgent.StartAsync();
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var answer = (await host.PostAsync("/api/nodes", new { node_id = "heimdall", agent_url = agent.Url })).Is(HttpStatusCode.OK).Json;

        Assert.True(answer.GetProperty("registered").GetBoolean());
        Assert.Equal("heimdall", answer.GetProperty("node_id").GetString());
        var nodes = (await host.GetAsync("/api/nodes")).Is(HttpStatusCode.OK).Json.GetProperty("nodes");
        var heimdall = nodes.EnumerateArray().Single(n => n.GetProperty("node_id").GetString() == "heimdall");
        Assert.Equal(agent.Url, heimdall.GetProperty("agent_url").GetString());
        Assert.Equal(24576, heimdall.GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());
        Assert.Equal("local", nodes[0].GetProperty("node_id").GetString());
        Assert.Equal(8192, nodes[0].GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());
    }
}
