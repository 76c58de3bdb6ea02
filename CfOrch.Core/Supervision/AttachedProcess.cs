using CfOrch.Core.Processes;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// A process an earlier run of cf-orch started: not this process's child, so its exit is noticed by looking every
/// <see cref="PollInterval"/>, and its exit code is unknown. Its output is followed again from its log files when
/// their path is known (the last <see cref="ProcessLauncher.ReattachTailBytes"/> of them first).
/// </summary>
internal sealed class AttachedProcess : IManagedProcess
{
    internal static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private readonly long? _startTime;
    private readonly string _name;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ProcessStopper _stopper;
    private readonly TaskCompletionSource<int?> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _disposed = new();
    private readonly OutputFollower? _output;
    private int _disposeCalled;

    public AttachedProcess(int pid, string name, ProcStat? status, DateTimeOffset startedAt, LogRing output, string? logPath, TimeProvider time, ILogger logger)
    {
        Pid = pid;
        _name = name;
        _startTime = status?.StartTime;
        _time = time;
        _logger = logger;
        OwnProcessGroup = status?.ProcessGroup == pid;
        StartedAt = startedAt;
        Output = output;
        _output = logPath is null ? null : new OutputFollower(logPath, output, name, pid, logger, ProcessLauncher.ReattachTailBytes);
        _stopper = new ProcessStopper(pid, OwnProcessGroup, name, IsRunning, _exited.Task, () => Signals.Send(pid, Signals.SigKill), time, logger);
        var running = IsRunning();
        SupervisionLog.Attached(logger, name, pid, OwnProcessGroup, running);
        _ = WatchAsync(_disposed.Token);
    }

    public int Pid { get; }

    public bool OwnProcessGroup { get; }

    public DateTimeOffset StartedAt { get; }

    public Task<int?> Exited => _exited.Task;

    public LogRing Output { get; }

    public Task StopAsync(TimeSpan grace, CancellationToken cancellationToken) => _stopper.StopAsync(grace, cancellationToken);

    /// <summary>Stops watching (without touching the process); <see cref="Exited"/> then completes only if it already had.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposeCalled, 1) == 0)
        {
            await _disposed.CancelAsync();
            _disposed.Dispose();
            if (_output is not null)
            {
                await _output.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Running: it exists, is not a zombie, and is still the process that was attached to (the start time tells it from
    /// a later process that got the same PID). A stat that may not be read (hidepid) leaves kill(pid, 0) to decide.
    /// </summary>
    private bool IsRunning()
    {
        if (!Signals.IsAlive(Pid))
        {
            return false;
        }

        return ProcFs.ReadStat(Pid) is { } status
            ? !status.IsZombie && (_startTime is null || status.StartTime == _startTime)
            : Signals.IsAlive(Pid);
    }

    private async Task WatchAsync(CancellationToken disposed)
    {
        try
        {
            using var timer = new PeriodicTimer(PollInterval, _time);
            while (IsRunning())
            {
                await timer.WaitForNextTickAsync(disposed);
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }

        _output?.Drain();
        SupervisionLog.Exited(_logger, _name, Pid, null);
        _exited.TrySetResult(null);
    }
}
