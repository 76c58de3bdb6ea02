using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// A process this run of cf-orch started with posix_spawn: it leads its own session and process group, its exit is
/// reaped by a thread blocked in waitpid (noticed at once, with its exit code), its output is followed from its log files.
/// </summary>
internal sealed class SpawnedProcess : IManagedProcess
{
    private readonly string _name;
    private readonly ILogger _logger;
    private readonly ProcessStopper _stopper;
    private readonly OutputFollower _output;
    private readonly TaskCompletionSource<int?> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private SpawnedProcess(int pid, string name, string logPath, LogRing output, TimeProvider time, ILogger logger)
    {
        Pid = pid;
        _name = name;
        _logger = logger;
        Output = output;
        StartedAt = time.GetUtcNow();
        _output = new OutputFollower(logPath, output, name, pid, logger);
        _stopper = new ProcessStopper(pid, ownGroup: true, name, () => !_exited.Task.IsCompleted, _exited.Task, () => Signals.SendToGroup(pid, Signals.SigKill), time, logger);
    }

    public int Pid { get; }

    public bool OwnProcessGroup => true;

    public DateTimeOffset StartedAt { get; }

    public Task<int?> Exited => _exited.Task;

    public LogRing Output { get; }

    public static SpawnedProcess Start(int pid, string name, string logPath, LogRing output, TimeProvider time, ILogger logger)
    {
        var process = new SpawnedProcess(pid, name, logPath, output, time, logger);
        var waiter = new Thread(process.WaitForExit) { IsBackground = true, Name = $"waitpid {pid}" };
        waiter.Start();
        return process;
    }

    public Task StopAsync(TimeSpan grace, CancellationToken cancellationToken) => _stopper.StopAsync(grace, cancellationToken);

    /// <summary>Stops following the output; the process itself keeps running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _output.DisposeAsync();
        }
    }

    private void WaitForExit()
    {
        var code = PosixSpawn.WaitForExit(Pid);

        // Its last words are in the ring by the time Exited completes.
        _output.Drain();
        if (_exited.TrySetResult(code))
        {
            SupervisionLog.Exited(_logger, _name, Pid, code);
        }
    }
}
