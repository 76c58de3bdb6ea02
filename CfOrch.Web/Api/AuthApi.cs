using System.Security.Claims;
using CfOrch.Web.Auth;
using CfOrch.Web.Protocol;
using CfOrch.Web.Security;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;

namespace CfOrch.Web.Api;

public static class AuthApi
{
    /// <summary>Sign-in and sign-out take JSON (programs) or the dashboard's forms (with an anti-forgery token).</summary>
    private static readonly BodyMediaTypes JsonOrForm = new("application/json", "application/x-www-form-urlencoded");

    /// <summary>Sign-in with the admin password (a form from /login, or JSON), sign-out, and what the caller may do.</summary>
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/auth").WithTags("Auth");

        group.MapPost("/login", async (HttpContext http, AccessEvaluator access, IAntiforgery antiforgery, CancellationToken ct) =>
        {
            string? password;
            string? returnUrl = null;
            var isForm = http.Request.HasFormContentType;
            if (isForm)
            {
                // The sign-in form carries an anti-forgery token: another web page cannot post it for the browser.
                if (!await antiforgery.IsRequestValidAsync(http))
                {
                    return Results.Redirect("/login?error=expired");
                }

                var form = await http.Request.ReadFormAsync(ct);
                password = form["password"];
                returnUrl = form["returnUrl"];
            }
            else
            {
                password = (await ApiBodies.ReadBodyAsync<LoginBody>(http.Request, ct)).Password;
            }

            var local = LocalUrl.OrRoot(returnUrl);
            if (!access.Settings.CredentialsConfigured || string.IsNullOrEmpty(access.Settings.AdminPassword) && string.IsNullOrEmpty(access.Settings.AdminPasswordHash))
            {
                return isForm
                    ? Results.Redirect($"/login?error=nopassword&returnUrl={Uri.EscapeDataString(local)}")
                    : ApiJson.Error(StatusCodes.Status400BadRequest, "no admin password is configured (CfOrch:Auth:AdminPassword); there is nothing to sign in with");
            }

            if (!access.PasswordMatches(password))
            {
                return isForm
                    ? Results.Redirect($"/login?error=wrong&returnUrl={Uri.EscapeDataString(local)}")
                    : ApiJson.Error(StatusCodes.Status401Unauthorized, "wrong password");
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin"), SignedOutSessions.NewSessionClaim()], AccessPolicies.CookieScheme);
            await http.SignInAsync(AccessPolicies.CookieScheme, new ClaimsPrincipal(identity));
            return isForm ? Results.Redirect(local) : Results.Json(new { signed_in = true, user = "admin" }, ApiJson.Options);
        }).AddEndpointFilter(async (context, next) =>
        {
            // Before the password is looked at: a guesser is slowed down whether it guesses right or not.
            var http = context.HttpContext;
            if (http.RequestServices.GetRequiredService<LoginThrottle>().Attempt(http.Connection.RemoteIpAddress) is not { } wait)
            {
                return await next(context);
            }

            var seconds = (int)Math.Ceiling(wait.TotalSeconds);
            http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return http.Request.HasFormContentType
                ? Results.Redirect($"/login?error=toomany&returnUrl={Uri.EscapeDataString(await ReturnUrlAsync(http.Request))}")
                : ApiJson.Error(StatusCodes.Status429TooManyRequests, $"too many sign-in attempts from this address ({LoginThrottle.Limit} a minute); try again in {seconds} s");
        }).DisableAntiforgery().WithMetadata(JsonOrForm);

        group.MapPost("/logout", async (HttpContext http, SignedOutSessions sessions, IAntiforgery antiforgery) =>
        {
            if (http.Request.HasFormContentType && !await antiforgery.IsRequestValidAsync(http))
            {
                return ApiJson.Error(StatusCodes.Status400BadRequest, "the sign-out form has no valid anti-forgery token; reload the page and sign out again");
            }

            // The cookie scheme is authenticated explicitly: a bearer-token request has no sign-in to end.
            var signedIn = await http.AuthenticateAsync(AccessPolicies.CookieScheme);
            if (SignedOutSessions.SessionOf(signedIn.Principal) is { } session)
            {
                sessions.SignOut(session);
            }

            await http.SignOutAsync(AccessPolicies.CookieScheme);
            return http.Request.HasFormContentType ? Results.Redirect("/") : Results.Json(new { signed_out = true }, ApiJson.Options);
        }).DisableAntiforgery().WithMetadata(JsonOrForm);

        group.MapGet("/me", (HttpContext http, AccessEvaluator evaluator) =>
        {
            var access = evaluator.Evaluate(http);
            return Results.Json(new
            {
                user = access.User,
                can_read = access.CanRead,
                can_control = access.CanControl,
                reason = access.Reason,
                password_configured = !string.IsNullOrEmpty(evaluator.Settings.AdminPassword) || !string.IsNullOrEmpty(evaluator.Settings.AdminPasswordHash),
            }, ApiJson.Options);
        });

        return endpoints;
    }

    public sealed class LoginBody
    {
        public string? Password { get; set; }
    }

    /// <summary>The sign-in form's page to go back to, a path of this site; the root when the form cannot be read.</summary>
    private static async Task<string> ReturnUrlAsync(HttpRequest request)
    {
        try
        {
            return LocalUrl.OrRoot((await request.ReadFormAsync(request.HttpContext.RequestAborted))["returnUrl"]);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or BadHttpRequestException)
        {
            return "/";
        }
    }
}
