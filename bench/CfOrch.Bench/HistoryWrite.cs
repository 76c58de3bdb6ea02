using System.Diagnostics;
using System.Globalization;
using CfOrch.Core.History;
using CfOrch.Web.Data;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Bench;

/// <summary>
/// The history writer alone: a client's lease grant and release (the two rows of a lease pair over HTTP) recorded
/// as fast as one thread can, then flushed to SQLite; reports the pairs written per second and the process's CPU time
/// per pair — the share of a lease pair's cost that is history.
/// </summary>
internal static class HistoryWrite
{
    public static async Task<int> RunAsync(int pairs, int rounds)
    {
        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-history-" + Guid.NewGuid().ToString("N"));
        await using var services = await EngineLoad.StartAsync(new Dictionary<string, string?> { ["CfOrch:DataDir"] = data });
        var writer = services.GetRequiredService<HistoryWriter>();

        Console.WriteLine($"History writer — {pairs:N0} lease pairs (grant + release, a client's) per round, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine("| round | pairs/s | CPU µs per pair |");
        Console.WriteLine("| ---: | ---: | ---: |");
        for (var round = 1; round <= rounds; round++)
        {
            var cpu = ProcStats.CpuSeconds(Environment.ProcessId);
            var clock = Stopwatch.StartNew();
            var at = DateTimeOffset.UtcNow;
            for (var i = 0; i < pairs; i++)
            {
                var id = "lease-" + i.ToString("x16", CultureInfo.InvariantCulture);
                var holder = "bench-" + (i % 16).ToString(CultureInfo.InvariantCulture);
                writer.Record(new HistoryEvent { At = at, Kind = HistoryKind.Granted, LeaseId = id, NodeId = "local", GpuIndex = 0, Holder = holder, Origin = "client", BudgetMb = 64, Priority = 2, Reason = "" });
                writer.Record(new HistoryEvent { At = at, Kind = HistoryKind.Released, LeaseId = id, NodeId = "local", GpuIndex = 0, Holder = holder, Origin = "client", BudgetMb = 64, Reason = "released by its holder", GrantedAt = at });
                if (i % 20_000 == 19_999)
                {
                    // As under a load: the queue never holds more than a few batches.
                    await writer.FlushAsync(CancellationToken.None);
                }
            }

            await writer.FlushAsync(CancellationToken.None);
            var seconds = clock.Elapsed.TotalSeconds;
            var cpuUs = (ProcStats.CpuSeconds(Environment.ProcessId) - cpu) * 1e6 / pairs;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {round} | {pairs / seconds:N0} | {cpuUs:N1} |"));
        }

        await writer.StopAsync(CancellationToken.None);
        try
        {
            Directory.Delete(data, recursive: true);
        }
        catch (IOException)
        {
        }

        return 0;
    }
}
