using System.Net;
using CfOrch.Core.Configuration;

namespace CfOrch.Web.Auth;

/// <summary>
/// Where a request comes from, as far as trust goes: the client's address (the TCP peer's, or the one a trusted proxy
/// forwarded), whether it passed through a proxy (any <c>Forwarded</c> or <c>X-Forwarded-*</c> header), and the
/// <c>Host</c> it was sent to.
/// </summary>
public sealed record RequestSource(IPAddress? Remote, bool Forwarded, string Host)
{
    private static readonly object ForwardedKey = new();

    /// <summary>Reads the source of <paramref name="http"/>.</summary>
    public static RequestSource Of(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var forwarded = http.Items.TryGetValue(ForwardedKey, out var marked) ? marked is true : HasForwardingHeaders(http.Request.Headers);
        return new RequestSource(http.Connection.RemoteIpAddress, forwarded, http.Request.Host.Host);
    }

    /// <summary>
    /// Remembers, before the forwarded-headers middleware consumes them, whether the request carried forwarding
    /// headers: a request that came through a proxy never counts as this machine's own user.
    /// </summary>
    public static IApplicationBuilder UseForwardingMarker(IApplicationBuilder app) => app.Use((http, next) =>
    {
        http.Items[ForwardedKey] = HasForwardingHeaders(http.Request.Headers);
        return next(http);
    });

    /// <summary>The headers proxies add besides <c>Forwarded</c> and <c>X-Forwarded-*</c> (nginx's X-Real-IP, CDNs, HTTP's Via).</summary>
    private static readonly string[] ProxyHeaders = ["Via", "X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "X-Original-For"];

    public static bool HasForwardingHeaders(IHeaderDictionary headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        foreach (var name in headers.Keys)
        {
            if (name.Equals("Forwarded", StringComparison.OrdinalIgnoreCase) || name.StartsWith("X-Forwarded-", StringComparison.OrdinalIgnoreCase)
                || ProxyHeaders.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The TCP peer is this machine (IPv4 or IPv6 loopback).</summary>
    public bool FromLoopback => Remote is not null && IPAddress.IsLoopback(Networks.Normalize(Remote));

    /// <summary>
    /// The request was addressed to this machine by a name only this machine answers to: <c>localhost</c>, a loopback
    /// address, or one of <paramref name="allowedHosts"/>. A DNS-rebinding page sends its own name instead.
    /// </summary>
    public bool AddressedToThisMachine(IEnumerable<string> allowedHosts)
    {
        ArgumentNullException.ThrowIfNull(allowedHosts);
        var host = Host.Trim('[', ']');
        if (host.Length == 0)
        {
            return false;
        }

        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(Networks.Normalize(address)))
        {
            return true;
        }

        return allowedHosts.Any(h => h.Trim('[', ']').Equals(host, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// The request was addressed by an IP address, <c>localhost</c> or one of <paramref name="allowedHosts"/>: not by a
    /// name an attacker may control. A DNS-rebinding page reaches cf-orch under its own name, so a trusted network's
    /// rights go only with such a Host.
    /// </summary>
    public bool AddressedByAddressOrAllowedName(IEnumerable<string> allowedHosts) =>
        IPAddress.TryParse(Host.Trim('[', ']'), out _) || AddressedToThisMachine(allowedHosts);
}
