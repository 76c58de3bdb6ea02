using System.Net.Sockets;

namespace CfOrch.Tests.Runtimes;

/// <summary>
/// A Unix socket that forwards every connection to another (the Docker engine's): an engine cf-orch can be shown going
/// away and coming back at a path of the test's own, while the real engine keeps serving the other tests.
/// </summary>
public sealed class SocketForwarder : IDisposable
{
    private readonly Socket _listener;
    // Never disposed: accept and copy loops still hold its token when the forwarder goes away.
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _open = [];
    private readonly Lock _lock = new();

    public SocketForwarder(string path, string target)
    {
        Path = path;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(64);
        _ = AcceptAsync(target);
    }

    public string Path { get; }

    private async Task AcceptAsync(string target)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = PipeAsync(client, target);
        }
    }

    private async Task PipeAsync(Socket client, string target)
    {
        var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        lock (_lock)
        {
            _open.Add(client);
            _open.Add(upstream);
        }

        try
        {
            await upstream.ConnectAsync(new UnixDomainSocketEndPoint(target), _stop.Token);
            await Task.WhenAny(CopyAsync(client, upstream), CopyAsync(upstream, client));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>The "engine" goes away: the socket file is removed and every open connection is cut.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _stop.Cancel();
        _listener.Dispose();
        lock (_lock)
        {
            foreach (var socket in _open)
            {
                socket.Dispose();
            }
        }

        File.Delete(Path);
    }
}
