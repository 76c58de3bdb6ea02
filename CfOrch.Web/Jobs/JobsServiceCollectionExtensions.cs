using CfOrch.Core.Configuration;
using Microsoft.Extensions.Options;
using Quartz;

namespace CfOrch.Web.Jobs;

public static class JobsServiceCollectionExtensions
{
    /// <summary>The in-process Quartz scheduler (in-memory store) and cf-orch's periodic jobs.</summary>
    public static IServiceCollection AddCfOrchJobs(this IServiceCollection services)
    {
        services.AddQuartz(q =>
        {
            q.UseInMemoryStore();
            q.UseDefaultThreadPool(tp => tp.MaxConcurrency = 8);

            q.AddJob<GpuPollJob>(j => j.WithIdentity(GpuPollJob.Key));
            q.AddTrigger<GpuPollJob>((sp, t) =>
            {
                var seconds = sp.GetRequiredService<IOptions<CfOrchOptions>>().Value.Gpus.PollIntervalSeconds;
                var poll = TimeSpan.FromSeconds(Math.Clamp(seconds, 0.1, 3600));
                t.ForJob(GpuPollJob.Key).StartNow()
                    .WithSimpleSchedule(s => s.WithInterval(poll).RepeatForever().MeasureIntervalFromCompletion());
            });

            q.AddJob<GpuSampleJob>(j => j.WithIdentity(GpuSampleJob.Key));
            q.AddTrigger(t => t.ForJob(GpuSampleJob.Key).StartAt(DateTimeOffset.UtcNow.AddSeconds(10))
                .WithSimpleSchedule(s => s.WithInterval(GpuSampleJob.Interval).RepeatForever().MeasureIntervalFromCompletion()));
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        services.AddTransient<GpuPollJob>();
        services.AddTransient<GpuSampleJob>();
        return services;
    }
}
