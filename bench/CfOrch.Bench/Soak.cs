using System.Globalization;

namespace CfOrch.Bench;

/// <summary>
/// The long idle run of issue 15: the app as a self-hoster leaves it — an adopted (stand-in) Ollama with a model
/// loaded, one managed service stopped, the profile's own services, no GPU reading to speak of (one simulated GPU) — for
/// <c>minutes</c>, its RSS and CPU sampled every <c>every</c> seconds. Prints the samples and whether RSS stayed flat
/// within 5 % of its first sample after settling (a quarter of the run, at least 5 minutes).
/// </summary>
internal static class Soak
{
    public static async Task<int> RunAsync(string root, int minutes, int everySeconds)
    {
        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-soak-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            var ollamaPort = ChildProcess.FreePort();
            var standIn = Path.Combine(root, "CfOrch.StandIns", "bin", ChildProcess.Configuration, "net10.0", "CfOrch.StandIns");
            var profile = Path.Combine(data, "soak.yaml");
            await File.WriteAllTextAsync(profile, string.Create(CultureInfo.InvariantCulture, $"""
                schema_version: 1
                name: soak
                vram_total_mb: 24576
                services:
                  ollama:
                    max_mb: 8192
                    priority: 2
                    managed:
                      type: process
                      adopt: true
                      exec_path: {standIn}
                      args_template: ollama --port {'{'}port{'}'}
                      port: {ollamaPort}
                      host_port: {ollamaPort}
                      health_path: /api/tags
                  whisper:
                    max_mb: 2000
                    priority: 2
                    managed:
                      type: process
                      exec_path: {standIn}
                      args_template: service --port {'{'}port{'}'}
                      port: {ChildProcess.FreePort()}
                      health_path: /health
                """));
            await using var ollama = await ChildProcess.StartAsync(standIn, ["ollama", "--port", ollamaPort.ToString(CultureInfo.InvariantCulture), "--vram-mb", "3000"],
                new Dictionary<string, string>(), ChildProcess.StandInListening());
            await using var app = await ChildProcess.StartAppAsync(root, new Dictionary<string, string>
            {
                ["CfOrch__DataDir"] = data,
                ["CfOrch__Profile"] = profile,
                ["CfOrch__Gpus__Mode"] = "simulated",
                ["CfOrch__Gpus__Simulated__0__Name"] = "Soak GPU",
                ["CfOrch__Gpus__Simulated__0__TotalMb"] = "24576",
                ["CfOrch__Docker__Endpoint"] = "unix:///nonexistent/docker.sock",
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            });

            Console.WriteLine($"Idle soak — {Environment.ProcessorCount} cores, {minutes} min, a sample every {everySeconds} s, {DateTime.UtcNow:yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine("| minute | RSS | CPU since the last sample, % of one core |");
            Console.WriteLine("| ---: | ---: | ---: |");
            var samples = new List<double>();
            var cpu = ProcStats.CpuSeconds(app.Pid);
            var end = DateTime.UtcNow + TimeSpan.FromMinutes(minutes);
            var started = DateTime.UtcNow;
            while (DateTime.UtcNow < end)
            {
                await Task.Delay(TimeSpan.FromSeconds(everySeconds));
                var rss = ProcStats.RssMb(app.Pid);
                var now = ProcStats.CpuSeconds(app.Pid);
                samples.Add(rss);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {(DateTime.UtcNow - started).TotalMinutes:0.0} | {rss:0.0} MB | {100 * (now - cpu) / everySeconds:0.00} % |"));
                cpu = now;
            }

            // The first minutes are start-up settling (the JIT's tiering, the GC sizing its heap and, some ten minutes in,
            // giving memory back): compared from a quarter of the run on, at least from minute 5.
            var settle = Math.Max(300, minutes * 60 / 4);
            var settled = samples.Skip(Math.Min(samples.Count - 1, settle / Math.Max(1, everySeconds) - 1)).ToList();
            var first = settled[0];
            var spread = settled.Max(s => Math.Abs(s - first)) / first * 100;
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RSS after settling {first:0.0} MB, last {settled[^1]:0.0} MB, min {settled.Min():0.0}, max {settled.Max():0.0}: within {spread:0.0} % of the first ({(spread <= 5 ? "flat within 5 %: met" : "not flat within 5 %")})."));
            return spread <= 5 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
