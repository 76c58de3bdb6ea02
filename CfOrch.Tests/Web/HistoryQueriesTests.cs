using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Web;

/// <summary>The History page's queries over a real SQLite file with the app's migrations.</summary>
public sealed class HistoryQueriesTests : IDisposable
{
    private readonly TempDir _data = new();
    private readonly ServiceProvider _services;

    public HistoryQueriesTests()
    {
        _services = new ServiceCollection()
            .AddDbContextFactory<CfOrchDb>(o => o.UseSqlite($"Data Source={Path.Combine(_data.Path, "history.db")};Pooling=false"))
            .AddSingleton<HistoryChanges>()
            .AddSingleton<HistoryQueries>()
            .BuildServiceProvider();
        using var db = Db();
        db.Database.Migrate();
    }

    public void Dispose()
    {
        _services.Dispose();
        _data.Dispose();
    }

    private CfOrchDb Db() => _services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContext();

    [Fact]
    public async Task A_day_of_samples_comes_back_as_at_most_one_point_per_bucket_per_gpu_keeping_every_peak()
    {
        var since = new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        const long Step = 15_000;
        const int PerGpu = 24 * 3600 * 1000 / (int)Step; // 5,760: a day at the sampler's 15 s
        using (var db = Db())
        {
            for (var i = 0; i < PerGpu; i++)
            {
                foreach (var gpu in new[] { 0, 1 })
                {
                    db.GpuSamples.Add(new GpuSample
                    {
                        NodeId = "local",
                        GpuIndex = gpu,
                        GpuName = $"GPU {gpu}",
                        AtUnixMs = since + (i * Step),
                        TotalMb = 24576,
                        // One short spike at sample 1000 on GPU 0; otherwise a flat 2,000 MB.
                        UsedMb = gpu == 0 && i == 1000 ? 23000 : 2000,
                        CommittedMb = 4000,
                        MeasuredMb = i == PerGpu - 1 ? 3333 : 1000,
                    });
                }
            }

            await db.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        var bucket = 24 * 3600 * 1000L / 600;
        var samples = await _services.GetRequiredService<HistoryQueries>().SamplesAsync(since, null, bucket, TestContext.Current.CancellationToken);

        var gpu0 = samples.Where(s => s.GpuIndex == 0).ToList();
        Assert.Equal(600, gpu0.Count);
        Assert.Equal(600, samples.Count(s => s.GpuIndex == 1));
        Assert.Equal(gpu0.OrderBy(s => s.AtUnixMs).Select(s => s.AtUnixMs), gpu0.Select(s => s.AtUnixMs));
        Assert.Equal(23000, gpu0.Max(s => s.UsedMb));
        Assert.Equal(2000, samples.Where(s => s.GpuIndex == 1).Max(s => s.UsedMb));
        Assert.Equal((since + ((PerGpu - 1) * Step), 3333L), (gpu0[^1].AtUnixMs, gpu0[^1].MeasuredMb!.Value));
        Assert.Equal("GPU 0", gpu0[0].GpuName);

        var oneGpu = await _services.GetRequiredService<HistoryQueries>().SamplesAsync(since, 1, bucket, TestContext.Current.CancellationToken);
        Assert.All(oneGpu, s => Assert.Equal(1, s.GpuIndex));
    }
}
