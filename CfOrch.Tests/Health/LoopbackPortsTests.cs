using System.Net;
using System.Net.Sockets;
using CfOrch.Core.Health;

namespace CfOrch.Tests.Health;

/// <summary>The connect before a probe: a loopback port nothing listens on is refused in the HTTP client's words; anything else goes to HTTP.</summary>
public sealed class LoopbackPortsTests
{
    private readonly SocketLoopbackPorts _ports = new();

    [Fact]
    public async Task A_loopback_port_nothing_listens_on_is_refused_in_the_http_clients_words()
    {
        var port = Testing.FreePorts.Next();

        Assert.Equal($"Connection refused (127.0.0.1:{port})", await _ports.RefusedAsync(new Uri($"http://127.0.0.1:{port}/api/tags")));
        Assert.Equal($"Connection refused ([::1]:{port})", await _ports.RefusedAsync(new Uri($"http://[::1]:{port}/health")));
    }

    [Fact]
    public async Task A_listening_port_and_an_address_that_is_not_loopback_are_left_to_the_http_probe()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        Assert.Null(await _ports.RefusedAsync(new Uri($"http://127.0.0.1:{port}/health")));
        using var listener6 = new TcpListener(IPAddress.IPv6Loopback, 0);
        listener6.Start();
        Assert.Null(await _ports.RefusedAsync(new Uri($"http://[::1]:{((IPEndPoint)listener6.LocalEndpoint).Port}/health")));
        Assert.Null(await _ports.RefusedAsync(new Uri("http://192.0.2.1:11434/api/tags")));
        Assert.Null(await _ports.RefusedAsync(new Uri("http://ollama.lan:11434/api/tags")));
    }
}
