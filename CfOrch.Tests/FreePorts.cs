using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace CfOrch.Testing;

/// <summary>
/// Ports nothing listens on, for stand-ins and services a test starts. Shared by the unit and the E2E test projects
/// (linked into both).
/// </summary>
public static class FreePorts
{
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    /// <summary>
    /// A port nothing listens on right now, never the same twice in one test process: the system may hand the same
    /// ephemeral port to two calls in a row once the first listener is closed, and a test asking for two ports would
    /// then get one port twice.
    /// </summary>
    public static int Next()
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
}
