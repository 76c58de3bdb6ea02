using CfOrch.Core.Ollama;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Ollama;

/// <summary>The one Ollama client, against the stand-in Ollama over real HTTP on 127.0.0.1.</summary>
public sealed class OllamaClientTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddHttpClient().BuildServiceProvider();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private OllamaClient Client => new(_services.GetRequiredService<IHttpClientFactory>());

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task It_reads_what_is_pulled_what_is_loaded_and_the_version()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 3000, Ct, "--models", "llama3.2:3b,qwen2.5:7b", "--loaded", "llama3.2:3b,qwen2.5:7b");
        var url = ollama.BaseAddress.ToString();

        var tags = await Client.TagsAsync(url, Ct);
        var ps = await Client.PsAsync(url, Ct);

        Assert.Equal(["llama3.2:3b", "qwen2.5:7b"], tags!.Select(t => t.Name));
        Assert.Equal(2_019_393_189, tags![0].Size);
        Assert.Equal(["llama3.2:3b", "qwen2.5:7b"], ps!.Select(m => m.Name));
        Assert.Equal(3000L * 1024 * 1024, ps!.Sum(m => m.SizeVram));
        Assert.Equal(3000, (await Client.LoadedAsync(url, Ct))!.VramMb);
        Assert.Equal("0.5.7", await Client.VersionAsync(url, Ct));
    }

    [Fact]
    public async Task Unloading_a_model_frees_its_vram()
    {
        await using var ollama = await StandInProcess.StartOllamaAsync(EngineApp.FreePort(), 4000, Ct, "--models", "llama3.2:3b,qwen2.5:7b", "--loaded", "llama3.2:3b,qwen2.5:7b");
        var url = ollama.BaseAddress.ToString();

        Assert.True(await Client.UnloadAsync(url, "qwen2.5:7b", Ct));

        Assert.Equal(["llama3.2:3b"], (await Client.PsAsync(url, Ct))!.Select(m => m.Name));
        Assert.Equal(2000, (await Client.LoadedAsync(url, Ct))!.VramMb);
    }

    [Fact]
    public async Task A_service_that_is_down_or_is_not_ollama_gives_no_answer_rather_than_an_exception()
    {
        var down = $"http://127.0.0.1:{EngineApp.FreePort()}";
        Assert.Null(await Client.TagsAsync(down, Ct));
        Assert.Null(await Client.LoadedAsync(down, Ct));
        Assert.False(await Client.UnloadAsync(down, "x", Ct));

        await using var other = await StandInProcess.StartServiceAsync(EngineApp.FreePort(), "/health", Ct);
        Assert.Null(await Client.PsAsync(other.BaseAddress.ToString(), Ct));
        Assert.Null(await Client.VersionAsync(other.BaseAddress.ToString(), Ct));
    }

    [Theory]
    [InlineData("ollama", "/health", true)]
    [InlineData("Ollama-big", "/health", true)]
    [InlineData("llm", "/api/tags", true)]
    [InlineData("vllm", "/health", false)]
    public void Ollama_is_known_by_its_name_or_health_path(string service, string healthPath, bool expected) =>
        Assert.Equal(expected, OllamaClient.IsOllama(service, healthPath));

    [Fact]
    public async Task An_entry_without_a_usable_size_counts_as_nothing_and_the_others_still_count()
    {
        const string Ps = """{"models":[{"name":"a","size_vram":1048576000},{"name":"b","size_vram":null},{"size_vram":524288000},{"name":"c"}]}""";
        using var http = new JsonAnswers(Ps);
        var client = new OllamaClient(http);

        Assert.Equal(1500, (await client.LoadedAsync("http://ollama.test", Ct))!.VramMb);
        Assert.Equal(["a", "b", "c"], (await client.PsAsync("http://ollama.test", Ct))!.Select(m => m.Name));
    }

    /// <summary>An HTTP client factory whose every answer is this JSON.</summary>
    private sealed class JsonAnswers(string json) : IHttpClientFactory, IDisposable
    {
        private readonly Handler _handler = new(json);

        public HttpClient CreateClient(string name) => new(_handler, disposeHandler: false);

        public void Dispose() => _handler.Dispose();

        private sealed class Handler(string json) : HttpMessageHandler
        {
            protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
                Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") });
        }
    }
}
