using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>
/// Memory pressure meets Ollama, seen in the browser: a more important service starts in the memory of an idle model
/// of the adopted (stand-in) Ollama; the open dashboard says which model went, and its GPU card shows the memory back.
/// </summary>
public sealed class OllamaPressureTests(BrowserFixture browser)
{
    [Fact]
    public async Task Starting_a_more_important_service_unloads_an_idle_model_the_snackbar_names_it_and_the_gpu_card_shows_the_memory_back()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandIn.StartAsync(StandIn.FreePort(), ct, "ollama", "--vram-mb", "0", "--models", "llama3.2:3b,qwen2.5:7b");
        var workerPort = StandIn.FreePort();
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-pressure-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(profile, string.Create(CultureInfo.InvariantCulture, $"""
            schema_version: 1
            name: pressure-rig
            vram_total_mb: 8192
            eviction_timeout_s: 3
            services:
              ollama:
                max_mb: 6000
                priority: 2
                managed:
                  type: process
                  adopt: true
                  exec_path: {StandIn.ExecutablePath}
                  args_template: ollama --port {'{'}port{'}'}
                  port: {ollama.Port}
                  host_port: {ollama.Port}
                  health_path: /api/tags
              vllm:
                max_mb: 5000
                priority: 1
                managed:
                  type: process
                  exec_path: {StandIn.ExecutablePath}
                  args_template: service --port {'{'}port{'}'}
                  port: {workerPort}
                  host_port: {workerPort}
                  health_path: /health
            """), ct);
        try
        {
            await using var app = await AppProcess.StartAsync(new Dictionary<string, string>
            {
                ["CfOrch__Profile"] = profile,
                ["CfOrch__Gpus__Mode"] = "simulated",
                ["CfOrch__Gpus__Simulated__0__Name"] = "NVIDIA GeForce RTX 3070",
                ["CfOrch__Gpus__Simulated__0__TotalMb"] = "8192",
                ["CfOrch__Gpus__PollIntervalSeconds"] = "0.5",
                ["CfOrch__Ollama__IdleModelSeconds"] = "1",
            }, ct);
            using var http = new HttpClient { BaseAddress = app.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            using var toOllama = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (var model in new[] { "qwen2.5:7b", "llama3.2:3b" })
            {
                using var loaded = await toOllama.PostAsJsonAsync(new Uri($"http://127.0.0.1:{ollama.Port}/api/generate"), new { model, prompt = "hi", keep_alive = "10m" }, ct);
                loaded.EnsureSuccessStatusCode();
            }

            await using var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 900 } });
            var page = await context.NewPageAsync();
            await page.GotoInteractiveAsync(app.BaseAddress);
            var card = page.GetByTestId("gpu-card").Filter(new() { HasText = "NVIDIA GeForce RTX 3070" });

            // Both models measured: 6,391 MB in use of 8,192 (qwen 4,466 MB, llama 1,925 MB).
            await Assertions.Expect(card.GetByTestId("vram-used")).ToContainTextAsync("6,391 MB of 8,192 MB used", new() { Timeout = 15_000 });
            await UntilIdleAsync(http, ct);

            // The Services page offers Start although the GPU's books are full: the idle models give way first, and
            // nothing would be evicted. Started there, in a second tab.
            var services = await context.NewPageAsync();
            await services.GotoInteractiveAsync(new Uri(app.BaseAddress, "services"));
            var row = services.GetByRole(AriaRole.Row).Filter(new() { Has = services.Locator("[data-service=vllm]") });
            await Assertions.Expect(row.GetByTestId("start")).ToBeEnabledAsync(new() { Timeout = 15_000 });
            await row.GetByTestId("start").ClickAsync();
            await services.GetByRole(AriaRole.Button, new() { Name = "Start", Exact = true }).Last.ClickAsync();

            // The open dashboard says which model went and why while the start goes on (the snackbar shows for 8 s), and
            // the card shows its memory back.
            await Assertions.Expect(page.Locator(".mud-snackbar")).ToContainTextAsync("Unloaded qwen2.5:7b (4.7 GB) from ollama for vllm, priority 1 over 2", new() { Timeout = 15_000 });
            await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running", new() { Timeout = 30_000 });

            await Assertions.Expect(card.GetByTestId("vram-used")).ToContainTextAsync("1,925 MB of 8,192 MB used", new() { Timeout = 15_000 });
            await Assertions.Expect(card.GetByTestId("lease-legend")).ToContainTextAsync("lent to vllm");
            await page.ScreenshotToAsync("ollama-pressure.png");
            Assert.DoesNotContain("STANDIN SIGNAL", ollama.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(profile);
        }
    }

    /// <summary>Waits until cf-orch last saw both models used more than a second ago (the idle time this app is given).</summary>
    private static async Task UntilIdleAsync(HttpClient http, CancellationToken ct)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var services = await http.GetFromJsonAsync<JsonElement>(new Uri("api/services", UriKind.Relative), ct);
            var models = services.GetProperty("services").EnumerateArray().Single(s => s.GetProperty("service").GetString() == "ollama").GetProperty("loaded_models").EnumerateArray().ToList();
            var idleSince = DateTimeOffset.UtcNow.AddSeconds(-1.2).ToUnixTimeMilliseconds() / 1000.0;
            if (models.Count == 2 && models.All(m => m.GetProperty("last_used_at") is { ValueKind: JsonValueKind.Number } at && at.GetDouble() <= idleSince))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < until, $"the models did not become idle: {services}");
            await Task.Delay(100, ct);
        }
    }
}
