using CfOrch.Core.Processes;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// The stop sequence shared by started and attached processes: SIGTERM, up to the grace period for the process (and,
/// when it leads its own group, every process of the group) to exit, then SIGKILL, then a bounded wait for the end.
/// </summary>
internal sealed class ProcessStopper(
    int pid,
    bool ownGroup,
    string name,
    Func<bool> leaderRunning,
    Task exited,
    Action killTree,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>How long to wait for the end after SIGKILL (a process in the middle of a GPU driver call dies slowly).</summary>
    internal static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan GroupPoll = TimeSpan.FromMilliseconds(50);

    private readonly Lock _lock = new();
    private Task? _stop;

    /// <summary>Starts the stop sequence once; later calls wait for the same one. Cancelling stops the waiting only.</summary>
    public Task StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero);
        Task stop;
        lock (_lock)
        {
            stop = _stop ??= RunAsync(grace);
        }

        return stop.WaitAsync(cancellationToken);
    }

    private async Task RunAsync(TimeSpan grace)
    {
        // After the leader's exit its group may live on (a worker it forked): stop that too.
        if (!leaderRunning() && !(ownGroup && GroupRunning(pid)))
        {
            return;
        }

        var target = ownGroup ? $"process group {pid}" : $"PID {pid}";
        SupervisionLog.Stopping(logger, name, pid, target, grace);
        Signal(Signals.SigTerm);
        if (await GoneWithinAsync(grace))
        {
            return;
        }

        SupervisionLog.Killing(logger, name, pid, grace, ownGroup ? target : $"the process tree of PID {pid}");
        if (ownGroup)
        {
            Signal(Signals.SigKill);
        }
        else
        {
            killTree();
        }

        if (!await GoneWithinAsync(KillWait))
        {
            SupervisionLog.StillRunning(logger, name, pid, KillWait);
        }
    }

    private void Signal(int signal)
    {
        if (ownGroup && Signals.SendToGroup(pid, signal))
        {
            return;
        }

        // No group of its own, or not yet (setsid makes it a moment after the start): the process itself, while it
        // runs (once reaped, its PID may belong to someone else).
        if (leaderRunning())
        {
            Signals.Send(pid, signal);
        }
    }

    private async Task<bool> GoneWithinAsync(TimeSpan limit)
    {
        var start = time.GetTimestamp();
        try
        {
            await exited.WaitAsync(limit, time, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            return false;
        }

        // The group outlives its leader while a child still runs; nothing tells when that ends but looking.
        while (ownGroup && GroupRunning(pid))
        {
            var left = limit - time.GetElapsedTime(start);
            if (left <= TimeSpan.Zero)
            {
                return false;
            }

            await Task.Delay(left < GroupPoll ? left : GroupPoll, time, CancellationToken.None);
        }

        return true;
    }

    /// <summary>True while a process of group <paramref name="pgid"/> still runs (zombies do not count); without /proc, what kill(-pgid, 0) says.</summary>
    private static bool GroupRunning(int pgid) => Signals.GroupExists(pgid) && (ProcFs.AnyRunningInGroup(pgid) ?? true);
}
