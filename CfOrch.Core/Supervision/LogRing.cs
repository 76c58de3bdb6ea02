namespace CfOrch.Core.Supervision;

/// <summary>
/// A bounded ring of the last <see cref="Capacity"/> lines of a process's output; thread-safe. Each appended line gets
/// the next <see cref="LogLine.Sequence"/> (the first is 1), so a reader that remembers the last sequence it saw asks
/// <see cref="Since"/> for what is new, and notices a gap when lines fell out of the ring meanwhile.
/// </summary>
public sealed class LogRing
{
    private readonly LogLine[] _lines;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _total;
    private Action? _catchUp;

    public LogRing(int capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentNullException.ThrowIfNull(time);
        _lines = new LogLine[capacity];
        _time = time;
    }

    /// <summary>
    /// Raised after each append, outside the lock, on the appending thread. Stdout and stderr are appended from two
    /// threads, so a handler may see sequences out of order.
    /// </summary>
    public event Action<LogLine>? Appended;

    public int Capacity => _lines.Length;

    /// <summary>How many lines were ever appended; also the sequence of the newest line.</summary>
    public long TotalLines
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    public void Append(LogStream stream, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        LogLine line;
        lock (_lock)
        {
            _total++;
            line = new LogLine(_total, _time.GetUtcNow(), stream, text);
            _lines[(_total - 1) % _lines.Length] = line;
        }

        Appended?.Invoke(line);
    }

    /// <summary>
    /// The newest <paramref name="count"/> lines still in the ring, oldest first: with a follower behind the ring, up to
    /// what the process has written by now, not only up to the follower's last look (which may be most of a second ago
    /// for a quiet process).
    /// </summary>
    public IReadOnlyList<LogLine> Tail(int count)
    {
        _catchUp?.Invoke();
        lock (_lock)
        {
            var held = (int)Math.Min(_total, _lines.Length);
            return Copy(_total - Math.Clamp(count, 0, held) + 1);
        }
    }

    /// <summary>What fills this ring from files (the process's <see cref="OutputFollower"/>) reads them now when <see cref="Tail"/> is asked.</summary>
    internal void CatchUpWith(Action catchUp) => _catchUp = catchUp;

    /// <summary>The lines with <see cref="LogLine.Sequence"/> greater than <paramref name="sequence"/> still in the ring, oldest first.</summary>
    public IReadOnlyList<LogLine> Since(long sequence)
    {
        lock (_lock)
        {
            var oldestHeld = Math.Max(1, _total - _lines.Length + 1);
            return Copy(Math.Max(oldestHeld, sequence + 1));
        }
    }

    // Lines first..._total, which must all be in the ring; called under the lock.
    private LogLine[] Copy(long first)
    {
        if (first > _total)
        {
            return [];
        }

        var result = new LogLine[_total - first + 1];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = _lines[(first - 1 + i) % _lines.Length];
        }

        return result;
    }
}
