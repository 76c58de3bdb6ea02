namespace CfOrch.Core.Changes;

/// <summary>
/// The sleep of a loop that works when something is due or when something changed, and never on a timer while nothing
/// is: <see cref="SleepAsync"/> ends at its deadline or at the first <see cref="Wake"/>. Take <see cref="Arm"/> before a
/// pass, so that a change during the pass ends the next sleep at once.
/// </summary>
public sealed class Wakeup(TimeProvider time)
{
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sleepingUntilTicks;

    /// <summary>Ends the current sleep, or the next one (cheap: a change may call it at any rate).</summary>
    public void Wake() => Volatile.Read(ref _signal).TrySetResult();

    /// <summary>The wake that ends the next sleep.</summary>
    public TaskCompletionSource Arm() => Volatile.Read(ref _signal);

    /// <summary>While the loop sleeps: until when (<see cref="DateTimeOffset.MaxValue"/>: until woken); null while it works.</summary>
    public DateTimeOffset? SleepingUntil => Volatile.Read(ref _sleepingUntilTicks) switch
    {
        0 => null,
        long.MaxValue => DateTimeOffset.MaxValue,
        var ticks => new DateTimeOffset(ticks, TimeSpan.Zero),
    };

    /// <summary>
    /// Sleeps for <paramref name="wait"/> (null: until woken) or until <paramref name="armed"/> is woken, or
    /// <paramref name="stopping"/>; returns whether it was woken.
    /// </summary>
    public async Task<bool> SleepAsync(TaskCompletionSource armed, TimeSpan? wait, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(armed);
        using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var delay = Task.Delay(wait ?? Timeout.InfiniteTimeSpan, time, sleep.Token);
        Volatile.Write(ref _sleepingUntilTicks, wait is { } span ? (time.GetUtcNow() + span).UtcTicks : long.MaxValue);
        await Task.WhenAny(armed.Task, delay).ConfigureAwait(false);
        Volatile.Write(ref _sleepingUntilTicks, 0);
        await sleep.CancelAsync().ConfigureAwait(false);
        if (!armed.Task.IsCompleted)
        {
            return false;
        }

        Interlocked.CompareExchange(ref _signal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), armed);
        return true;
    }

    /// <summary>Sleeps for <paramref name="gap"/> whatever changes meanwhile (a burst is gathered), as <see cref="SleepingUntil"/> says.</summary>
    public async Task PauseAsync(TimeSpan gap, CancellationToken stopping)
    {
        var pause = Task.Delay(gap, time, stopping);
        Volatile.Write(ref _sleepingUntilTicks, (time.GetUtcNow() + gap).UtcTicks);
        try
        {
            await pause.ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _sleepingUntilTicks, 0);
        }
    }
}
