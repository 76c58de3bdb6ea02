using System.Security.Claims;
using CfOrch.Core.Configuration;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Auth;

/// <summary>What one caller may do, and, when not everything, why and how to change it.</summary>
public sealed record Access(bool CanRead, bool CanControl, string? User, string? Reason)
{
    public static Access Full(string? user) => new(true, true, user, null);

    /// <summary>The sign-in this access comes from (null without one): its sign-out takes control away.</summary>
    public string? Session { get; init; }
}

/// <summary>
/// The one authorization policy of cf-orch, for API endpoints and dashboard actions alike:
/// no credentials configured → full control for this machine's own user, read-only for everyone else;
/// a password or API tokens configured → control needs a sign-in or a bearer token (this machine's user too, unless
/// <c>CfOrch:Auth:LoopbackAlwaysControls</c>); reads stay open unless <c>CfOrch:Auth:ReadRequiresLogin</c>;
/// <c>CfOrch:Auth:TrustedNetworks</c> may control without credentials.
/// This machine's own user is a request from loopback, without forwarding headers, sent to a loopback name or one of
/// <c>CfOrch:Auth:AllowedHosts</c>: a reverse proxy on this machine or a DNS-rebinding web page is not.
/// </summary>
public sealed class AccessEvaluator(IOptions<CfOrchOptions> options)
{
    private readonly IReadOnlyList<System.Net.IPNetwork> _trustedNetworks = Networks.ParseAll(options.Value.Auth.TrustedNetworks);

    public AuthOptions Settings => options.Value.Auth;

    public Access Evaluate(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return Evaluate(http.User, RequestSource.Of(http));
    }

    public Access Evaluate(ClaimsPrincipal? user, RequestSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var auth = Settings;
        if (user?.Identity is { IsAuthenticated: true } identity)
        {
            return user.HasClaim(ClusterAgentClaim, "true")
                ? new Access(true, false, identity.Name, "The cluster token (CfOrch:Cluster:Token) lets an agent register its node, nothing else.")
                : Access.Full(identity.Name) with { Session = SignedOutSessions.SessionOf(user) };
        }

        var fromTrustedNetwork = !source.Forwarded && Networks.Contains(_trustedNetworks, source.Remote);
        if (fromTrustedNetwork && source.AddressedByAddressOrAllowedName(auth.AllowedHosts))
        {
            return Access.Full(null);
        }

        var thisMachine = IsThisMachinesUser(source);
        if (!auth.CredentialsConfigured)
        {
            return thisMachine
                ? Access.Full(null)
                : new Access(true, false, null, "Read-only: without a password, cf-orch can only be controlled from the machine it runs on. "
                    + WhyNotThisMachine(source) + "Set CfOrch:Auth:AdminPassword to sign in from the LAN.");
        }

        if (thisMachine && auth.LoopbackAlwaysControls)
        {
            return Access.Full(null);
        }

        return new Access(!auth.ReadRequiresLogin, false, null, "Sign in (or send an API token) to control cf-orch.");
    }

    /// <summary>From loopback, not through a proxy, and addressed to this machine by one of its own names.</summary>
    public bool IsThisMachinesUser(RequestSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.FromLoopback && !source.Forwarded && source.AddressedToThisMachine(Settings.AllowedHosts);
    }

    private string WhyNotThisMachine(RequestSource source) =>
        !source.FromLoopback
            ? Networks.Contains(_trustedNetworks, source.Remote) && !source.Forwarded
                ? $"This machine is in a trusted network, but the request was sent to '{source.Host}', which is neither an IP address nor a name in CfOrch:Auth:AllowedHosts. "
                : ""
        : source.Forwarded ? "This request came through a proxy (it carries forwarding headers), so it does not count as this machine's. "
        : $"This request was sent to '{source.Host}', which is not one of this machine's names (add it to CfOrch:Auth:AllowedHosts if it is). ";

    /// <summary>Checks the admin password against the configured password or hash.</summary>
    public bool PasswordMatches(string? password)
    {
        var auth = Settings;
        if (string.IsNullOrEmpty(password))
        {
            return false;
        }

        if (!string.IsNullOrEmpty(auth.AdminPasswordHash))
        {
            return PasswordHash.Verify(password, auth.AdminPasswordHash);
        }

        return !string.IsNullOrEmpty(auth.AdminPassword) && PasswordHash.SecretEquals(password, auth.AdminPassword);
    }

    /// <summary>The claim of a caller that sent the cluster token: an agent, which may register its node and nothing else.</summary>
    public const string ClusterAgentClaim = "cf-orch.cluster-agent";

    /// <summary>Whether <paramref name="token"/> is <c>CfOrch:Cluster:Token</c> (compared in fixed time).</summary>
    public bool ClusterTokenMatches(string token) =>
        options.Value.Cluster.Token is { Length: > 0 } cluster && PasswordHash.SecretEquals(token, cluster.Trim());

    public bool TokenMatches(string token)
    {
        var matched = false;
        foreach (var configured in Settings.ApiTokens)
        {
            // No early exit: every token is compared, in fixed time.
            matched |= PasswordHash.SecretEquals(token, configured);
        }

        return matched;
    }
}
