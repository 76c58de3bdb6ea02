using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CfOrch.Testing;

/// <summary>
/// Ports nothing listens on, for stand-ins and services a test starts. Shared by the unit and the E2E test projects
/// (linked into both).
/// </summary>
public static class FreePorts
{
    private const int Span = 12_000;
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();
    private static readonly int Low = BelowEphemeral();
    private static int next = Random.Shared.Next(Span);

    /// <summary>
    /// A port nothing listens on right now, never the same twice in one test process. It lies below the system's
    /// ephemeral range: a port from there (what binding port 0 gives) can be taken, between the moment a test is handed
    /// it and the moment its service binds it, by any outgoing connection or by an app a parallel test starts on port 0,
    /// and the service then fails to start. Each test process starts its walk at a random place, so the unit and the E2E
    /// processes, which run at the same time, rarely walk the same ports.
    /// </summary>
    public static int Next()
    {
        if (Low == 0)
        {
            return Ephemeral();
        }

        for (var tries = 0; tries < Span; tries++)
        {
            var port = Low + (Interlocked.Increment(ref next) % Span);
            if (!HandedOut.TryAdd(port, 0))
            {
                continue;
            }

            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // Something of this machine's listens there: the next one.
            }
        }

        return Ephemeral();
    }

    private static int Ephemeral()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            if (HandedOut.TryAdd(port, 0))
            {
                return port;
            }
        }
    }

    /// <summary>The first port of <see cref="Span"/> ports just below the ephemeral range; 0 when there is no room there (or no Linux range to read).</summary>
    private static int BelowEphemeral()
    {
        try
        {
            var first = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
            return first - Span >= 10_000 ? first - Span : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }
}
