using System.Collections.Concurrent;

namespace CfOrch.Web.Api;

/// <summary>
/// Expected refusals (no room on a GPU, a start that failed) are worth a line in the log, not a stack trace each: one
/// Information line per request path per second, and the next line says how many like it were left out meanwhile. A
/// storm of 40,000 refusals writes a few hundred lines, not megabytes.
/// </summary>
public sealed partial class RefusalLog(ILogger<RefusalLog> logger, TimeProvider time)
{
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    /// <summary>At most this many distinct paths are remembered; a refusal on a path beyond them shares one line a second with the rest.</summary>
    public const int MaxKeys = 1024;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _pruneLock = new();
    private DateTimeOffset _lastPrune = DateTimeOffset.MinValue;

    /// <summary>How many paths are remembered now (for tests).</summary>
    public int Remembered => _entries.Count;

    public void Note(string method, string path, int status, string detail)
    {
        var now = time.GetUtcNow();
        var key = $"{method} {path}";
        if (!_entries.ContainsKey(key) && _entries.Count >= MaxKeys)
        {
            // A stranger spraying new paths: forgetting the quiet ones is tried at most once a second (not on every
            // request), and while every slot is busy the newcomers share one bucket per method.
            Prune(now);
            if (_entries.Count >= MaxKeys)
            {
                key = $"{method} (other paths)";
            }
        }

        var entry = _entries.GetOrAdd(key, _ => new Entry());
        int suppressed;
        lock (entry)
        {
            if (entry.LastLogged is { } last && now - last < Window)
            {
                entry.Suppressed++;
                return;
            }

            suppressed = entry.Suppressed;
            entry.Suppressed = 0;
            entry.LastLogged = now;
        }

        if (suppressed == 0)
        {
            LogRefused(method, path, status, detail);
        }
        else
        {
            LogRefusedAgain(method, path, status, detail, suppressed);
        }
    }

    private void Prune(DateTimeOffset now)
    {
        lock (_pruneLock)
        {
            if (now - _lastPrune < Window)
            {
                return;
            }

            _lastPrune = now;
        }

        foreach (var (key, entry) in _entries)
        {
            if (entry.LastLogged is { } at && now - at > Window)
            {
                _entries.TryRemove(key, out _);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} refused with {Status}: {Detail}")]
    private partial void LogRefused(string method, string path, int status, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} refused with {Status}: {Detail} ({Suppressed} more like it since the last line were not logged)")]
    private partial void LogRefusedAgain(string method, string path, int status, string detail, int suppressed);

    private sealed class Entry
    {
        public DateTimeOffset? LastLogged { get; set; }

        public int Suppressed { get; set; }
    }
}
