using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using System.Text.Json;
using CfOrch.Bench;

// Usage: dotnet run --project bench/CfOrch.Bench -c Release [-- --seconds 10 --concurrency 16]
//        (--load TEXT runs only the loads whose name contains TEXT, without the event-delay and in-process figures)
//        dotnet run --project bench/CfOrch.Bench -c Release -- --yaml-bombs [--iterations 20]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --editor [--iterations 20]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --history [--pairs 200000 --rounds 5]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --refusal-storm [--requests 40000 --seconds 40]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --container-start [--runs 10]   (needs a Docker engine)
//        dotnet run --project bench/CfOrch.Bench -c Release -- --agent-poll [--agents 100 --seconds 60]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --footprint [--runs 10 --idle-seconds 30 --only workstation --dashboard]
//        dotnet run --project bench/CfOrch.Bench -c Release -- --soak [--minutes 60 --every 60]
if (args.Contains("--yaml-bombs"))
{
    return YamlBombRun.Run(ArgValue("--iterations", 20));
}

if (args.Contains("--editor"))
{
    return await EditorRun.RunAsync(ArgValue("--iterations", 20));
}

if (args.Contains("--history"))
{
    return await HistoryWrite.RunAsync(ArgValue("--pairs", 200_000), ArgValue("--rounds", 5));
}

if (args.Contains("--refusal-storm"))
{
    return await RefusalStorm.RunAsync(FindRoot(), ArgValue("--requests", 40_000), TimeSpan.FromSeconds(ArgValue("--seconds", 40)), ArgValue("--concurrency", 16));
}

if (args.Contains("--footprint"))
{
    var onlyAt = Array.IndexOf(args, "--only");
    return await Footprint.RunAsync(FindRoot(), ArgValue("--runs", 10), ArgValue("--idle-seconds", 30), onlyAt >= 0 && onlyAt + 1 < args.Length ? args[onlyAt + 1] : null, args.Contains("--dashboard"));
}

if (args.Contains("--soak"))
{
    return await Soak.RunAsync(FindRoot(), ArgValue("--minutes", 60), ArgValue("--every", 60));
}

if (args.Contains("--agent-poll"))
{
    return await AgentPoll.RunAsync(FindRoot(), ArgValue("--agents", 100), ArgValue("--seconds", 60));
}

if (args.Contains("--container-start"))
{
    return await ContainerStart.RunAsync(FindRoot(), ArgValue("--runs", 10));
}

var seconds = ArgValue("--seconds", 10);
var concurrency = ArgValue("--concurrency", 16);
var duration = TimeSpan.FromSeconds(seconds);
var root = FindRoot();
var configuration = ChildProcess.Configuration;
var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-" + Guid.NewGuid().ToString("N"));
var ollamaPort = ChildProcess.FreePort();
// The profile sits in a folder of its own, as a user's profiles do ({DataDir}/profiles): cf-orch watches the folder of
// a profile named by its path, and SQLite's writes in the data folder would otherwise wake that watcher for every
// history batch.
var profile = Path.Combine(data, "profiles", "bench.yaml");
Directory.CreateDirectory(Path.GetDirectoryName(profile)!);
await File.WriteAllTextAsync(profile, $"""
    schema_version: 1
    name: bench
    services:
      ollama:
        max_mb: 4096
        priority: 1
        managed:
          type: process
          adopt: true
          exec_path: /usr/local/bin/ollama
          port: {ollamaPort}
          host_port: {ollamaPort}
          health_path: /api/tags
    """);

await using var ollama = await ChildProcess.StartAsync(
    Path.Combine(root, "CfOrch.StandIns", "bin", configuration, "net10.0", "CfOrch.StandIns"),
    ["ollama", "--port", ollamaPort.ToString(CultureInfo.InvariantCulture), "--vram-mb", "3000"],
    new Dictionary<string, string>(),
    ChildProcess.StandInListening());
await using var app = await ChildProcess.StartAppAsync(
    root,
    new Dictionary<string, string>
    {
        ["CfOrch__DataDir"] = data,
        ["CfOrch__Profile"] = profile,
        ["CfOrch__Gpus__Mode"] = "simulated",
        ["CfOrch__Gpus__Simulated__0__Name"] = "Bench GPU",
        ["CfOrch__Gpus__Simulated__0__TotalMb"] = "1048576",
        ["Logging__LogLevel__Default"] = "Warning",
        ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
    }.Concat(AppEnvironment()).ToDictionary());

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(10) }) { BaseAddress = app.Url };
// A lease request is sent the way the original's Python client (httpx, json=) sends it: a JSON body with its length
// declared, not chunked. The body bytes and the parse of the answer cost the client (which shares the server's cores)
// as little as a lean load generator would, so the figure is the server's.
var leaseBodies = Enumerable.Range(0, concurrency).Select(w => JsonSerializer.SerializeToUtf8Bytes(new { node_id = "local", gpu_id = 0, mb = 64, service = $"bench-{w}" })).ToArray();
var allocateBody = JsonSerializer.SerializeToUtf8Bytes(new { @params = new { model = "llama3.2:3b" }, ttl_s = 60, caller = "bench" });
var loads = new (string Name, int Clients, Func<int, Task> Operation)[]
{
    ("GET /api/health (baseline)", concurrency, async _ =>
    {
        using var response = await http.GetAsync(new Uri("api/health", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
    }),
    ("GET /api/services", concurrency, async _ =>
    {
        using var response = await http.GetAsync(new Uri("api/services", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
    }),
    ("GET /api/services (1 client)", 1, async _ =>
    {
        using var response = await http.GetAsync(new Uri("api/services", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
    }),
    ("lease grant + release (history on)", concurrency, async w =>
    {
        using var granted = await http.PostAsync(new Uri("api/leases", UriKind.Relative), JsonBody(leaseBodies[w]));
        granted.EnsureSuccessStatusCode();
        var id = StringProperty(await granted.Content.ReadAsByteArrayAsync(), "lease_id");
        using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative));
        released.EnsureSuccessStatusCode();
    }),
    ("warm allocate + release", concurrency, async _ =>
    {
        using var allocated = await http.PostAsync(new Uri("api/services/ollama/allocate", UriKind.Relative), JsonBody(allocateBody));
        allocated.EnsureSuccessStatusCode();
        var id = StringProperty(await allocated.Content.ReadAsByteArrayAsync(), "allocation_id");
        using var released = await http.DeleteAsync(new Uri($"api/services/ollama/allocations/{id}", UriKind.Relative));
        released.EnsureSuccessStatusCode();
    }),
};
var onlyLoad = Array.IndexOf(args, "--load") is var loadAt and >= 0 && loadAt + 1 < args.Length ? args[loadAt + 1] : null;
var results = new List<LoadResult>();
foreach (var (name, clients, operation) in loads.Where(l => onlyLoad is null || l.Name.Contains(onlyLoad, StringComparison.OrdinalIgnoreCase)))
{
    results.Add(await Load.RunAsync(name, clients, duration, operation, app.Pid));
}

var eventDelays = onlyLoad is null ? await EventDelay.MeasureAsync(http, samples: 300) : [];
var (engine, drain, written, dropped) = onlyLoad is null ? await EngineLoad.RunAsync(Environment.ProcessorCount, duration) : default;
if (onlyLoad is null)
{
    results.Add(engine);
}

Console.WriteLine();
Console.WriteLine($"cf-orch benchmark — {Environment.ProcessorCount} cores, {seconds} s per load, {DateTime.UtcNow:yyyy-MM-dd}");
Console.WriteLine();
Console.WriteLine("| load | clients | ops/s | p50 ms | p99 ms | errors | app CPU µs/op | client CPU µs/op |");
Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var r in results)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Name} | {r.Concurrency} | {r.PerSecond:N0} | {r.P50Ms:0.00} | {r.P99Ms:0.00} | {r.Errors} | {Us(r.AppCpuUs)} | {Us(r.ClientCpuUs)} |"));
}

if (onlyLoad is null)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| /api/events delay, change → event ({eventDelays.Length} changes) | 1 | — | {Load.Percentile(eventDelays, 0.5):0.00} | {Load.Percentile(eventDelays, 0.99):0.00} | 0 | — | — |"));
    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"In process: {written:N0} history rows written to SQLite, {dropped:N0} dropped (the queue holds {CfOrch.Web.Data.HistoryWriter.MaxPendingEvents:N0}); the writer caught up {drain.TotalMilliseconds:N0} ms after the load ended."));
}

try
{
    Directory.Delete(data, recursive: true);
}
catch (IOException)
{
}

return 0;

int ArgValue(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
}

// CFORCH_BENCH_ENV_X=V in the benchmark's environment sets X=V for the app alone (a runtime setting to compare).
static IEnumerable<KeyValuePair<string, string>> AppEnvironment() =>
    Environment.GetEnvironmentVariables().Keys.Cast<string>()
        .Where(k => k.StartsWith("CFORCH_BENCH_ENV_", StringComparison.Ordinal))
        .Select(k => KeyValuePair.Create(k["CFORCH_BENCH_ENV_".Length..], Environment.GetEnvironmentVariable(k) ?? ""));

static string Us(double us) => double.IsNaN(us) ? "—" : us.ToString("N0", CultureInfo.InvariantCulture);

static ByteArrayContent JsonBody(byte[] body)
{
    var content = new ByteArrayContent(body);
    content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
    return content;
}

// The first string property of that name anywhere in a JSON answer.
static string? StringProperty(byte[] json, string name)
{
    var reader = new Utf8JsonReader(json);
    while (reader.Read())
    {
        if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(name) && reader.Read() && reader.TokenType == JsonTokenType.String)
        {
            return reader.GetString();
        }
    }

    return null;
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CfOrch.Web.sln")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("run from the repository");
}

