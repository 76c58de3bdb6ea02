using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;

namespace CfOrch.Bench;

/// <summary>
/// The log under a storm of refusals: the real app with its default logging (refusals are logged at Information),
/// 40,000 requests that are all refused, paced over 40 s — leases bigger than the GPU (503), starts of a service that
/// does not exist and bodies that are not JSON (both 422) — while every byte the app writes to stdout and stderr
/// is counted. The target is under 1 MB for the storm.
/// </summary>
internal static class RefusalStorm
{
    public const long TargetBytes = 1024 * 1024;

    public static async Task<int> RunAsync(string root, int requests, TimeSpan over, int concurrency)
    {
        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-storm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            await using var app = await ChildProcess.StartAppAsync(
                root,
                new Dictionary<string, string>
                {
                    ["CfOrch__DataDir"] = data,
                    ["CfOrch__Profile"] = "single-gpu-8gb",
                    ["CfOrch__Gpus__Mode"] = "simulated",
                    ["CfOrch__Gpus__Simulated__0__Name"] = "Bench GPU",
                    ["CfOrch__Gpus__Simulated__0__TotalMb"] = "8192",
                });
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = app.Url };

            // Let start-up finish its own lines (adoption, jobs) before counting.
            await Task.Delay(TimeSpan.FromSeconds(3));
            var before = app.OutputBytes;
            var linesBefore = app.OutputLines;
            var statuses = new System.Collections.Concurrent.ConcurrentDictionary<HttpStatusCode, int>();
            var next = -1;
            var clock = Stopwatch.StartNew();
            var interval = over / requests;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests)
                {
                    var due = interval * i - clock.Elapsed;
                    if (due > TimeSpan.Zero)
                    {
                        await Task.Delay(due);
                    }

                    using var answer = (i % 3) switch
                    {
                        0 => await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 0, mb = 100_000, service = $"storm-{i % 7}" }),
                        1 => await http.PostAsJsonAsync(new Uri($"api/services/nope-{i % 5}/start", UriKind.Relative), new { }),
                        _ => await http.PostAsync(new Uri("api/leases", UriKind.Relative), new StringContent("{\"mb\": ", Encoding.UTF8, "application/json")),
                    };
                    statuses.AddOrUpdate(answer.StatusCode, 1, (_, n) => n + 1);
                }
            }));
            var elapsed = clock.Elapsed;

            // Whatever the app still had to write about the storm.
            await Task.Delay(TimeSpan.FromSeconds(2));
            var written = app.OutputBytes - before;
            var lines = app.OutputLines - linesBefore;
            var refused = statuses.Where(s => (int)s.Key >= 400).Sum(s => s.Value);
            Console.WriteLine($"Refusal storm — {Environment.ProcessorCount} cores, default logging, {DateTime.UtcNow:yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine("| requests | over | answers | log written | target |");
            Console.WriteLine("| ---: | ---: | --- | ---: | --- |");
            var answers = string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => string.Create(CultureInfo.InvariantCulture, $"{(int)s.Key}: {s.Value:N0}")));
            var met = written < TargetBytes && refused == requests;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {requests:N0} | {elapsed.TotalSeconds:0.0} s | {answers} | {written:N0} bytes in {lines:N0} lines | < 1 MB: {(met ? "met" : "NOT met")} |"));
            return met ? 0 : 1;
        }
        finally
        {
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
