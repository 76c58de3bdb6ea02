using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CfOrch.Tests.StandIns;

/// <summary>The stand-in itself, through real HTTP and real signals: what cf-orch's tests rely on it to do.</summary>
public sealed partial class StandInTests
{
    private const long MiB = 1024L * 1024L;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Ollama_api_tags_lists_every_model_with_ollamas_field_names()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 3000, ct, "--models", "llama3.2:3b,qwen2.5:7b");

        using var tags = await GetJsonAsync(ollama, "/api/tags", ct);

        var models = tags.RootElement.GetProperty("models");
        Assert.Equal(2, models.GetArrayLength());
        var llama = models[0];
        Assert.Equal<string>(["name", "model", "modified_at", "size", "digest", "details"], llama.EnumerateObject().Select(p => p.Name));
        Assert.Equal("llama3.2:3b", llama.GetProperty("name").GetString());
        Assert.Equal("llama3.2:3b", llama.GetProperty("model").GetString());
        Assert.Equal("2025-01-01T00:00:00Z", llama.GetProperty("modified_at").GetString());
        Assert.Equal(2_019_393_189, llama.GetProperty("size").GetInt64());
        Assert.Matches(HexDigest(), llama.GetProperty("digest").GetString()!);
        var details = llama.GetProperty("details");
        Assert.Equal("gguf", details.GetProperty("format").GetString());
        Assert.Equal("llama", details.GetProperty("family").GetString());
        Assert.Equal("3.2B", details.GetProperty("parameter_size").GetString());
        Assert.Equal("Q4_K_M", details.GetProperty("quantization_level").GetString());
        Assert.Equal("qwen2.5:7b", models[1].GetProperty("name").GetString());
        Assert.NotEqual(llama.GetProperty("digest").GetString(), models[1].GetProperty("digest").GetString());
    }

    [Fact]
    public async Task Ollama_api_version_answers_0_5_7()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(ct: ct);

        using var version = await GetJsonAsync(ollama, "/api/version", ct);

        Assert.Equal("""{"version":"0.5.7"}""", version.RootElement.GetRawText());
    }

    [Fact]
    public async Task Ollama_api_ps_reports_the_first_model_loaded_with_all_the_vram_by_default()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 3000, ct);

        using var ps = await GetJsonAsync(ollama, "/api/ps", ct);

        var running = Assert.Single(ps.RootElement.GetProperty("models").EnumerateArray());
        Assert.Equal<string>(["name", "model", "size", "digest", "details", "expires_at", "size_vram"], running.EnumerateObject().Select(p => p.Name));
        Assert.Equal("llama3.2:3b", running.GetProperty("name").GetString());
        Assert.Equal("llama3.2:3b", running.GetProperty("model").GetString());
        Assert.Equal("2030-01-01T00:00:00Z", running.GetProperty("expires_at").GetString());
        Assert.Equal(3000 * MiB, running.GetProperty("size_vram").GetInt64());
        Assert.Equal(3000 * MiB, running.GetProperty("size").GetInt64());
        Assert.Matches(HexDigest(), running.GetProperty("digest").GetString()!);
        Assert.Equal("llama", running.GetProperty("details").GetProperty("family").GetString());
    }

    [Fact]
    public async Task Ollama_api_ps_splits_the_vram_evenly_over_the_loaded_models()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 3000, ct, "--models", "llama3.2:3b,qwen2.5:7b", "--loaded", "llama3.2:3b,qwen2.5:7b");

        using var ps = await GetJsonAsync(ollama, "/api/ps", ct);

        var models = ps.RootElement.GetProperty("models").EnumerateArray().ToArray();
        Assert.Equal<string?>(["llama3.2:3b", "qwen2.5:7b"], models.Select(m => m.GetProperty("name").GetString()));
        Assert.All(models, m => Assert.Equal(1500 * MiB, m.GetProperty("size_vram").GetInt64()));
    }

    [Fact]
    public async Task Ollama_api_ps_is_empty_with_no_vram()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 0, ct);

        using var ps = await GetJsonAsync(ollama, "/api/ps", ct);

        Assert.Equal("""{"models":[]}""", ps.RootElement.GetRawText());
    }

    [Fact]
    public async Task Ollama_answers_its_root_like_ollama_and_404s_health_and_logs_each_request()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(ct: ct);

        using var root = await Http.GetAsync(new Uri(ollama.BaseAddress, "/"), ct).WaitAsync(Timeout, ct);
        using var health = await Http.GetAsync(new Uri(ollama.BaseAddress, "/health"), ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("text/plain", root.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Ollama is running", await root.Content.ReadAsStringAsync(ct).WaitAsync(Timeout, ct));
        Assert.Equal(HttpStatusCode.NotFound, health.StatusCode);
        Assert.Equal("404 page not found", await health.Content.ReadAsStringAsync(ct).WaitAsync(Timeout, ct));
        await WaitForOutputAsync(ollama, "STANDIN REQUEST GET /health", ct);
        Assert.Contains("STANDIN REQUEST GET /\n", ollama.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_and_chat_load_a_model_for_its_keep_alive_push_its_expiry_and_keep_alive_0_unloads_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 0, ct, "--models", "llama3.2:3b,qwen2.5:7b");

        async Task<HttpStatusCode> SendAsync(string path, object body)
        {
            using var answer = await Http.PostAsJsonAsync(new Uri(ollama.BaseAddress, path), body, ct).WaitAsync(Timeout, ct);
            return answer.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await SendAsync("/api/generate", new { model = "qwen2.5:7b", prompt = "hi", keep_alive = "10m" }));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("/api/chat", new { model = "llama3.2:3b", messages = Array.Empty<object>(), keep_alive = -1 }));
        DateTimeOffset firstExpiry;
        using (var ps = await GetJsonAsync(ollama, "/api/ps", ct))
        {
            var models = ps.RootElement.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m.Clone());
            Assert.Equal(4_683_087_332, models["qwen2.5:7b"].GetProperty("size_vram").GetInt64());
            firstExpiry = DateTimeOffset.Parse(models["qwen2.5:7b"].GetProperty("expires_at").GetString()!, CultureInfo.InvariantCulture);
            Assert.InRange(firstExpiry - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
            Assert.StartsWith("2318-", models["llama3.2:3b"].GetProperty("expires_at").GetString(), StringComparison.Ordinal);
        }

        // Used again (default keep_alive, 5 minutes): its expiry moves, as Ollama's does.
        Assert.Equal(HttpStatusCode.OK, await SendAsync("/api/generate", new { model = "qwen2.5:7b", prompt = "again" }));
        using (var ps = await GetJsonAsync(ollama, "/api/ps", ct))
        {
            var qwen = ps.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "qwen2.5:7b");
            Assert.NotEqual(firstExpiry, DateTimeOffset.Parse(qwen.GetProperty("expires_at").GetString()!, CultureInfo.InvariantCulture));
        }

        // Unknown model: 404; a keep_alive that is no duration: 400; keep_alive 0 unloads.
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync("/api/generate", new { model = "mistral:7b", prompt = "hi" }));
        Assert.Equal(HttpStatusCode.BadRequest, await SendAsync("/api/generate", new { model = "qwen2.5:7b", keep_alive = "soon" }));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("/api/generate", new { model = "qwen2.5:7b", keep_alive = 0 }));
        using var after = await GetJsonAsync(ollama, "/api/ps", ct);
        Assert.Equal(["llama3.2:3b"], after.RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Control_ps_changes_what_api_ps_reports()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 0, ct, "--models", "llama3.2:3b,qwen2.5:7b");

        await ollama.SetPsAsync(4096, ct, "qwen2.5:7b");
        using (var loaded = await GetJsonAsync(ollama, "/api/ps", ct))
        {
            var running = Assert.Single(loaded.RootElement.GetProperty("models").EnumerateArray());
            Assert.Equal("qwen2.5:7b", running.GetProperty("name").GetString());
            Assert.Equal(4096 * MiB, running.GetProperty("size_vram").GetInt64());
        }

        await ollama.SetPsAsync(0, ct);
        using var unloaded = await GetJsonAsync(ollama, "/api/ps", ct);
        Assert.Equal("""{"models":[]}""", unloaded.RootElement.GetRawText());
    }

    [Fact]
    public async Task Service_answers_its_health_path_with_the_given_status_and_404s_the_rest()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var service = await StandInProcess.StartServiceAsync(0, "/v1/ready", ct, "--status", "503");

        using var ready = await Http.GetAsync(new Uri(service.BaseAddress, "/v1/ready"), ct).WaitAsync(Timeout, ct);
        using var health = await Http.GetAsync(new Uri(service.BaseAddress, "/health"), ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("""{"status":"ok"}""", await ready.Content.ReadAsStringAsync(ct).WaitAsync(Timeout, ct));
        Assert.Equal(HttpStatusCode.NotFound, health.StatusCode);
    }

    [Fact]
    public async Task Service_answers_health_200_by_default()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var service = await StandInProcess.StartServiceAsync(ct: ct);

        using var health = await Http.GetAsync(new Uri(service.BaseAddress, "/health"), ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("application/json", health.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Hang_health_never_answers_so_the_clients_timeout_fires()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var service = await StandInProcess.StartServiceAsync(0, "/health", ct, "--hang-health");
        using var client = new HttpClient { Timeout = TimeSpan.FromMilliseconds(500) };
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAsync<TaskCanceledException>(() => client.GetAsync(new Uri(service.BaseAddress, "/health"), ct)).WaitAsync(Timeout, ct);

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(10));
        Assert.False(service.HasExited);
        using var other = await Http.GetAsync(new Uri(service.BaseAddress, "/other"), ct).WaitAsync(Timeout, ct);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task Exit_after_ms_exits_with_the_exit_code()
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = Stopwatch.StartNew();

        var (exitCode, _, stderr) = await RunToExitAsync(ct, "service", "--port", "0", "--exit-after-ms", "300", "--exit-code", "3");

        Assert.Equal(3, exitCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(300), $"exited after {clock.Elapsed}");
        Assert.Equal("", stderr);
    }

    [Theory]
    [InlineData("service")]
    [InlineData("ollama")]
    public async Task Control_exit_answers_then_exits_with_the_code_asked_for(string mode)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var standIn = await StandInProcess.StartAsync([mode, "--port", "0"], ct);

        using var bad = await Http.PostAsync(new Uri(standIn.BaseAddress, "/control/exit?code=256"), null, ct).WaitAsync(Timeout, ct);
        Assert.Equal((HttpStatusCode.BadRequest, "code '256' is not a whole number from 0 to 255"), (bad.StatusCode, await bad.Content.ReadAsStringAsync(ct)));
        Assert.False(standIn.HasExited);

        using var exit = await Http.PostAsync(new Uri(standIn.BaseAddress, "/control/exit?code=7"), null, ct).WaitAsync(Timeout, ct);
        Assert.Equal((HttpStatusCode.Accepted, "exiting with code 7"), (exit.StatusCode, await exit.Content.ReadAsStringAsync(ct)));
        Assert.Equal(7, await standIn.WaitForExitAsync(Timeout, ct));
    }

    [Fact]
    public async Task A_stand_in_that_dies_before_listening_fails_the_start_with_its_exit_code()
    {
        var ct = TestContext.Current.CancellationToken;

        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => StandInProcess.StartServiceAsync(0, "/health", ct, "--startup-delay-ms", "10000", "--exit-after-ms", "100", "--exit-code", "4")).WaitAsync(Timeout, ct);

        Assert.Contains("exited with code 4 before it listened", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Startup_delay_holds_back_the_listening_line()
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = Stopwatch.StartNew();

        await using var service = await StandInProcess.StartServiceAsync(0, "/health", ct, "--startup-delay-ms", "700");

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(700), $"listened after {clock.Elapsed}");
    }

    [Fact]
    public async Task Answer_delay_holds_back_every_answer()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 0, ct, "--answer-delay-ms", "600");
        var clock = Stopwatch.StartNew();

        using var response = await Http.GetAsync(new Uri(ollama.BaseAddress, "/api/tags"), ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(600), $"answered after {clock.Elapsed}");
    }

    [Fact]
    public async Task Sigterm_stops_it_gracefully_with_exit_code_0()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var service = await StandInProcess.StartServiceAsync(ct: ct);

        await service.SendSigtermAsync(ct);

        Assert.Equal(0, await service.WaitForExitAsync(Timeout, ct));
    }

    [Fact]
    public async Task Ignore_sigterm_survives_sigterm_until_killed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var service = await StandInProcess.StartServiceAsync(0, "/health", ct, "--ignore-sigterm");

        await service.SendSigtermAsync(ct);
        // Proving that nothing happens takes a while: half a second is many times what a graceful stop needs here.
        await Task.Delay(TimeSpan.FromMilliseconds(500), ct);

        Assert.False(service.HasExited);
        using var health = await Http.GetAsync(new Uri(service.BaseAddress, "/health"), ct).WaitAsync(Timeout, ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await service.KillAsync().WaitAsync(Timeout, ct);
        Assert.True(service.HasExited);
        Assert.Equal(128 + 9, await service.WaitForExitAsync(Timeout, ct));
    }

    [Fact]
    public async Task Child_prints_the_pid_of_a_live_child_that_kill_ends_too()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ollama = await StandInProcess.StartOllamaAsync(0, 3000, ct, "--child");
        var childPid = int.Parse(ChildLine().Match(ollama.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            Assert.True(IsAlive(childPid), $"child {childPid} is not alive");
            Assert.Contains("sleep", await File.ReadAllTextAsync($"/proc/{childPid}/cmdline", ct).WaitAsync(Timeout, ct), StringComparison.Ordinal);
            Assert.Equal(ollama.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ParentPid(childPid));

            await ollama.KillAsync().WaitAsync(Timeout, ct);

            var deadline = DateTime.UtcNow + Timeout;
            while (IsAlive(childPid) && DateTime.UtcNow < deadline)
                await Task.Delay(50, ct);
            Assert.False(IsAlive(childPid), $"child {childPid} outlived the kill");
        }
        finally
        {
            if (IsAlive(childPid))
            {
                using var child = Process.GetProcessById(childPid);
                child.Kill();
            }
        }
    }

    [Fact]
    public async Task An_explicit_port_is_used()
    {
        var ct = TestContext.Current.CancellationToken;
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        await using var ollama = await StandInProcess.StartOllamaAsync(port, 3000, ct);

        Assert.Equal(port, ollama.Port);
        Assert.Equal(new Uri($"http://127.0.0.1:{port}"), ollama.BaseAddress);
    }

    [Fact]
    public async Task A_port_in_use_exits_1_with_the_reason()
    {
        var ct = TestContext.Current.CancellationToken;
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;

            var (exitCode, stdout, stderr) = await RunToExitAsync(ct, "ollama", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(1, exitCode);
            Assert.DoesNotContain("LISTENING", stdout, StringComparison.Ordinal);
            Assert.Contains("STANDIN ERROR", stderr, StringComparison.Ordinal);
            Assert.Contains("address already in use", stderr, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Theory]
    [InlineData("unknown option '--bogus'", "ollama", "--port", "0", "--bogus")]
    [InlineData("'--port' is required", "service")]
    [InlineData("unknown option '--vram-mb' for mode 'service'", "service", "--port", "0", "--vram-mb", "10")]
    [InlineData("'--status': 'ok' is not a whole number", "service", "--port", "0", "--status", "ok")]
    [InlineData("unknown mode 'vllm'", "vllm", "--port", "0")]
    public async Task Bad_arguments_exit_2_with_one_line_on_stderr(string expected, params string[] args)
    {
        var ct = TestContext.Current.CancellationToken;

        var (exitCode, stdout, stderr) = await RunToExitAsync(ct, args);

        Assert.Equal(2, exitCode);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    private static async Task<JsonDocument> GetJsonAsync(StandInProcess standIn, string path, CancellationToken ct)
    {
        using var response = await Http.GetAsync(new Uri(standIn.BaseAddress, path), ct).WaitAsync(Timeout, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync(ct).WaitAsync(Timeout, ct);
        return await JsonDocument.ParseAsync(body, cancellationToken: ct).WaitAsync(Timeout, ct);
    }

    private static async Task WaitForOutputAsync(StandInProcess standIn, string text, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!standIn.Output.Contains(text, StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"'{text}' was not printed within {Timeout}. Output:\n{standIn.Output}");
            await Task.Delay(20, ct);
        }
    }

    /// <summary>Runs the stand-in to its end (30 s at most): exit code, stdout, stderr.</summary>
    private static Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(CancellationToken ct, params string[] args) =>
        ChildRun.ToExitAsync(new ProcessStartInfo(StandInProcess.ExecutablePath, args), Timeout, ct);

    // Alive and not a zombie waiting for a parent (in a container nobody may reap it).
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string ParentPid(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1];
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex HexDigest();

    [GeneratedRegex(@"^STANDIN CHILD (\d+)$", RegexOptions.Multiline)]
    private static partial Regex ChildLine();
}
