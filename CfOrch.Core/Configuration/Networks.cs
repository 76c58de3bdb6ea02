using System.Net;

namespace CfOrch.Core.Configuration;

/// <summary>IP networks from configuration: a CIDR (<c>192.168.1.0/24</c>, <c>fd00::/8</c>) or a single address.</summary>
public static class Networks
{
    public static bool TryParse(string? text, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (IPNetwork.TryParse(text, out network))
        {
            return true;
        }

        if (IPAddress.TryParse(text, out var address))
        {
            address = Normalize(address);
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return false;
    }

    /// <summary>The networks that parse; configuration validation has already refused the others.</summary>
    public static IReadOnlyList<IPNetwork> ParseAll(IEnumerable<string> texts) =>
        texts.Select(t => TryParse(t, out var n) ? n : (IPNetwork?)null).OfType<IPNetwork>().ToArray();

    public static bool Contains(IReadOnlyList<IPNetwork> networks, IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        address = Normalize(address);
        foreach (var network in networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An IPv4 address mapped into IPv6 (<c>::ffff:10.0.0.1</c>, how a dual-stack socket reports IPv4 peers) as plain IPv4.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
