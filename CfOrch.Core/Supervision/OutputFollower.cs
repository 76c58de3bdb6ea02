using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Supervision;

/// <summary>
/// Follows a process's two log files (<c>{logPath}.out.log</c>, <c>{logPath}.err.log</c>) into its output ring, in real
/// time (output arrives whatever a test's fake clock does): every 100 ms while output flows; a quiet process is looked
/// at less often, the interval doubling up to <see cref="QuietInterval"/>, and the first new line brings it back to
/// 100 ms. A reader of the ring's tail has the files read at once (<see cref="LogRing.Tail"/>), so what it gets does not
/// depend on the interval. A process's last output is read in full when it exits (<see cref="Drain"/>).
/// </summary>
internal sealed class OutputFollower : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>How often a process that writes nothing is looked at, at most (ten reads of two files a second, all day,
    /// for every running service that says nothing, were most of what an idle cf-orch did for it).</summary>
    public static readonly TimeSpan QuietInterval = TimeSpan.FromMilliseconds(800);

    private readonly LogFileTail _stdout;
    private readonly LogFileTail _stderr;
    private readonly LogRing _ring;
    private readonly string _name;
    private readonly int _pid;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _readSinceLook;

    public OutputFollower(string logPath, LogRing ring, string name, int pid, ILogger logger, long? startFromLastBytes = null)
    {
        _ring = ring;
        _name = name;
        _pid = pid;
        _logger = logger;
        _stdout = new LogFileTail(StdoutPath(logPath), LogStream.Stdout, OnLine);
        _stderr = new LogFileTail(StderrPath(logPath), LogStream.Stderr, OnLine);
        if (startFromLastBytes is { } bytes)
        {
            _stdout.SkipToLast(bytes);
            _stderr.SkipToLast(bytes);
        }

        ring.CatchUpWith(CatchUp);
        _loop = FollowAsync(_stop.Token);
    }

    public static string StdoutPath(string logPath) => logPath + ".out.log";

    public static string StderrPath(string logPath) => logPath + ".err.log";

    /// <summary>Reads everything written so far, including a last line without a newline.</summary>
    public void Drain() => Poll(final: true);

    /// <summary>Reads what was written since the last look, for a reader of the ring.</summary>
    private void CatchUp()
    {
        if (!_stop.IsCancellationRequested)
        {
            Poll(final: false);
        }
    }

    /// <summary>Reads both files (the loop, a reader, the exit alike); output found is noted for the loop's interval.</summary>
    private void Poll(bool final)
    {
        lock (_lock)
        {
            if (_stdout.Poll(final) | _stderr.Poll(final))
            {
                Volatile.Write(ref _readSinceLook, 1);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

    private async Task FollowAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(Interval, TimeProvider.System);
        try
        {
            do
            {
                Poll(final: false);
                var next = NextInterval(timer.Period, read: Interlocked.Exchange(ref _readSinceLook, 0) == 1);
                if (next != timer.Period)
                {
                    timer.Period = next;
                }
            }
            while (await timer.WaitForNextTickAsync(stop));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The interval after a look that read something (100 ms), or nothing (twice the last, at most <see cref="QuietInterval"/>).</summary>
    public static TimeSpan NextInterval(TimeSpan last, bool read) =>
        read ? Interval : TimeSpan.FromTicks(Math.Min(last.Ticks * 2, QuietInterval.Ticks));

    private void OnLine(LogStream stream, string text)
    {
        try
        {
            _ring.Append(stream, text);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A throwing subscriber must not end the following.
            SupervisionLog.SubscriberFailed(_logger, ex, _name, _pid);
        }
    }
}
