using System.Collections.Concurrent;
using System.Security.Claims;

namespace CfOrch.Web.Auth;

/// <summary>
/// Sign-ins that were signed out. A sign-in cookie carries a session id; signing out records it here, so that a copy
/// of that cookie is refused from then on and dashboard tabs opened with it lose control at their next action (a
/// Blazor circuit decides its rights once, when the page loads). Kept in memory: open tabs do not outlive cf-orch, and
/// the browser drops the cookie itself on sign-out.
/// </summary>
public sealed class SignedOutSessions(TimeProvider time)
{
    public const string ClaimType = "cf-orch:sid";

    /// <summary>As long as a sign-in cookie can live (sliding expiration renews it on use).</summary>
    public static readonly TimeSpan CookieLifetime = TimeSpan.FromDays(7);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _signedOut = new(StringComparer.Ordinal);

    /// <summary>A new session id for a sign-in.</summary>
    public static Claim NewSessionClaim() => new(ClaimType, Guid.NewGuid().ToString("N"));

    public static string? SessionOf(ClaimsPrincipal? user) => user?.FindFirst(ClaimType)?.Value;

    public void SignOut(string sessionId)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        var now = time.GetUtcNow();
        _signedOut[sessionId] = now;
        foreach (var (id, at) in _signedOut)
        {
            if (now - at > CookieLifetime)
            {
                _signedOut.TryRemove(id, out _);
            }
        }
    }

    public bool IsSignedOut(string? sessionId) => sessionId is not null && _signedOut.ContainsKey(sessionId);
}
