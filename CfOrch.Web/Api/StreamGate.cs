using System.Net;
using CfOrch.Core.Configuration;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Api;

/// <summary>
/// Counts the open server-sent event streams (<c>/api/events</c>, log streams): at most <c>CfOrch:Api:MaxStreams</c> at
/// once and <c>CfOrch:Api:MaxStreamsPerAddress</c> from one address, and a quarter of them kept for those who may
/// control cf-orch — so that visitors who connect and never leave cannot hold the server's memory, nor lock out
/// its owner.
/// </summary>
public sealed class StreamGate(IOptions<CfOrchOptions> options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, int> _byAddress = [];
    private int _open;
    private int _openByVisitors;

    public int Limit { get; } = options.Value.Api.MaxStreams;

    public int PerAddressLimit { get; } = options.Value.Api.MaxStreamsPerAddress;

    /// <summary>How many streams visitors without control rights may hold together: the rest is kept for controllers.</summary>
    public int VisitorLimit => Limit - Math.Max(1, Limit / 4);

    public int Open
    {
        get
        {
            lock (_lock)
            {
                return _open;
            }
        }
    }

    /// <summary>A slot for one stream (dispose it when the stream ends), or null with why, when none may be had.</summary>
    public (IDisposable? Slot, string? Refusal) TryEnter(IPAddress? remote, bool canControl)
    {
        var address = remote is null ? IPAddress.None : Networks.Normalize(remote);
        lock (_lock)
        {
            var fromAddress = _byAddress.GetValueOrDefault(address);
            if (_open >= Limit)
            {
                return (null, $"{Limit} event streams are open already (CfOrch:Api:MaxStreams); close one, or try again later");
            }

            if (fromAddress >= PerAddressLimit)
            {
                return (null, $"{PerAddressLimit} event streams from {address} are open already (CfOrch:Api:MaxStreamsPerAddress); close one first");
            }

            if (!canControl && _openByVisitors >= VisitorLimit)
            {
                return (null, $"the {VisitorLimit} event streams open to visitors are taken (the rest of CfOrch:Api:MaxStreams is kept for those who may control cf-orch); try again later");
            }

            _open++;
            _byAddress[address] = fromAddress + 1;
            if (!canControl)
            {
                _openByVisitors++;
            }
        }

        return (new Slot(this, address, canControl), null);
    }

    private void Leave(IPAddress address, bool canControl)
    {
        lock (_lock)
        {
            _open--;
            if (!canControl)
            {
                _openByVisitors--;
            }

            if (_byAddress[address] <= 1)
            {
                _byAddress.Remove(address);
            }
            else
            {
                _byAddress[address]--;
            }
        }
    }

    private sealed class Slot(StreamGate gate, IPAddress address, bool canControl) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                gate.Leave(address, canControl);
            }
        }
    }
}
