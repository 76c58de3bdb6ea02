using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Tests.Engine;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Orchestration;

/// <summary><c>restart: on-failure</c> with the real app, real child processes that crash, and SQLite history.</summary>
public sealed class RestartPolicyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_crashing_process_is_restarted_on_its_gpu_until_max_restarts_then_stays_failed_until_started_again()
    {
        // Each run crashes with code 3 when the test tells it to (POST /control/exit), once it serves.
        await using var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("flaky", 2000, 1, EngineApp.FreePort(), "service --port {port}", "/health", restart: "on-failure", maxRestarts: 2)));
        var first = (await app.Orchestrator.EnsureAsync("flaky", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;
        Assert.Equal(0, first.RestartNumber);

        await app.CrashAsync(first, 3);
        var crashed = await app.WaitForAsync("flaky", i => i is { State: InstanceState.Failed, PendingRestart: not null });
        Assert.Equal((1, 2), (crashed.PendingRestart!.Number, crashed.PendingRestart.Of));
        Assert.InRange(crashed.PendingRestart.At - crashed.StateSince, CrashRestarter.Backoff(1), CrashRestarter.Backoff(1) + TimeSpan.FromSeconds(3));
        Assert.Equal(3, crashed.ExitCode);
        Assert.Equal("the process exited with code 3", crashed.Message);

        var restarted = await app.WaitForAsync("flaky", i => i is { RestartNumber: 1, State: InstanceState.Running });
        Assert.NotEqual(first.Pid, restarted.Pid);
        Assert.Equal(first.Key, restarted.Key);

        await app.CrashAsync(restarted, 3);
        var second = await app.WaitForAsync("flaky", i => i is { State: InstanceState.Failed, PendingRestart.Number: 2 });
        Assert.InRange(second.PendingRestart!.At - second.StateSince, CrashRestarter.Backoff(2), CrashRestarter.Backoff(2) + TimeSpan.FromSeconds(3));

        var last = await app.WaitForAsync("flaky", i => i is { RestartNumber: 2, State: InstanceState.Running });
        await app.CrashAsync(last, 3);
        var gaveUp = await app.WaitForAsync("flaky", i => i is { RestartNumber: 2, State: InstanceState.Failed } && i.Message!.Contains("not restarted", StringComparison.Ordinal));
        Assert.Null(gaveUp.PendingRestart);
        Assert.Equal("the process exited with code 3; not restarted: it was restarted 2 times in the last 10 minutes (max_restarts: 2)", gaveUp.Message);
        Assert.Empty(app.Orchestrator.Leases);

        // Three starts, two of them automatic restarts, three failures.
        using var client = app.Factory.CreateClient();
        await app.PollAsync(
            async () => await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct) is var text
                && text.Contains("cf_orch_process_restarts_total{service=\"flaky\"} 2", StringComparison.Ordinal)
                && text.Contains("cf_orch_process_starts_total{service=\"flaky\"} 3", StringComparison.Ordinal)
                && text.Contains("cf_orch_process_failures_total{service=\"flaky\"} 3", StringComparison.Ordinal)
                ? text : null,
            "the restart counters in /metrics");

        // Three runs, each granted a lease and lost with its exit code.
        await app.Factory.Services.GetRequiredService<HistoryWriter>().FlushAsync(Ct);
        await using var db = await app.Factory.Services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContextAsync(Ct);
        var kinds = await db.LeaseEvents.AsNoTracking().Where(e => e.Service == "flaky").OrderBy(e => e.Id).Select(e => e.Kind).ToListAsync(Ct);
        Assert.Equal(["granted", "lost", "granted", "lost", "granted", "lost"], kinds);

        // Started on request again (its user fixed something): the count begins anew.
        var again = (await app.Orchestrator.EnsureAsync("flaky", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;
        Assert.Equal(0, again.RestartNumber);
        await app.CrashAsync(again, 3);
        var crashedAgain = await app.WaitForAsync("flaky", i => i is { State: InstanceState.Failed, RestartNumber: 0, PendingRestart: not null });
        Assert.Equal((1, 2), (crashedAgain.PendingRestart!.Number, crashedAgain.PendingRestart.Of));
    }

    [Fact]
    public async Task Stopping_a_service_that_waits_for_its_restart_cancels_the_restart()
    {
        var (app, failed) = await CrashedWithoutRestartPolicyAsync();
        await using var _ = app;

        // As the restart policy leaves it between the crash and the end of its back-off (the clock here is real, so
        // the test marks it itself rather than racing a one-second back-off).
        var waiting = app.Factory.Services.GetRequiredService<InstanceRegistry>()
            .Update(failed.Key, i => i with { PendingRestart = new PendingRestart(i.StateSince.AddSeconds(1), 1, 3) })!;

        var outcome = Assert.Single(await app.Orchestrator.StopAsync("flaky", null, Ct));

        Assert.Equal("flaky on GPU 0 will not be restarted (restart cancelled); it stays failed", outcome.Message);
        var after = app.Orchestrator.Instances.Single(i => i.Service == "flaky");
        Assert.Equal((failed.Since, InstanceState.Failed), (after.Since, after.State));
        Assert.Null(after.PendingRestart);
        Assert.Equal("the process exited with code 1; its restart was cancelled (stopped on request)", after.Message);

        // What the waiting restart does when its back-off ends: nothing.
        Assert.Null(await app.Factory.Services.GetRequiredService<CrashRestarter>().RestartCrashedAsync(waiting, Ct));
        Assert.Equal(InstanceState.Failed, app.Orchestrator.Instances.Single(i => i.Service == "flaky").State);
        Assert.Empty(app.Orchestrator.Leases);
    }

    [Fact]
    public async Task A_process_that_dies_at_once_is_restarted_at_most_max_restarts_times()
    {
        await using var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("dead", 2000, 1, EngineApp.FreePort(), "service --port {port} --exit-after-ms 0 --exit-code 2", "/health", restart: "on-failure", maxRestarts: 2)));

        await Assert.ThrowsAsync<OrchestrationException>(() => app.Orchestrator.EnsureAsync("dead", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct));

        // Each restart is counted even though its process is gone before the launch returns.
        var gaveUp = await app.WaitForAsync("dead", i => i is { State: InstanceState.Failed, RestartNumber: 2 } && i.Message!.EndsWith("(max_restarts: 2)", StringComparison.Ordinal));
        Assert.Null(gaveUp.PendingRestart);
        Assert.Equal(2, gaveUp.ExitCode);
    }

    [Fact]
    public async Task A_stop_between_a_crash_and_the_scheduling_of_its_restart_still_cancels_it()
    {
        var (app, failed) = await CrashedWithoutRestartPolicyAsync();
        await using var _ = app;

        // The user stops the service as it crashes: nothing runs and no restart is scheduled yet.
        Assert.Empty(await app.Orchestrator.StopAsync("flaky", null, Ct));

        // The crash handler schedules the restart just after that stop.
        var waiting = app.Factory.Services.GetRequiredService<InstanceRegistry>()
            .Update(failed.Key, i => i with { PendingRestart = new PendingRestart(i.StateSince.AddSeconds(1), 1, 3) })!;

        Assert.Null(await app.Factory.Services.GetRequiredService<CrashRestarter>().RestartCrashedAsync(waiting, Ct));
        var after = app.Orchestrator.Instances.Single(i => i.Service == "flaky");
        Assert.Equal((failed.Since, InstanceState.Failed, null), (after.Since, after.State, after.PendingRestart));
        Assert.EndsWith("; its restart was cancelled (stopped on request)", after.Message, StringComparison.Ordinal);
        Assert.Empty(app.Orchestrator.Leases);
    }

    [Fact]
    public async Task Without_a_restart_policy_a_crash_is_not_restarted()
    {
        var (app, crashed) = await CrashedWithoutRestartPolicyAsync();
        await using var _ = app;

        Assert.Null(crashed.PendingRestart);
        Assert.Null(await app.Factory.Services.GetRequiredService<CrashRestarter>().RestartCrashedAsync(crashed, Ct));
    }

    /// <summary>The app with a service (no restart policy) that was started and then exited with code 1.</summary>
    private static async Task<(EngineApp App, InstanceSnapshot Failed)> CrashedWithoutRestartPolicyAsync()
    {
        var app = EngineApp.Start(EngineApp.Profile(
            EngineApp.StandInService("flaky", 2000, 1, EngineApp.FreePort(), "service --port {port}", "/health")));
        try
        {
            var serving = (await app.Orchestrator.EnsureAsync("flaky", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct)).Instance;
            return (app, await app.CrashAsync(serving, 1));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(6, 32)]
    [InlineData(7, 60)]
    [InlineData(100, 60)]
    public void The_back_off_doubles_up_to_a_minute(int number, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), CrashRestarter.Backoff(number));
    }
}
