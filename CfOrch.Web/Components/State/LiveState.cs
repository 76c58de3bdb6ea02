using CfOrch.Core.Orchestration;
using CfOrch.Core.State;

namespace CfOrch.Web.Components.State;

/// <summary>
/// The engine's state for one dashboard circuit (Aspire's pattern): one subscription to the state stream, an
/// immutable snapshot to render, and <see cref="Changed"/> raised after each batch of changes — at most every ~100 ms,
/// so a burst re-renders once. Pages subscribe to <see cref="Changed"/> and re-render through InvokeAsync; the watch
/// task is cancelled and awaited when the circuit ends.
/// </summary>
public sealed class LiveState(StateStream stream, TimeProvider time) : IAsyncDisposable
{
    public static readonly TimeSpan BatchWindow = TimeSpan.FromMilliseconds(100);

    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private Task? _watch;
    private EngineSnapshot? _current;
    private Action? _changed;

    /// <summary>Raised (on a background thread) after changes were applied; the first handler starts the subscription.</summary>
    public event Action? Changed
    {
        add
        {
            EnsureStarted();
            lock (_lock)
            {
                _changed += value;
            }
        }

        remove
        {
            lock (_lock)
            {
                _changed -= value;
            }
        }
    }

    /// <summary>
    /// Raised (on a background thread) for each idle model cf-orch unloaded to make room — news to tell, not state to
    /// render; the first handler starts the subscription.
    /// </summary>
    public event Action<ModelUnloaded>? Unloaded
    {
        add
        {
            EnsureStarted();
            lock (_lock)
            {
                _unloaded += value;
            }
        }

        remove
        {
            lock (_lock)
            {
                _unloaded -= value;
            }
        }
    }

    private Action<ModelUnloaded>? _unloaded;

    /// <summary>The state now: the subscription's copy once something listens, else a fresh snapshot (prerendering).</summary>
    public EngineSnapshot Current => Volatile.Read(ref _current) ?? stream.Snapshot();

    private void EnsureStarted()
    {
        lock (_lock)
        {
            if (_watch is not null)
            {
                return;
            }

            var subscription = stream.Subscribe(_stop.Token);
            _current = subscription.Initial;
            _watch = WatchAsync(subscription, _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_watch is not null)
        {
            await _watch;
        }

        _stop.Dispose();
    }

    private void Raise()
    {
        Action? handlers;
        lock (_lock)
        {
            handlers = _changed;
        }

        try
        {
            handlers?.Invoke();
        }
        catch (ObjectDisposedException)
        {
            // A page whose circuit is going away: it will not render again.
        }
    }

    private void Tell(ModelUnloaded unloaded)
    {
        Action<ModelUnloaded>? handlers;
        lock (_lock)
        {
            handlers = _unloaded;
        }

        // Each on its own: a page whose circuit is going away must not keep the news from the others.
        foreach (var handler in handlers?.GetInvocationList().Cast<Action<ModelUnloaded>>() ?? [])
        {
            try
            {
                handler(unloaded);
            }
            catch (ObjectDisposedException)
            {
                // That page's circuit is going away: nobody is left there to tell.
            }
        }
    }

    private async Task WatchAsync(StateSubscription subscription, CancellationToken stop)
    {
        var state = new EngineState(subscription.Initial);
        try
        {
            await foreach (var batch in subscription.Changes.WithCancellation(stop))
            {
                foreach (var change in batch)
                {
                    state.Apply(change);
                    if (change is ModelUnloaded unloaded)
                    {
                        Tell(unloaded);
                    }
                }

                Volatile.Write(ref _current, state.Snapshot());
                if (stop.IsCancellationRequested)
                {
                    return;
                }

                Raise();

                // Changes that arrive meanwhile queue up and are applied together after the window.
                await Task.Delay(BatchWindow, time, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }
}
