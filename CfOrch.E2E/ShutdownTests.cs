using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace CfOrch.E2E;

/// <summary>
/// cf-orch stopped the two ways a machine stops it — SIGTERM, and kill -9 under load — and started again on the same
/// data: its services keep running and are re-attached, clients' leases are held again, and the history replays to
/// what was live (no lease left open that was not).
/// </summary>
public sealed class ShutdownTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cf-orch-e2e-shutdown-" + Guid.NewGuid().ToString("N"));
    private readonly string _profile = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-shutdown-{Guid.NewGuid():N}.yaml");
    private readonly int _port = StandIn.FreePort();
    private int _workerPid;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (_workerPid > 0)
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(_workerPid).Kill(entireProcessTree: true);
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }

        File.Delete(_profile);
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task After_sigterm_and_after_kill_9_services_are_re_attached_leases_held_again_and_history_replays_to_what_was_live()
    {
        var environment = await EnvironmentAsync("");

        // Run 1: a service and a client's lease; then SIGTERM.
        string clientLease;
        await using (var first = await AppProcess.StartAsync(environment, Ct))
        {
            using var http = new HttpClient { BaseAddress = first.BaseAddress };
            var started = await PostAsync(http, "api/services/worker/start", new { });
            _workerPid = started.GetProperty("instance").GetProperty("pid").GetInt32();
            clientLease = (await PostAsync(http, "api/leases", new { node_id = "local", gpu_id = 0, mb = 1000, service = "notebook", ttl_s = 3600 })).GetProperty("lease").GetProperty("lease_id").GetString()!;

            Assert.Equal(0, await first.SignalAndWaitAsync(kill: false, Ct));
        }

        Assert.True(IsRunning(_workerPid), "the service must keep running when cf-orch stops");

        // Run 2: everything is back; then leases come and go under load, and cf-orch is killed mid-stream.
        await using (var second = await AppProcess.StartAsync(environment, Ct))
        {
            using var http = new HttpClient { BaseAddress = second.BaseAddress };
            var worker = await WaitForAsync(http, s => s.GetProperty("service").GetString() == "worker" && s.GetProperty("state").GetString() == "running");
            Assert.Equal(_workerPid, worker.GetProperty("pid").GetInt32());
            Assert.Contains(clientLease, await http.GetStringAsync(new Uri("api/leases", UriKind.Relative), Ct), StringComparison.Ordinal);
            Assert.Equal("granted", (await HistoryAsync(http)).Single(e => e.GetProperty("lease_id").GetString() == clientLease).GetProperty("kind").GetString());

            var load = Task.WhenAll(Enumerable.Range(0, 4).Select(async w =>
            {
                for (var i = 0; i < 40; i++)
                {
                    using var granted = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 0, mb = 10, service = $"load-{w}" }, Ct);
                    if (!granted.IsSuccessStatusCode)
                    {
                        return;
                    }

                    var id = JsonDocument.Parse(await granted.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("lease").GetProperty("lease_id").GetString();
                    using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative), Ct);
                }
            }));
            await Task.Delay(150, Ct);
            Assert.Equal(137, await second.SignalAndWaitAsync(kill: true, Ct));
            await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(5), Ct));
        }

        Assert.True(IsRunning(_workerPid), "the service must keep running when cf-orch is killed");

        // Run 3: the same again, and the history shows no lease open that is not held now.
        await using var third = await AppProcess.StartAsync(environment, Ct);
        using var client = new HttpClient { BaseAddress = third.BaseAddress };
        var again = await WaitForAsync(client, s => s.GetProperty("service").GetString() == "worker" && s.GetProperty("state").GetString() == "running");
        Assert.Equal(_workerPid, again.GetProperty("pid").GetInt32());
        var live = JsonDocument.Parse(await client.GetStringAsync(new Uri("api/leases", UriKind.Relative), Ct)).RootElement.GetProperty("leases").EnumerateArray()
            .Select(l => l.GetProperty("lease_id").GetString()!).ToHashSet(StringComparer.Ordinal);
        Assert.Contains(clientLease, live);

        var history = await WaitForHistoryToSettleAsync(client);
        var open = history.GroupBy(e => e.GetProperty("lease_id").GetString()!)
            .Where(g => g.All(e => e.GetProperty("kind").GetString() == "granted"))
            .Select(g => g.Key)
            .ToList();
        Assert.All(open, id => Assert.Contains(id, live));

        using var stopped = await client.PostAsJsonAsync(new Uri("api/services/worker/stop", UriKind.Relative), new { }, Ct);
        Assert.True(stopped.IsSuccessStatusCode);
        await WaitUntilAsync(() => !IsRunning(_workerPid), "the service to stop");
    }

    [Fact]
    public async Task Killed_with_9_while_a_service_is_starting_cf_orch_re_attaches_that_process_at_the_next_start_instead_of_orphaning_it()
    {
        // A service that takes 3 s to listen: cf-orch is killed after spawning it and before reporting the start.
        var environment = await EnvironmentAsync(" --startup-delay-ms 3000");

        await using (var first = await AppProcess.StartAsync(environment, Ct))
        {
            using var http = new HttpClient { BaseAddress = first.BaseAddress };
            var start = http.PostAsJsonAsync(new Uri("api/services/worker/start", UriKind.Relative), new { }, Ct);
            var starting = await WaitForAsync(http, s => s.GetProperty("service").GetString() == "worker" && s.GetProperty("state").GetString() == "starting" && s.GetProperty("pid").ValueKind == JsonValueKind.Number);
            _workerPid = starting.GetProperty("pid").GetInt32();

            Assert.Equal(137, await first.SignalAndWaitAsync(kill: true, Ct));
            HttpResponseMessage? reported = null;
            try
            {
                reported = await start;
            }
            catch (HttpRequestException)
            {
                // The connection died with cf-orch: the start was never reported.
            }

            Assert.True(reported is null || !reported.IsSuccessStatusCode, "the start must not have been reported before the kill");
            reported?.Dispose();
        }

        Assert.True(IsRunning(_workerPid), "the service must keep running when cf-orch is killed");

        await using var second = await AppProcess.StartAsync(environment, Ct);
        using var client = new HttpClient { BaseAddress = second.BaseAddress };
        // Found by its marker, though it may not even listen yet when cf-orch comes back.
        var worker = await WaitForAsync(client, s => s.GetProperty("service").GetString() == "worker" && s.GetProperty("state").GetString() == "running");

        Assert.Equal(_workerPid, worker.GetProperty("pid").GetInt32());

        // It is cf-orch's again: a second start is not refused as "port in use", and stop ends that very process.
        using (var again = await client.PostAsJsonAsync(new Uri("api/services/worker/start", UriKind.Relative), new { }, Ct))
        {
            Assert.True(again.IsSuccessStatusCode, await again.Content.ReadAsStringAsync(Ct));
        }

        using var stopped = await client.PostAsJsonAsync(new Uri("api/services/worker/stop", UriKind.Relative), new { }, Ct);
        Assert.True(stopped.IsSuccessStatusCode);
        await WaitUntilAsync(() => !IsRunning(_workerPid), "the service to stop");
    }

    /// <summary>A profile with one stand-in service, <c>worker</c>, given <paramref name="moreArgs"/>; the app's environment to use it.</summary>
    private async Task<Dictionary<string, string>> EnvironmentAsync(string moreArgs)
    {
        await File.WriteAllTextAsync(_profile, string.Create(CultureInfo.InvariantCulture, $"""
            schema_version: 1
            name: shutdown-rig
            vram_total_mb: 24576
            services:
              worker:
                max_mb: 2048
                priority: 2
                managed:
                  type: process
                  exec_path: {StandIn.ExecutablePath}
                  args_template: service --port {'{'}port{'}'}{moreArgs}
                  port: {_port}
                  host_port: {_port}
                  health_path: /health
            """), Ct);
        var environment = AppProcess.SimulatedGpus();
        environment["CfOrch__Profile"] = _profile;
        environment["CfOrch__DataDir"] = _data;
        return environment;
    }

    private static bool IsRunning(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(')')[^1].TrimStart().StartsWith('Z');

    private static async Task<JsonElement> PostAsync(HttpClient http, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<JsonElement> WaitForAsync(HttpClient http, Func<JsonElement, bool> condition)
    {
        JsonElement? found = null;
        await WaitUntilAsync(
            async () =>
            {
                var services = JsonDocument.Parse(await http.GetStringAsync(new Uri("api/services", UriKind.Relative), Ct)).RootElement.GetProperty("services");
                found = services.EnumerateArray().Select(s => (JsonElement?)s.Clone()).FirstOrDefault(s => condition(s!.Value));
                return found is not null;
            },
            "the service to be running");
        return found!.Value;
    }

    /// <summary>All lease events with a lease id, once two reads a moment apart agree (the writer has caught up).</summary>
    private static async Task<List<JsonElement>> WaitForHistoryToSettleAsync(HttpClient http)
    {
        List<JsonElement> last = [];
        await WaitUntilAsync(
            async () =>
            {
                var now = await HistoryAsync(http);
                var settled = now.Count == last.Count;
                last = now;
                return settled && now.Count > 0;
            },
            "the history to settle");
        return last;
    }

    private static async Task<List<JsonElement>> HistoryAsync(HttpClient http)
    {
        var events = new List<JsonElement>();
        for (var page = 1; ; page++)
        {
            var answer = JsonDocument.Parse(await http.GetStringAsync(new Uri($"api/leases/history?page_size=500&page={page}", UriKind.Relative), Ct)).RootElement;
            var rows = answer.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("lease_id").ValueKind == JsonValueKind.String).Select(e => e.Clone()).ToList();
            events.AddRange(rows);
            if (page * 500 >= answer.GetProperty("total").GetInt32())
            {
                return events;
            }
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, $"waited 30 s for {what}");
            await Task.Delay(100, Ct);
        }
    }
}
