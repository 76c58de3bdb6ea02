using CfOrch.Core.Supervision;

namespace CfOrch.Tests.Supervision;

public sealed class SignalsTests
{
    [Fact]
    public void IsAlive_is_true_for_this_process_and_for_init_and_false_for_zero_and_negatives()
    {
        Assert.True(Signals.IsAlive(Environment.ProcessId));
        Assert.True(Signals.IsAlive(1));
        Assert.False(Signals.IsAlive(0));
        Assert.False(Signals.IsAlive(-1));
    }

    [Fact]
    public void Zero_negative_and_own_group_targets_are_never_signalled()
    {
        // Signal 0 only checks: nothing is delivered even if the guard failed.
        Assert.False(Signals.Send(0, 0));
        Assert.False(Signals.Send(-1, 0));
        Assert.False(Signals.SendToGroup(0, 0));
        Assert.False(Signals.SendToGroup(1, 0));
        Assert.False(Signals.SendToGroup(TestProcesses.Stat(Environment.ProcessId)!.Value.ProcessGroup, 0));
        Assert.True(Signals.Send(Environment.ProcessId, 0));
    }

    [Fact]
    public async Task Send_delivers_a_signal_to_a_process()
    {
        await using var processes = new TestProcesses();
        var process = processes.Sh("sleep 60");

        Assert.True(Signals.Send(process.Pid, Signals.SigKill));

        Assert.Equal(128 + Signals.SigKill, await process.Exited.WaitAsync(TestProcesses.Deadline, TestContext.Current.CancellationToken));
    }
}
