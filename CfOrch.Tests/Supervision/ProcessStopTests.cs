using System.Diagnostics;
using CfOrch.Core.Supervision;

namespace CfOrch.Tests.Supervision;

public sealed class ProcessStopTests : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TestProcesses.Deadline;
    private readonly TestProcesses _processes = new();

    public ValueTask DisposeAsync() => _processes.DisposeAsync();

    [Fact]
    public async Task A_process_that_handles_SIGTERM_ends_quickly_with_its_own_exit_code()
    {
        var process = _processes.Sh("trap 'echo bye; exit 7' TERM; sleep 60 & echo ready; wait");
        await TestProcesses.WaitForLineAsync(process, "ready");

        // A SIGTERM that lands between the shell's fork and sleep's exec is lost by that child (the shell's trap is still
        // installed there), and sleep would then outlive the grace: wait until sleep really runs.
        await TestProcesses.WaitUntilAsync(
            () => TestProcesses.GroupMembers(process.Pid).Any(pid => pid != process.Pid && TestProcesses.Comm(pid) == "sleep"),
            "sleep to run in the group");

        var clock = Stopwatch.StartNew();
        await process.StopAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the stop took {clock.Elapsed}");
        Assert.True(process.Exited.IsCompleted);
        Assert.Equal(7, await process.Exited);
        Assert.Contains(process.Output.Tail(10), l => l.Text == "bye");
        Assert.Empty(TestProcesses.GroupMembers(process.Pid));
    }

    [Fact]
    public async Task A_process_that_ignores_SIGTERM_is_killed_after_the_grace_period()
    {
        var process = _processes.Sh("trap '' TERM; echo ready; sleep 60");
        await TestProcesses.WaitForLineAsync(process, "ready");

        var grace = TimeSpan.FromMilliseconds(500);
        var clock = Stopwatch.StartNew();
        await process.StopAsync(grace, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        // Timers may fire a few milliseconds early against a Stopwatch; SIGKILL must not come much before the grace ends.
        Assert.InRange(clock.Elapsed, grace - TimeSpan.FromMilliseconds(50), grace + TimeSpan.FromSeconds(3));
        Assert.Equal(128 + Signals.SigKill, await process.Exited);
        Assert.Empty(TestProcesses.GroupMembers(process.Pid));
    }

    [Fact]
    public async Task The_children_of_the_service_are_gone_after_the_stop()
    {
        var process = _processes.Sh("sleep 60 & echo $!; wait");
        await TestProcesses.WaitUntilAsync(() => process.Output.TotalLines > 0, "the child's PID");
        var child = TestProcesses.FirstLineAsPid(process);
        Assert.Equal(process.Pid, TestProcesses.Stat(child)?.ProcessGroup);

        await process.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.False(TestProcesses.IsRunning(child));
        Assert.False(TestProcesses.IsRunning(process.Pid));
    }

    [Fact]
    public async Task A_child_that_ignores_SIGTERM_after_its_parent_left_is_killed_too()
    {
        // The shell dies of SIGTERM at once; its child ignores it and would live on in the group.
        var process = _processes.Sh("(trap '' TERM; exec sleep 60) & echo $!; wait");
        await TestProcesses.WaitUntilAsync(() => process.Output.TotalLines > 0, "the child's PID");
        var child = TestProcesses.FirstLineAsPid(process);
        await TestProcesses.WaitUntilAsync(() => File.ReadAllText($"/proc/{child}/comm").Trim() == "sleep", "the child to exec sleep");

        var grace = TimeSpan.FromMilliseconds(500);
        var clock = Stopwatch.StartNew();
        await process.StopAsync(grace, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        // Timers may fire a few milliseconds early against a Stopwatch; SIGKILL must not come much before the grace ends.
        Assert.InRange(clock.Elapsed, grace - TimeSpan.FromMilliseconds(50), grace + TimeSpan.FromSeconds(3));
        Assert.Equal(128 + Signals.SigTerm, await process.Exited);
        Assert.False(TestProcesses.IsRunning(child));
        Assert.Empty(TestProcesses.GroupMembers(process.Pid));
    }

    [Fact]
    public async Task Stopping_twice_or_after_the_exit_is_safe()
    {
        var exited = _processes.Sh("exit 0");
        await exited.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);
        await exited.StopAsync(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        var running = _processes.Sh("sleep 60");
        var first = running.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        var second = running.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        await Task.WhenAll(first, second).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        await running.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.Equal(128 + Signals.SigTerm, await running.Exited);
    }

    [Fact]
    public async Task Cancelling_a_stop_ends_the_waiting_but_not_the_stop()
    {
        var process = _processes.Sh("trap '' TERM; echo ready; sleep 60");
        await TestProcesses.WaitForLineAsync(process, "ready");

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var stop = process.StopAsync(TimeSpan.FromMilliseconds(300), cancel.Token);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stop.WaitAsync(Deadline, TestContext.Current.CancellationToken));
        Assert.Equal(128 + Signals.SigKill, await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_negative_grace_period_is_refused()
    {
        var process = _processes.Sh("exit 0");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => process.StopAsync(TimeSpan.FromSeconds(-1), TestContext.Current.CancellationToken));
    }
}
