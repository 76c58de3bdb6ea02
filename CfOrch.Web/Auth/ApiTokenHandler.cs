using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Auth;

/// <summary><c>Authorization: Bearer &lt;token&gt;</c> against <c>CfOrch:Auth:ApiTokens</c> (full control) and <c>CfOrch:Cluster:Token</c> (an agent: registration only).</summary>
public sealed class ApiTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AccessEvaluator access)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var token = header["Bearer ".Length..].Trim();
        if (token.Length > 0 && !access.TokenMatches(token) && access.ClusterTokenMatches(token))
        {
            // An agent: it may register its node, nothing else.
            var agent = new ClaimsIdentity([new Claim(ClaimTypes.Name, "cluster-agent"), new Claim(AccessEvaluator.ClusterAgentClaim, "true")], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(agent), SchemeName)));
        }

        if (token.Length == 0 || !access.TokenMatches(token))
        {
            return Task.FromResult(AuthenticateResult.Fail("the bearer token is not one of CfOrch:Auth:ApiTokens"));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-token")], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }
}
