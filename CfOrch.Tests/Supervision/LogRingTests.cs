using CfOrch.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Supervision;

public sealed class LogRingTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 3, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Sequences_start_at_one_and_grow_by_one_per_line_with_the_time_and_stream()
    {
        var ring = new LogRing(10, _time);
        ring.Append(LogStream.Stdout, "a");
        _time.Advance(TimeSpan.FromSeconds(2));
        ring.Append(LogStream.Stderr, "b");

        Assert.Equal(2, ring.TotalLines);
        Assert.Equal(
            [
                new LogLine(1, new DateTimeOffset(2026, 11, 3, 12, 0, 0, TimeSpan.Zero), LogStream.Stdout, "a"),
                new LogLine(2, new DateTimeOffset(2026, 11, 3, 12, 0, 2, TimeSpan.Zero), LogStream.Stderr, "b"),
            ],
            ring.Tail(10));
    }

    [Fact]
    public void The_ring_keeps_only_the_newest_capacity_lines()
    {
        var ring = Filled(capacity: 3, lines: 7);

        Assert.Equal(3, ring.Capacity);
        Assert.Equal(7, ring.TotalLines);
        Assert.Equal(["5", "6", "7"], ring.Tail(100).Select(l => l.Text));
        Assert.Equal([5L, 6L, 7L], ring.Tail(3).Select(l => l.Sequence));
    }

    [Fact]
    public void Tail_gives_the_newest_lines_oldest_first()
    {
        var ring = Filled(capacity: 5, lines: 4);

        Assert.Equal(["3", "4"], ring.Tail(2).Select(l => l.Text));
        Assert.Equal(["4"], ring.Tail(1).Select(l => l.Text));
        Assert.Empty(ring.Tail(0));
        Assert.Empty(ring.Tail(-1));
        Assert.Empty(new LogRing(5, _time).Tail(5));
    }

    [Fact]
    public void Since_gives_the_lines_after_a_sequence_that_are_still_in_the_ring()
    {
        var ring = Filled(capacity: 3, lines: 7);

        Assert.Equal([6L, 7L], ring.Since(5).Select(l => l.Sequence));
        Assert.Equal([7L], ring.Since(6).Select(l => l.Sequence));
        Assert.Empty(ring.Since(7));
        Assert.Empty(ring.Since(100));
        // Lines 2 to 4 fell out of the ring: a reader that last saw line 1 gets what is left, and sees the gap.
        Assert.Equal([5L, 6L, 7L], ring.Since(1).Select(l => l.Sequence));
        Assert.Equal([5L, 6L, 7L], ring.Since(0).Select(l => l.Sequence));
    }

    [Fact]
    public void Appended_is_raised_after_each_append_with_the_new_line()
    {
        var ring = new LogRing(2, _time);
        var seen = new List<(LogLine Line, long Total, LogLine Newest)>();
        ring.Appended += line => seen.Add((line, ring.TotalLines, ring.Tail(1)[0]));

        ring.Append(LogStream.Stdout, "x");
        ring.Append(LogStream.Stderr, "y");

        Assert.Equal(2, seen.Count);
        Assert.All(seen, s => Assert.Same(s.Line, s.Newest));
        Assert.Equal([1L, 2L], seen.Select(s => s.Total));
        Assert.Equal(LogStream.Stderr, seen[1].Line.Stream);
    }

    [Fact]
    public async Task Appends_from_many_threads_get_distinct_consecutive_sequences()
    {
        var ring = new LogRing(500, TimeProvider.System);
        var raised = 0;
        ring.Appended += _ => Interlocked.Increment(ref raised);

        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(
            () =>
            {
                for (var i = 0; i < 1000; i++)
                {
                    ring.Append(LogStream.Stdout, $"{w}:{i}");
                }
            },
            TestContext.Current.CancellationToken));
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(4000, ring.TotalLines);
        Assert.Equal(4000, raised);
        Assert.Equal(Enumerable.Range(3501, 500).Select(i => (long)i), ring.Tail(500).Select(l => l.Sequence));
    }

    [Fact]
    public void A_ring_needs_room_for_a_line()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogRing(0, _time));
    }

    private LogRing Filled(int capacity, int lines)
    {
        var ring = new LogRing(capacity, _time);
        for (var i = 1; i <= lines; i++)
        {
            ring.Append(LogStream.Stdout, i.ToString());
        }

        return ring;
    }
}
