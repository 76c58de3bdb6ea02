using System.Diagnostics;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Supervision;

public sealed class AttachTests : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TestProcesses.Deadline;
    private readonly List<Process> _unrelated = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _unrelated)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
            process.Dispose();
        }
    }

    [Fact]
    public async Task Attach_notices_the_exit_of_a_process_it_did_not_start_at_the_next_poll()
    {
        var time = new FakeTimeProvider();
        var launcher = new ProcessLauncher(time, NullLogger<ProcessLauncher>.Instance);
        var unrelated = StartUnrelated("/bin/sleep", "60");
        await using var attached = launcher.Attach(unrelated.Id, "sleep");

        Assert.Equal(unrelated.Id, attached.Pid);
        Assert.False(attached.OwnProcessGroup);
        Assert.Equal(0, attached.Output.TotalLines);
        time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.False(attached.Exited.IsCompleted);

        unrelated.Kill();
        await unrelated.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.False(attached.Exited.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Null(await attached.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Attaching_to_a_process_that_is_gone_completes_Exited_at_once()
    {
        var gone = StartUnrelated("/bin/true");
        await gone.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        var launcher = new ProcessLauncher(new FakeTimeProvider(), NullLogger<ProcessLauncher>.Instance);

        await using var attached = launcher.Attach(gone.Id, "true");

        Assert.Null(await attached.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task An_attached_group_leader_is_stopped_with_its_whole_group()
    {
        var launcher = new ProcessLauncher(TimeProvider.System, NullLogger<ProcessLauncher>.Instance);
        var leader = StartUnrelated("/usr/bin/setsid", "/bin/sh", "-c", "sleep 60 & echo $!; wait");
        var child = int.Parse(await leader.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Deadline, TestContext.Current.CancellationToken) ?? "0");
        await TestProcesses.WaitUntilAsync(() => TestProcesses.Stat(leader.Id)?.ProcessGroup == leader.Id, "the process group");

        await using var attached = launcher.Attach(leader.Id, "sh");
        Assert.True(attached.OwnProcessGroup);
        Assert.InRange(attached.StartedAt, DateTimeOffset.UtcNow - TimeSpan.FromSeconds(30), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2));

        await attached.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.True(attached.Exited.IsCompleted);
        Assert.Null(await attached.Exited);
        Assert.False(TestProcesses.IsRunning(child));
        Assert.Empty(TestProcesses.GroupMembers(leader.Id));
    }

    private Process StartUnrelated(string fileName, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName, arguments) { RedirectStandardOutput = true, UseShellExecute = false };
        var process = Process.Start(info)!;
        _unrelated.Add(process);
        return process;
    }
}
