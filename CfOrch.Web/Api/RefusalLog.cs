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

    /// <summary>At most this many distinct paths are remembered; beyond it the oldest are forgotten.</summary>
    private const int MaxKeys = 1024;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public void Note(string method, string path, int status, string detail)
    {
        var key = $"{method} {path}";
        var now = time.GetUtcNow();
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

        if (_entries.Count > MaxKeys)
        {
            foreach (var old in _entries.Where(e => e.Value.LastLogged is { } at && now - at > Window).Select(e => e.Key).ToList())
            {
                _entries.TryRemove(old, out _);
            }
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
