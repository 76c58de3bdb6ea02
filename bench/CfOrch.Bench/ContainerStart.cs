using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using CfOrch.Tests.Runtimes;
using Docker.DotNet;

namespace CfOrch.Bench;

/// <summary>
/// Time from Start to <c>running</c> for a container: the real app and a real Docker engine (the local socket), a
/// busybox httpd image built <c>FROM scratch</c> (no pull), <c>POST /api/services/{s}/start</c> — which answers once
/// the service serves — then stop; repeated, and the same for a process (the stand-in) beside it for comparison.
/// </summary>
internal static class ContainerStart
{
    private const string Image = "cf-orch-bench/httpd:1";

    public static async Task<int> RunAsync(string root, int runs)
    {
        using var docker = new DockerClientBuilder().WithEndpoint(new Uri("unix:///var/run/docker.sock")).Build();
        await TestImage.BuildAsync(docker, Image);
        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-containers-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var profile = Path.Combine(data, "bench.yaml");
        var containerPort = ChildProcess.FreePort();
        var processPort = ChildProcess.FreePort();
        var standIn = Path.Combine(root, "CfOrch.StandIns", "bin", ChildProcess.Configuration, "net10.0", "CfOrch.StandIns");
        await File.WriteAllTextAsync(profile, string.Create(CultureInfo.InvariantCulture, $"""
            schema_version: 1
            name: bench-containers
            eviction_timeout_s: 10
            services:
              web:
                max_mb: 1000
                priority: 1
                managed:
                  type: docker
                  image: {Image}
                  init: true
                  port: 8080
                  host_port: {containerPort}
                  health_path: /health
              proc:
                max_mb: 1000
                priority: 1
                managed:
                  type: process
                  exec_path: {standIn}
                  args_template: service --port {'{'}port{'}'}
                  port: {processPort}
                  host_port: {processPort}
                  health_path: /health
            """));
        try
        {
            await using var app = await ChildProcess.StartAppAsync(root, new Dictionary<string, string>
            {
                ["CfOrch__DataDir"] = data,
                ["CfOrch__Profile"] = profile,
                ["CfOrch__Gpus__Mode"] = "simulated",
                ["CfOrch__Gpus__Simulated__0__Name"] = "Bench GPU",
                ["CfOrch__Gpus__Simulated__0__TotalMb"] = "24576",
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            });
            using var http = new HttpClient { BaseAddress = app.Url, Timeout = TimeSpan.FromMinutes(2) };
            var results = new List<(string Service, List<double> Ms)>();
            foreach (var service in new[] { "web", "proc" })
            {
                var times = new List<double>();
                for (var i = 0; i < runs; i++)
                {
                    var clock = Stopwatch.StartNew();
                    using (var started = await http.PostAsJsonAsync(new Uri($"api/services/{service}/start", UriKind.Relative), new { }))
                    {
                        clock.Stop();
                        started.EnsureSuccessStatusCode();
                    }

                    times.Add(clock.Elapsed.TotalMilliseconds);
                    using var stopped = await http.PostAsJsonAsync(new Uri($"api/services/{service}/stop", UriKind.Relative), new { });
                    stopped.EnsureSuccessStatusCode();
                }

                results.Add((service, times));
            }

            Console.WriteLine($"Start to running — {Environment.ProcessorCount} cores, Docker engine {(await docker.System.GetVersionAsync()).Version}, {runs} runs each, {DateTime.UtcNow:yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine("| service | median | p90 | min | max |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
            foreach (var (service, ms) in results)
            {
                ms.Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {(service == "web" ? "container (busybox httpd, init: true, image present)" : "process (the stand-in)")} | {ms[ms.Count / 2]:0} ms | {ms[(int)Math.Min(ms.Count - 1, Math.Ceiling(ms.Count * 0.9) - 1)]:0} ms | {ms[0]:0} ms | {ms[^1]:0} ms |"));
            }

            return 0;
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
