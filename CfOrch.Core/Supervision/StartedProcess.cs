using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>A process this run of cf-orch started: its exit comes from the runtime's SIGCHLD handling, its output from pipes.</summary>
internal sealed class StartedProcess : IManagedProcess
{
    /// <summary>Longer lines (a progress bar that never prints a newline) are cut, so the ring stays bounded in bytes too.</summary>
    internal const int MaxLineLength = 16 * 1024;

    /// <summary>
    /// How long after the exit the last output may take to arrive. The pipes normally reach end-of-file with the exit;
    /// a child that inherited them keeps them open, and must not hold up <see cref="Exited"/> for more than this.
    /// </summary>
    private static readonly TimeSpan DrainLimit = TimeSpan.FromMilliseconds(500);

    private readonly Process _process;
    private readonly string _name;
    private readonly ILogger _logger;
    private readonly ProcessStopper _stopper;
    private readonly TaskCompletionSource<int?> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private StartedProcess(Process process, string name, bool ownGroup, LogRing output, TimeProvider time, ILogger logger)
    {
        _process = process;
        _name = name;
        _logger = logger;
        OwnProcessGroup = ownGroup;
        Output = output;
        Pid = process.Id;
        StartedAt = time.GetUtcNow();
        _stopper = new ProcessStopper(Pid, ownGroup, name, () => !HasExited(), _exited.Task, KillTree, time, logger);
    }

    public int Pid { get; }

    public bool OwnProcessGroup { get; }

    public DateTimeOffset StartedAt { get; }

    public Task<int?> Exited => _exited.Task;

    public LogRing Output { get; }

    /// <summary>Starts <paramref name="info"/> (with its three standard streams redirected); stdin is closed at once.</summary>
    /// <exception cref="Win32Exception">The program could not be started.</exception>
    public static StartedProcess Start(ProcessStartInfo info, string name, bool ownGroup, LogRing output, TimeProvider time, ILogger logger)
    {
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        StartedProcess? started = null;
        process.Exited += (_, _) => _ = started?.CompleteExitAsync();
        process.OutputDataReceived += (_, e) => started?.OnLine(LogStream.Stdout, e.Data);
        process.ErrorDataReceived += (_, e) => started?.OnLine(LogStream.Stderr, e.Data);
        try
        {
            process.Start();
        }
        catch
        {
            process.Dispose();
            throw;
        }

        started = new StartedProcess(process, name, ownGroup, output, time, logger);

        // An exit before `started` was set raised Exited into the void: HasExited tells, and Exited is not raised twice.
        if (process.HasExited)
        {
            _ = started.CompleteExitAsync();
        }

        // No input: a service reading stdin sees end-of-file, as with </dev/null.
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    public Task StopAsync(TimeSpan grace, CancellationToken cancellationToken) => _stopper.StopAsync(grace, cancellationToken);

    /// <summary>
    /// Releases the <see cref="Process"/> without killing the program. While it still runs, the release waits for its
    /// exit: closing its pipes now would make its next write fail (SIGPIPE ends most programs).
    /// </summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _ = _exited.Task.ContinueWith(_ => _process.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return ValueTask.CompletedTask;
    }

    private async Task CompleteExitAsync()
    {
        if (_exited.Task.IsCompleted)
        {
            return;
        }

        int? code = null;
        try
        {
            code = _process.ExitCode;
        }
        catch (InvalidOperationException)
        {
        }

        try
        {
            // Real time on purpose: a bound on pipe I/O, not a schedule that a fake clock should drive.
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(DrainLimit, TimeProvider.System);
        }
        catch (TimeoutException)
        {
        }

        if (_exited.TrySetResult(code))
        {
            SupervisionLog.Exited(_logger, _name, Pid, code);
        }
    }

    private void OnLine(LogStream stream, string? text)
    {
        if (text is null)
        {
            (stream == LogStream.Stdout ? _stdoutClosed : _stderrClosed).TrySetResult();
            return;
        }

        if (text.Length > MaxLineLength)
        {
            text = string.Concat(text.AsSpan(0, MaxLineLength), "…");
        }

        try
        {
            Output.Append(stream, text);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A throwing subscriber must not end the reading (or, on a pool thread, the whole app).
            SupervisionLog.SubscriberFailed(_logger, ex, _name, Pid);
        }
    }

    private bool HasExited()
    {
        try
        {
            return _process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private void KillTree()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Win32Exception or NotSupportedException)
        {
            // Exited meanwhile.
        }
    }
}
