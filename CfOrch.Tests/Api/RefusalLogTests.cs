using CfOrch.Web.Api;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Api;

/// <summary>Expected refusals are logged proportionately: a line per path per second, with a count, and no stack trace.</summary>
public sealed class RefusalLogTests
{
    [Fact]
    public void A_storm_of_refusals_writes_one_line_a_second_per_path_and_counts_the_rest()
    {
        var logger = new ListLogger();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-29T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var log = new RefusalLog(logger, time);

        for (var i = 0; i < 40_000; i++)
        {
            log.Note("POST", "/api/leases", 503, "GPU 0 has 100 MB free");
            if (i % 1000 == 999)
            {
                time.Advance(TimeSpan.FromMilliseconds(100));
            }
        }

        log.Note("POST", "/api/services/vllm/allocate", 503, "no room");

        // The next refusal after the storm says how many of the last second's went unlogged.
        time.Advance(RefusalLog.Window);
        log.Note("POST", "/api/leases", 503, "GPU 0 has 100 MB free");

        // 40,001 refusals over 5 s: one line a second for the path (and one for the other path), not 40,001.
        Assert.InRange(logger.Lines.Count, 6, 7);
        Assert.All(logger.Lines, l => Assert.Equal((LogLevel.Information, (Exception?)null), (l.Level, l.Exception)));
        Assert.Equal("POST /api/leases refused with 503: GPU 0 has 100 MB free", logger.Lines[0].Text);
        Assert.Matches(@"^POST /api/leases refused with 503: GPU 0 has 100 MB free \(\d{4} more like it since the last line were not logged\)$", logger.Lines[1].Text);
        Assert.Equal(40_001, logger.Lines.Where(l => l.Text.StartsWith("POST /api/leases", StringComparison.Ordinal)).Sum(l => 1 + Suppressed(l.Text)));
        Assert.Single(logger.Lines, l => l.Text == "POST /api/services/vllm/allocate refused with 503: no room");
    }

    [Fact]
    public void A_spray_of_distinct_paths_is_remembered_up_to_a_bound_and_logged_a_line_a_second_beyond_it()
    {
        var logger = new ListLogger();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-29T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var log = new RefusalLog(logger, time);

        for (var i = 0; i < 20_000; i++)
        {
            log.Note("GET", $"/api/nope-{i}", 404, "no such path");
        }

        // Within one second: the first 1,024 paths a line each, then one line for all the others.
        Assert.Equal(RefusalLog.MaxKeys + 1, log.Remembered);
        Assert.Equal(RefusalLog.MaxKeys + 1, logger.Lines.Count);
        Assert.Equal("GET /api/nope-1024 refused with 404: no such path", logger.Lines[^1].Text);

        // A second later the quiet paths are forgotten and new ones are remembered again.
        time.Advance(TimeSpan.FromSeconds(2));
        log.Note("GET", "/api/later", 404, "no such path");
        Assert.True(log.Remembered <= 2, $"{log.Remembered} paths still remembered");
        Assert.Equal("GET /api/later refused with 404: no such path", logger.Lines[^1].Text);
    }

    private static int Suppressed(string line)
    {
        var open = line.LastIndexOf(" (", StringComparison.Ordinal);
        return open < 0 || !line.EndsWith("not logged)", StringComparison.Ordinal)
            ? 0
            : int.Parse(line[(open + 2)..line.IndexOf(' ', open + 2)], System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed class ListLogger : ILogger<RefusalLog>
    {
        public List<(LogLevel Level, string Text, Exception? Exception)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add((logLevel, formatter(state, exception), exception));
    }
}
