using CfOrch.Core.Configuration;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Api;

/// <summary>
/// Counts the open server-sent event streams (<c>/api/events</c>, log streams): at most <c>CfOrch:Api:MaxStreams</c>
/// at once, so that clients that connect and never leave cannot hold the server's memory without limit.
/// </summary>
public sealed class StreamGate(IOptions<CfOrchOptions> options)
{
    private int _open;

    public int Limit { get; } = options.Value.Api.MaxStreams;

    public int Open => Volatile.Read(ref _open);

    /// <summary>A slot for one stream (dispose it when the stream ends), or null when all are taken.</summary>
    public IDisposable? TryEnter()
    {
        if (Interlocked.Increment(ref _open) > Limit)
        {
            Interlocked.Decrement(ref _open);
            return null;
        }

        return new Slot(this);
    }

    private sealed class Slot(StreamGate gate) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref gate._open);
            }
        }
    }
}
