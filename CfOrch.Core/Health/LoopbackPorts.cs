using System.Net;
using System.Net.Sockets;

namespace CfOrch.Core.Health;

/// <summary>Tells, before an HTTP probe, that nothing listens on a loopback port.</summary>
public interface ILoopbackPorts
{
    /// <summary>Why the target's loopback port refuses connections, in the HTTP client's words; null when it may answer (or is not loopback).</summary>
    ValueTask<string?> RefusedAsync(Uri target);
}

/// <summary>
/// One connect through <see cref="SocketAsyncEventArgs"/>, whose refusal is a <see cref="SocketError"/> rather than an
/// exception: the adoption pass asks twice a second for every adoptable service that does not run, and an HTTP request
/// that fails to connect costs an exception at each of its layers (measured in docs/BENCHMARKS.md, "Footprint").
/// </summary>
public sealed class SocketLoopbackPorts : ILoopbackPorts
{
    /// <summary>
    /// For a loopback address, whether its port refuses connections: the same words as the HTTP client's ("Connection
    /// refused (127.0.0.1:11434)"), or null when something listens, the address is not loopback, or the connect is slow
    /// to tell (the HTTP probe then decides, as before).
    /// </summary>
    public async ValueTask<string?> RefusedAsync(Uri target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!IPAddress.TryParse(target.IdnHost.Trim('[', ']'), out var address) || !IPAddress.IsLoopback(address))
        {
            return null;
        }

        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        var endPoint = new IPEndPoint(address, target.Port);
        using var connect = new ConnectArgs(endPoint);
        SocketError error;
        try
        {
            error = socket.ConnectAsync(connect) ? await connect.Completion.Task.WaitAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false) : connect.SocketError;
        }
        catch (TimeoutException)
        {
            return null;
        }

        return error == SocketError.ConnectionRefused ? $"Connection refused ({endPoint})" : null;
    }

    /// <summary>A connect whose outcome is a <see cref="SocketError"/>, never an exception.</summary>
    private sealed class ConnectArgs : SocketAsyncEventArgs
    {
        public ConnectArgs(EndPoint endPoint) => RemoteEndPoint = endPoint;

        public TaskCompletionSource<SocketError> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override void OnCompleted(SocketAsyncEventArgs e) => Completion.TrySetResult(e.SocketError);
    }
}
