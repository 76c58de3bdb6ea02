using CfOrch.Web.Protocol;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace CfOrch.Web.Auth;

/// <summary>The two policies: read (open unless ReadRequiresLogin) and control (every mutating endpoint and UI action).</summary>
public static class AccessPolicies
{
    public const string Read = "cf-orch.read";
    public const string Control = "cf-orch.control";

    /// <summary>Control, or an agent with the cluster token: <c>POST /api/nodes</c>.</summary>
    public const string RegisterNode = "cf-orch.register-node";

    /// <summary>
    /// An agent's control endpoints: the cluster token (the coordinator sends it), or — with no token set — a request
    /// from the coordinator's address, not through a proxy; or control rights as the agent's own settings give them
    /// (this machine's user, a trusted network, a sign-in, an API token), as on any cf-orch. README: "Who may control an agent".
    /// </summary>
    public const string AgentControl = "cf-orch.agent-control";
    public const string CookieScheme = CookieAuthenticationDefaults.AuthenticationScheme;
    private const string Selector = "cf-orch";

    public static IServiceCollection AddCfOrchAuth(this IServiceCollection services)
    {
        services.AddSingleton<AccessEvaluator>();
        services.AddSingleton<SignedOutSessions>();
        services.AddHttpContextAccessor();
        services.AddAuthentication(Selector)
            .AddPolicyScheme(Selector, "cookie or bearer token", o => o.ForwardDefaultSelector = context =>
                context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? ApiTokenHandler.SchemeName : CookieScheme)
            .AddCookie(CookieScheme, o =>
            {
                o.Cookie.Name = "cf-orch.auth";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.ExpireTimeSpan = SignedOutSessions.CookieLifetime;
                o.SlidingExpiration = true;
                o.LoginPath = "/login";
                o.Events.OnRedirectToLogin = ctx => Deny(ctx.HttpContext, ctx.RedirectUri, StatusCodes.Status401Unauthorized);
                o.Events.OnRedirectToAccessDenied = ctx => Deny(ctx.HttpContext, ctx.RedirectUri, StatusCodes.Status403Forbidden);
                o.Events.OnValidatePrincipal = ctx =>
                {
                    // A cookie of a session that was signed out (or one from before sessions had ids) is refused.
                    var session = SignedOutSessions.SessionOf(ctx.Principal);
                    if (session is null || ctx.HttpContext.RequestServices.GetRequiredService<SignedOutSessions>().IsSignedOut(session))
                    {
                        ctx.RejectPrincipal();
                    }

                    return Task.CompletedTask;
                };
            })
            .AddScheme<AuthenticationSchemeOptions, ApiTokenHandler>(ApiTokenHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Read, p => p.AddRequirements(new AccessRequirement(control: false)))
            .AddPolicy(Control, p => p.AddRequirements(new AccessRequirement(control: true)))
            .AddPolicy(RegisterNode, p => p.AddRequirements(new AccessRequirement(control: true, clusterAgent: true)))
            .AddPolicy(AgentControl, p => p.AddRequirements(new AccessRequirement(control: true, clusterAgent: true, fromCoordinator: true)));
        services.AddSingleton<IAuthorizationHandler, AccessRequirementHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, ApiAuthorizationResultHandler>();
        return services;
    }

    /// <summary>A request a program makes (<see cref="IsMachinePath"/>, or the agent protocol on an agent): answered with a status, never a page.</summary>
    public static bool IsMachineRequest(HttpContext http, PathString? path = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        return IsMachinePath(path ?? http.Request.Path) || http.Items.ContainsKey(AgentPaths.Marker);
    }

    /// <summary>Paths programs call (the API, metrics, the OpenAPI document): refused with a status, never redirected to /login.</summary>
    public static bool IsMachinePath(PathString path) =>
        // Case-insensitive, as routing is: /API/leases reaches the same endpoint as /api/leases.
        path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase)
        || path.StartsWithSegments("/metrics", StringComparison.OrdinalIgnoreCase)
        || path.StartsWithSegments("/openapi", StringComparison.OrdinalIgnoreCase);

    private static Task Deny(HttpContext context, string redirect, int status)
    {
        if (IsMachineRequest(context))
        {
            context.Response.StatusCode = status;
            return Task.CompletedTask;
        }

        context.Response.Redirect(redirect);
        return Task.CompletedTask;
    }
}

public sealed class AccessRequirement(bool control, bool clusterAgent = false, bool fromCoordinator = false) : IAuthorizationRequirement
{
    public bool Control { get; } = control;

    /// <summary>A holder of the cluster token (an agent registering, a coordinator calling its agent) meets it too.</summary>
    public bool ClusterAgent { get; } = clusterAgent;

    /// <summary>With no cluster token set, a request from this agent's coordinator meets it too.</summary>
    public bool FromCoordinator { get; } = fromCoordinator;
}

/// <summary>Evaluates <see cref="AccessEvaluator"/> for the request's user and remote address.</summary>
public sealed class AccessRequirementHandler(AccessEvaluator evaluator, Cluster.AgentRegistration registration, Microsoft.Extensions.Options.IOptions<Core.Configuration.CfOrchOptions> options) : AuthorizationHandler<AccessRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, AccessRequirement requirement)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(requirement);
        // Without a request (no remote address, no host) nothing counts as this machine's own user.
        var source = context.Resource is HttpContext http ? RequestSource.Of(http) : new RequestSource(null, false, "");
        var access = evaluator.Evaluate(context.User, source);
        var fromCoordinator = requirement.FromCoordinator && string.IsNullOrWhiteSpace(options.Value.Cluster.Token)
            && !source.Forwarded && registration.IsCoordinator(source.Remote);
        if ((requirement.Control ? access.CanControl : access.CanRead) || (requirement.ClusterAgent && context.User.HasClaim(AccessEvaluator.ClusterAgentClaim, "true")) || fromCoordinator)
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }
}

/// <summary>A refused API call answers <c>{"detail": ...}</c> with 401 (no credentials) or 403, and says how to get access.</summary>
public sealed class ApiAuthorizationResultHandler(AccessEvaluator evaluator) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(authorizeResult);
        if (authorizeResult.Succeeded || !AccessPolicies.IsMachineRequest(context))
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }

        var bearerFailed = context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
        var access = evaluator.Evaluate(context);
        var authenticated = context.User.Identity?.IsAuthenticated == true;
        var status = authenticated ? StatusCodes.Status403Forbidden : StatusCodes.Status401Unauthorized;
        var detail = bearerFailed && !authenticated
            ? "the bearer token is not one of CfOrch:Auth:ApiTokens"
            : access.Reason ?? "not allowed";
        if (!authenticated)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
        }

        await ApiJson.Error(status, detail).ExecuteAsync(context);
    }
}
