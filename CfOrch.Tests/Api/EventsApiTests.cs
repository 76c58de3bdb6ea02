using System.Net;
using System.Text.Json;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

public sealed class EventsApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_stream_starts_with_a_snapshot_and_pushes_each_change()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var existing = (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 1000, service = "before" })).Is(HttpStatusCode.OK);

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/events", UriKind.Relative));
        using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(body);

        var (name, data) = await NextEventAsync(reader);
        Assert.Equal("snapshot", name);
        Assert.Equal("before", data.GetProperty("leases")[0].GetProperty("holder_service").GetString());
        Assert.Equal(8192, data.GetProperty("gpus")[0].GetProperty("vram_total_mb").GetInt64());
        var process = data.GetProperty("runtimes").EnumerateArray().Single(r => r.GetProperty("kind").GetString() == "process");
        Assert.True(process.GetProperty("available").GetBoolean());
        Assert.Equal(0, process.GetProperty("missing_images").GetArrayLength());

        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 500, service = "after" })).Is(HttpStatusCode.OK);

        var granted = await NextEventAsync(reader, "lease_granted");
        Assert.Equal(("after", 500L), (granted.GetProperty("holder_service").GetString(), granted.GetProperty("mb_granted").GetInt64()));
        var gpus = await NextEventAsync(reader, "gpus");
        Assert.Equal(1500, gpus.GetProperty("accounts")[0].GetProperty("account").GetProperty("leased_mb").GetInt64());
    }

    private static async Task<JsonElement> NextEventAsync(StreamReader reader, string wanted)
    {
        while (true)
        {
            var (name, data) = await NextEventAsync(reader);
            if (name == wanted)
            {
                return data;
            }
        }
    }

    private static async Task<(string Name, JsonElement Data)> NextEventAsync(StreamReader reader)
    {
        string? name = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(Ct).AsTask().WaitAsync(EngineApp.Deadline, Ct) ?? throw new EndOfStreamException();
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name is not null)
            {
                return (name, JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone());
            }
        }
    }

    [Fact]
    public void A_runtime_row_carries_the_images_the_engine_lacks_and_the_runtimes_it_has()
    {
        var status = CfOrch.Core.Runtimes.RuntimeStatus.Ready("docker") with { MissingImages = ["vllm/vllm-openai:v0.6"], EngineRuntimes = ["nvidia", "runc"] };

        var json = JsonSerializer.SerializeToElement(CfOrch.Web.Api.RuntimeRow.From(status), CfOrch.Web.Protocol.ApiJson.Options);

        Assert.Equal("vllm/vllm-openai:v0.6", json.GetProperty("missing_images")[0].GetString());
        Assert.Equal(["nvidia", "runc"], json.GetProperty("engine_runtimes").EnumerateArray().Select(r => r.GetString()));
    }
}
