using System.Diagnostics;

namespace CfOrch.Bench;

/// <summary>The result of one load: operations per second and latency percentiles.</summary>
internal sealed record LoadResult(string Name, int Concurrency, long Operations, TimeSpan Elapsed, double P50Ms, double P99Ms, long Errors)
{
    public double PerSecond => Operations / Elapsed.TotalSeconds;

    /// <summary>CPU time of the app per operation, in microseconds (NaN when the load ran in process).</summary>
    public double AppCpuUs { get; init; } = double.NaN;

    /// <summary>CPU time of the load generator per operation, in microseconds.</summary>
    public double ClientCpuUs { get; init; } = double.NaN;
}

/// <summary>Runs an operation from N concurrent workers for a while and measures each call.</summary>
internal static class Load
{
    /// <param name="appPid">The app's process, whose CPU time per operation is reported with the load generator's; 0 for none.</param>
    public static async Task<LoadResult> RunAsync(string name, int concurrency, TimeSpan duration, Func<int, Task> operation, int appPid = 0)
    {
        ArgumentNullException.ThrowIfNull(operation);

        // Warm up: JIT, connection pools, SQLite.
        var warmUntil = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async w =>
        {
            while (warmUntil.Elapsed < TimeSpan.FromSeconds(2))
            {
                await operation(w);
            }
        }));

        var latencies = new List<long>[concurrency];
        long errors = 0;
        var appCpuBefore = appPid > 0 ? ProcStats.CpuSeconds(appPid) : double.NaN;
        var clientCpuBefore = ProcStats.CpuSeconds(Environment.ProcessId);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async w =>
        {
            var mine = latencies[w] = new List<long>(1 << 16);
            while (clock.Elapsed < duration)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await operation(w);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }

                mine.Add(Stopwatch.GetTimestamp() - start);
            }
        }));
        var elapsed = clock.Elapsed;
        var appCpu = appPid > 0 ? ProcStats.CpuSeconds(appPid) - appCpuBefore : double.NaN;
        var clientCpu = ProcStats.CpuSeconds(Environment.ProcessId) - clientCpuBefore;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new LoadResult(name, concurrency, all.Length, elapsed, Percentile(all, 0.50), Percentile(all, 0.99), errors)
        {
            AppCpuUs = appCpu * 1e6 / Math.Max(1, all.Length),
            ClientCpuUs = clientCpu * 1e6 / Math.Max(1, all.Length),
        };
    }

    public static double Percentile(long[] sortedTicks, double p) =>
        sortedTicks.Length == 0 ? double.NaN : sortedTicks[(int)Math.Min(sortedTicks.Length - 1, Math.Floor(p * sortedTicks.Length))] * 1000.0 / Stopwatch.Frequency;
}
