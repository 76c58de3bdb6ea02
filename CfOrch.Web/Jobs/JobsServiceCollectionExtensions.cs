using CfOrch.Core.Configuration;
using CfOrch.Web.Cluster;
using Microsoft.Extensions.Options;
using Quartz;

namespace CfOrch.Web.Jobs;

public static class JobsServiceCollectionExtensions
{
    /// <summary>
    /// The in-process Quartz scheduler (in-memory store) and cf-orch's periodic jobs. No job overlaps itself
    /// (<see cref="DisallowConcurrentExecutionAttribute"/>); the engine's start-up step runs before any of them.
    /// </summary>
    public static IServiceCollection AddCfOrchJobs(this IServiceCollection services)
    {
        // The nodes and what was placed on them first: the engine's start-up closes the leases nobody holds again.
        services.AddHostedService<NodeDirectoryLoader>();
        services.AddHostedService<EngineHostedService>();
        services.AddSingleton<AgentRegistration>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentRegistration>());
        services.AddQuartz(q =>
        {
            q.UseInMemoryStore();
            q.UseDefaultThreadPool(tp => tp.MaxConcurrency = 8);

            Every<GpuPollJob>(q, GpuPollJob.Key, o => TimeSpan.FromSeconds(o.Gpus.PollIntervalSeconds));
            Every<AgentPollJob>(q, AgentPollJob.Key, o => TimeSpan.FromSeconds(o.Cluster.PollSeconds), firstAfter: o => TimeSpan.FromSeconds(Math.Min(2, o.Cluster.PollSeconds)));
            Every<GpuSampleJob>(q, GpuSampleJob.Key, _ => GpuSampleJob.Interval, firstAfter: _ => TimeSpan.FromSeconds(3));
            Every<HistoryHousekeepingJob>(q, HistoryHousekeepingJob.Key, _ => HistoryHousekeepingJob.Interval, firstAfter: _ => TimeSpan.FromMinutes(1));
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        services.AddHostedService<AlwaysOnService>();
        services.AddHostedService<RuntimeWatchService>();
        services.AddHostedService<HealthProbeService>();
        services.AddHostedService<SweepService>();
        services.AddHostedService<AdoptionLoop>();
        services.AddTransient<GpuPollJob>();
        services.AddTransient<AgentPollJob>();
        services.AddTransient<GpuSampleJob>();
        services.AddTransient<HistoryHousekeepingJob>();
        return services;
    }

    private static void Every<TJob>(IQuartzBuilder q, JobKey key, Func<CfOrchOptions, TimeSpan> interval, Func<CfOrchOptions, TimeSpan>? firstAfter = null)
        where TJob : IJob
    {
        q.AddJob<TJob>(j => j.WithIdentity(key));
        q.AddTrigger<TJob>((sp, t) =>
        {
            var options = sp.GetRequiredService<IOptions<CfOrchOptions>>().Value;
            var every = interval(options);
            t.ForJob(key);
            if (firstAfter is not null)
            {
                t.StartAt(DateTimeOffset.UtcNow + firstAfter(options));
            }
            else
            {
                t.StartNow();
            }

            t.WithSimpleSchedule(s => s.WithInterval(every).RepeatForever().MeasureIntervalFromCompletion());
        });
    }
}
