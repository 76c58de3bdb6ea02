using System.Diagnostics;
using CfOrch.Core;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Storage;
using CfOrch.Web.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CfOrch.Bench;

/// <summary>
/// Lease grant + release pairs through the orchestrator in process (no HTTP), with the real history writer writing
/// every grant and release to SQLite; reports the pairs per second and how long the writer needed to catch up.
/// </summary>
internal static class EngineLoad
{
    /// <summary>The engine and its SQLite history in process (no web host), the database migrated, the history writer started.</summary>
    public static async Task<ServiceProvider> StartAsync(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())
            .AddLogging(l => l.SetMinimumLevel(LogLevel.Warning))
            .AddCfOrchCore()
            .AddCfOrchData()
            .BuildServiceProvider();
        await services.MigrateDatabaseAsync(CancellationToken.None);
        await services.GetRequiredService<HistoryWriter>().StartAsync(CancellationToken.None);
        return services;
    }

    public static async Task<(LoadResult Result, TimeSpan DrainTime, long Written, long Dropped)> RunAsync(int threads, TimeSpan duration)
    {
        var data = Path.Combine(Path.GetTempPath(), "cf-orch-bench-engine-" + Guid.NewGuid().ToString("N"));
        await using var services = await StartAsync(new Dictionary<string, string?>
        {
            ["CfOrch:DataDir"] = data,
            ["CfOrch:Gpus:Mode"] = "simulated",
            ["CfOrch:Gpus:Simulated:0:Name"] = "Bench GPU",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "1048576",
        });
        var writer = services.GetRequiredService<HistoryWriter>();
        var orchestrator = services.GetRequiredService<Orchestrator>();

        var result = await Load.RunAsync("lease grant + release, in process (history on)", threads, duration, async w =>
        {
            var lease = await orchestrator.RequestLeaseAsync($"bench-{w}", 0, 64, 2, null, CancellationToken.None);
            orchestrator.ReleaseLease(lease.LeaseId);
        });

        var drain = Stopwatch.StartNew();
        await writer.FlushAsync(CancellationToken.None);
        var drained = drain.Elapsed;
        var written = writer.Written;
        var dropped = services.GetRequiredService<StorageHealth>().Dropped;
        await writer.StopAsync(CancellationToken.None);
        try
        {
            Directory.Delete(data, recursive: true);
        }
        catch (IOException)
        {
        }

        return (result, drained, written, dropped);
    }
}
