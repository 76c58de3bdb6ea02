using System.Net;
using System.Runtime.InteropServices;

namespace CfOrch.Core.Health;

/// <summary>Tells, before an HTTP probe, that nothing listens on a loopback port.</summary>
public interface ILoopbackPorts
{
    /// <summary>Why the target's loopback port refuses connections, in the HTTP client's words; null when it may answer (or is not loopback).</summary>
    ValueTask<string?> RefusedAsync(Uri target);
}

/// <summary>
/// One non-blocking connect, answered on the caller's thread: on loopback the kernel refuses (or accepts) within the
/// <c>connect</c> call itself, so a zero-timeout <c>poll</c> already knows. The adoption pass asks twice a second for
/// every adoptable service that does not run; an HTTP request that fails to connect costs an exception at each of its
/// layers, and a .NET socket connect costs a wake-up of the socket engine's thread and a thread-pool hop (measured in
/// docs/BENCHMARKS.md, "Footprint"). Plain system calls cost neither.
/// </summary>
public sealed partial class SocketLoopbackPorts : ILoopbackPorts
{
    /// <summary>
    /// For a loopback address, whether its port refuses connections: the same words as the HTTP client's ("Connection
    /// refused (127.0.0.1:11434)"), or null when something listens, the address is not loopback, or the connect has not
    /// told yet (a full accept queue; the HTTP probe then decides, as before).
    /// </summary>
    public ValueTask<string?> RefusedAsync(Uri target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!IPAddress.TryParse(target.IdnHost.Trim('[', ']'), out var address) || !IPAddress.IsLoopback(address))
        {
            return ValueTask.FromResult<string?>(null);
        }

        var endPoint = new IPEndPoint(address, target.Port);
        return ValueTask.FromResult(Refuses(endPoint) ? $"Connection refused ({endPoint})" : null);
    }

    private const int AfInet = 2;
    private const int AfInet6 = 10;
    private const int SockStreamNonBlockingCloseOnExec = 1 | 0x800 | 0x80000;
    private const int SolSocket = 1;
    private const int SoError = 4;
    private const short PollOut = 0x4;
    private const int ConnectionRefused = 111;

    /// <summary>Whether a connect to <paramref name="endPoint"/> is refused now (false when it connects or has not told yet).</summary>
    private static unsafe bool Refuses(IPEndPoint endPoint)
    {
        var family = endPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? AfInet6 : AfInet;
        var fd = socket(family, SockStreamNonBlockingCloseOnExec, 0);
        if (fd < 0)
        {
            return false;
        }

        try
        {
            // sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes): family in host order, port in network order, address.
            var address = stackalloc byte[28];
            new Span<byte>(address, 28).Clear();
            *(ushort*)address = (ushort)family;
            address[2] = (byte)(endPoint.Port >> 8);
            address[3] = (byte)endPoint.Port;
            var bytes = endPoint.Address.GetAddressBytes();
            bytes.CopyTo(new Span<byte>(address + (family == AfInet6 ? 8 : 4), bytes.Length));
            if (connect(fd, address, family == AfInet6 ? 28u : 16u) == 0)
            {
                return false;
            }

            if (Marshal.GetLastSystemError() == ConnectionRefused)
            {
                return true;
            }

            var poll = new PollFd { Fd = fd, Events = PollOut };
            if (Poll(&poll, 1, 0) != 1)
            {
                return false;
            }

            int error = 0;
            var length = (uint)sizeof(int);
            return getsockopt(fd, SolSocket, SoError, &error, &length) == 0 && error == ConnectionRefused;
        }
        finally
        {
            // Nothing to do about a failed close of a socket that never carried data.
            _ = close(fd);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int connect(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "poll")]
    private static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc")]
    private static unsafe partial int getsockopt(int fd, int level, int name, int* value, uint* length);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
