using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CfOrch.Bench;

/// <summary>
/// One coordinator polling many agents: the real app, and cheap stand-in agents (one HTTP server in this process, an
/// agent per path prefix, answering <c>/gpu-info</c> and <c>/resident-info</c> as the original agent). It measures how
/// long one poll round over every agent takes (from the agents' side: first to last <c>/gpu-info</c> of the round) and
/// the coordinator's CPU time while it polls.
/// </summary>
internal static class AgentPoll
{
    public static async Task<int> RunAsync(string root, int agents, int seconds)
    {
        var polls = new ConcurrentDictionary<int, ConcurrentQueue<long>>();
        var clock = Stopwatch.StartNew();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var fake = builder.Build();
        fake.MapGet("/a{id:int}/gpu-info", (int id) =>
        {
            polls.GetOrAdd(id, _ => new ConcurrentQueue<long>()).Enqueue(clock.ElapsedTicks);
            return Results.Json(new { node_id = $"a{id}", gpus = new[] { new { gpu_id = 0, name = "RTX 4090", vram_total_mb = 24576, vram_used_mb = 1024, vram_free_mb = 23552 } } });
        });
        fake.MapGet("/a{id:int}/resident-info", () => Results.Json(new { residents = Array.Empty<object>() }));
        await fake.StartAsync();
        var fakeUrl = fake.Urls.First();

        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-agents-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            await using var app = await ChildProcess.StartAppAsync(root, new Dictionary<string, string>
            {
                ["CfOrch__DataDir"] = data,
                ["CfOrch__Profile"] = "single-gpu-8gb",
                ["CfOrch__Gpus__Mode"] = "simulated",
                ["CfOrch__Gpus__Simulated__0__Name"] = "Bench GPU",
                ["CfOrch__Gpus__Simulated__0__TotalMb"] = "8192",
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            });
            using var http = new HttpClient { BaseAddress = app.Url };
            for (var i = 0; i < agents; i++)
            {
                using var registered = await http.PostAsJsonAsync(new Uri("api/nodes", UriKind.Relative), new { node_id = $"agent-{i:D3}", agent_url = $"{fakeUrl}/a{i}" });
                registered.EnsureSuccessStatusCode();
            }

            // Let the registration polls pass, then measure whole rounds.
            await Task.Delay(TimeSpan.FromSeconds(12));
            polls.Clear();
            var cpuBefore = ProcStats.CpuSeconds(app.Pid);
            var wall = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            var cpu = ProcStats.CpuSeconds(app.Pid) - cpuBefore;
            var elapsed = wall.Elapsed.TotalSeconds;

            var rounds = Enumerable.Range(0, polls.IsEmpty ? 0 : polls.Values.Min(q => q.Count))
                .Select(r => polls.Values.Select(q => q.ElementAt(r)).ToList())
                .Select(times => (times.Max() - times.Min()) * 1000.0 / Stopwatch.Frequency)
                .Order()
                .ToList();
            Console.WriteLine($"Agent polling — {Environment.ProcessorCount} cores, {agents} stand-in agents, poll every 10 s, {seconds} s measured, {DateTime.UtcNow:yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine("| agents | rounds | round time (median) | round time (max) | coordinator CPU |");
            Console.WriteLine("| ---: | ---: | ---: | ---: | ---: |");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {agents} | {rounds.Count} | {(rounds.Count == 0 ? "—" : $"{rounds[rounds.Count / 2]:0} ms")} | {(rounds.Count == 0 ? "—" : $"{rounds[^1]:0} ms")} | {cpu:0.00} s in {elapsed:0} s ({100 * cpu / elapsed:0.0} % of one core) |"));
            return 0;
        }
        finally
        {
            await fake.DisposeAsync();
            Directory.Delete(data, recursive: true);
        }
    }
}
