using System.Net;
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
/// no credentials configured → full control from this machine (loopback), read-only from the LAN;
/// a password or API tokens configured → control needs a sign-in or a bearer token (loopback too, unless
/// <c>CfOrch:Auth:LoopbackAlwaysControls</c>); reads stay open unless <c>CfOrch:Auth:ReadRequiresLogin</c>.
/// </summary>
public sealed class AccessEvaluator(IOptions<CfOrchOptions> options)
{
    public AuthOptions Settings => options.Value.Auth;

    public Access Evaluate(ClaimsPrincipal? user, IPAddress? remote)
    {
        var auth = Settings;
        if (user?.Identity is { IsAuthenticated: true } identity)
        {
            return Access.Full(identity.Name) with { Session = SignedOutSessions.SessionOf(user) };
        }

        var loopback = IsLoopback(remote);
        if (!auth.CredentialsConfigured)
        {
            return loopback
                ? Access.Full(null)
                : new Access(true, false, null,
                    "Read-only: without a password, cf-orch can only be controlled from the machine it runs on. Set CfOrch:Auth:AdminPassword to sign in from the LAN.");
        }

        if (loopback && auth.LoopbackAlwaysControls)
        {
            return Access.Full(null);
        }

        var canRead = !auth.ReadRequiresLogin || (loopback && auth.LoopbackAlwaysControls);
        return new Access(canRead, false, null, "Sign in (or send an API token) to control cf-orch.");
    }

    public static bool IsLoopback(IPAddress? remote)
    {
        if (remote is null)
        {
            return false;
        }

        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        return IPAddress.IsLoopback(remote);
    }

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
