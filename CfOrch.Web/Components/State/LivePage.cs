using Microsoft.AspNetCore.Components;

namespace CfOrch.Web.Components.State;

/// <summary>
/// A page (or control) that re-renders when the engine's state changes: it listens to <see cref="LiveState"/> once it is
/// interactive (not while prerendering) and stops listening when it is disposed.
/// </summary>
public abstract class LivePage : ComponentBase, IDisposable
{
    private bool _listening;

    [Inject]
    protected LiveState Live { get; set; } = default!;

    [Inject]
    private BrowserClock BrowserClock { get; set; } = default!;

    public void Dispose()
    {
        if (_listening)
        {
            Live.Changed -= OnLiveChanged;
            BrowserClock.Changed -= OnClockChanged;
        }

        Disposing();
        GC.SuppressFinalize(this);
    }

    protected override void OnAfterRender(bool firstRender)
    {
        if (firstRender && RendererInfo.IsInteractive)
        {
            Live.Changed += OnLiveChanged;
            BrowserClock.Changed += OnClockChanged;
            _listening = true;

            // Changes between the prerendered snapshot and now.
            StateHasChanged();
        }
    }

    /// <summary>Called on the renderer after each batch of changes; re-renders by default.</summary>
    protected virtual void OnStateChanged() => StateHasChanged();

    /// <summary>For pages that hold more to release.</summary>
    protected virtual void Disposing()
    {
    }

    private void OnLiveChanged() => _ = InvokeAsync(OnStateChanged);

    // Times are shown in the browser's zone once it is known.
    private void OnClockChanged() => _ = InvokeAsync(StateHasChanged);
}
