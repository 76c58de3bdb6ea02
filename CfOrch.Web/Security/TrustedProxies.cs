using CfOrch.Core.Configuration;
using Microsoft.AspNetCore.HttpOverrides;

namespace CfOrch.Web.Security;

/// <summary>
/// Behind a reverse proxy (<c>CfOrch:Auth:TrustedProxies</c>): the client's address, scheme and host come from the
/// proxy's <c>X-Forwarded-For</c>, <c>-Proto</c> and <c>-Host</c> — from those proxies only, never from anyone else.
/// Such a request still needs credentials to control cf-orch (see <see cref="Auth.AccessEvaluator"/>).
/// </summary>
public static class TrustedProxies
{
    public static void Configure(ForwardedHeadersOptions forwarded, AuthOptions auth)
    {
        ArgumentNullException.ThrowIfNull(forwarded);
        ArgumentNullException.ThrowIfNull(auth);
        forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;

        // The defaults trust loopback: here only the configured proxies are trusted.
        forwarded.KnownProxies.Clear();
        forwarded.KnownIPNetworks.Clear();
        foreach (var network in Networks.ParseAll(auth.TrustedProxies))
        {
            forwarded.KnownIPNetworks.Add(network);
        }

        forwarded.ForwardLimit = 1;
    }
}
