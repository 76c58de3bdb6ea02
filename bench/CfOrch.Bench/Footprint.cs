using System.Diagnostics;
using System.Globalization;

namespace CfOrch.Bench;

/// <summary>
/// The resident's footprint: start-up time to the first 200 on <c>/api/health</c> (over several runs), and RSS and CPU
/// while idle (no GPU, the profile's services stopped), for each garbage-collector setting in question — set through
/// the runtime's environment variables, so every variant runs the same build.
/// </summary>
internal static class Footprint
{
    private static readonly (string Name, Dictionary<string, string> Environment)[] Variants =
    [
        ("as built (no spin-waiting, TieredPGO off)", new()),
        ("as built, ReadyToRun publish (-a amd64)", new() { [ChildProcess.AppVariable] = PublishedApp }),
        ("before: spin-waiting and TieredPGO on", new() { ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "70", ["DOTNET_TieredPGO"] = "1" }),
        ("workstation GC", new() { ["DOTNET_gcServer"] = "0" }),
        ("workstation GC, conserve memory 5", new() { ["DOTNET_gcServer"] = "0", ["DOTNET_GCConserveMemory"] = "5" }),
        ("tiered compilation off", new() { ["DOTNET_TieredCompilation"] = "0" }),
    ];

    /// <summary>Where the ReadyToRun variant expects a publish: <c>dotnet publish CfOrch.Web/CfOrch.Web.csproj -c Release -a amd64 -o /tmp/cf-orch-publish</c>.</summary>
    private static string PublishedApp => Path.Combine(Path.GetTempPath(), "cf-orch-publish", "CfOrch.Web.dll");

    /// <summary>Debian's Chromium, which the dashboard figures drive headless.</summary>
    private const string ChromiumPath = "/usr/bin/chromium";

    public static async Task<int> RunAsync(string root, int runs, int idleSeconds, string? only, bool dashboard)
    {
        Console.WriteLine($"Footprint — {Environment.ProcessorCount} cores, no GPU, services stopped, {runs} start-ups and {idleSeconds} s idle + {idleSeconds} s measured per setting, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        if (dashboard)
        {
            Console.WriteLine("| runtime setting | start → first 200 (min / median / max) | RSS idle | idle CPU, % of one core | RSS after a visit, then idle | RSS with 10 tabs | CPU with 10 tabs |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        }
        else
        {
            Console.WriteLine("| runtime setting | start → first 200 (min / median / max) | RSS idle | idle CPU, % of one core |");
            Console.WriteLine("| --- | ---: | ---: | ---: |");
        }

        foreach (var (name, environment) in Variants.Where(v => only is null || v.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
        {
            if (environment.TryGetValue(ChildProcess.AppVariable, out var published) && !File.Exists(published))
            {
                Console.WriteLine($"| {name} | not run: no {published} (dotnet publish CfOrch.Web/CfOrch.Web.csproj -c Release -a amd64 -o {Path.GetDirectoryName(published)}) | | |");
                continue;
            }

            var starts = new List<double>();
            double rssMb = 0, cpuPercent = 0;
            var tabs = "";
            for (var run = 0; run < runs; run++)
            {
                var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-footprint-" + Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(data);
                try
                {
                    var settings = new Dictionary<string, string>(environment)
                    {
                        ["CfOrch__DataDir"] = data,
                        ["CfOrch__Gpus__Mode"] = "none",
                        ["CfOrch__Docker__Endpoint"] = "unix:///nonexistent/docker.sock",
                        ["Logging__LogLevel__Default"] = "Warning",
                        ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
                    };
                    var clock = Stopwatch.StartNew();
                    await using var app = await ChildProcess.StartAppAsync(root, settings);
                    using var http = new HttpClient { BaseAddress = app.Url, Timeout = TimeSpan.FromSeconds(5) };
                    while (true)
                    {
                        try
                        {
                            using var answer = await http.GetAsync(new Uri("api/health", UriKind.Relative));
                            if (answer.IsSuccessStatusCode)
                            {
                                break;
                            }
                        }
                        catch (HttpRequestException)
                        {
                        }

                        await Task.Delay(10);
                    }

                    starts.Add(clock.Elapsed.TotalSeconds);

                    // Idle figures from the last run only (the others give start-up times).
                    if (run == runs - 1)
                    {
                        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
                        var before = ProcStats.CpuSeconds(app.Pid);
                        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
                        cpuPercent = 100 * (ProcStats.CpuSeconds(app.Pid) - before) / idleSeconds;
                        rssMb = ProcStats.RssMb(app.Pid);
                        if (dashboard)
                        {
                            tabs = await DashboardAsync(app, idleSeconds);
                        }
                    }
                }
                finally
                {
                    Directory.Delete(data, recursive: true);
                }
            }

            starts.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {starts[0]:0.00} / {starts[starts.Count / 2]:0.00} / {starts[^1]:0.00} s | {rssMb:0} MB | {cpuPercent:0.00} % |{tabs}"));
        }

        return 0;
    }

    /// <summary>
    /// One dashboard visit (a headless Chromium loads it until its circuit is interactive, then closes), the idle wait,
    /// RSS; then 10 tabs open on it, the idle wait, RSS and CPU over another idle interval. Returns the three cells.
    /// </summary>
    private static async Task<string> DashboardAsync(ChildProcess app, int idleSeconds)
    {
        using var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Args = ["--no-sandbox"] });
        await using (var visit = await browser.NewContextAsync())
        {
            await OpenAsync(visit, app.Url);
        }

        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        var afterVisit = ProcStats.RssMb(app.Pid);

        await using var tabs = await browser.NewContextAsync();
        for (var i = 0; i < 10; i++)
        {
            await OpenAsync(tabs, app.Url);
        }

        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        var before = ProcStats.CpuSeconds(app.Pid);
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        var cpu = 100 * (ProcStats.CpuSeconds(app.Pid) - before) / idleSeconds;
        return string.Create(CultureInfo.InvariantCulture, $" {afterVisit:0} MB | {ProcStats.RssMb(app.Pid):0} MB | {cpu:0.00} % |");
    }

    private static async Task OpenAsync(Microsoft.Playwright.IBrowserContext context, Uri url)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync(url.ToString());
        await page.Locator("[data-interactive=true]").WaitForAsync(new() { Timeout = 30_000 });
    }
}
