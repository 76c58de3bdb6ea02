using CfOrch.Core.Configuration;
using CfOrch.Web.Protocol;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Security;

/// <summary>
/// Refuses, with 403, every write a browser sends from another web page: a POST, PUT, PATCH or DELETE (and any request
/// to the dashboard's live connection, <c>/_blazor</c>) whose <c>Origin</c> is not this cf-orch's own origin nor one of
/// <c>CfOrch:Auth:AllowedOrigins</c>, or whose <c>Sec-Fetch-Site</c> says it came from another site (<c>cross-site</c>)
/// or another port or subdomain of this one (<c>same-site</c>). Programs (the Python client, curl) send neither header
/// and pass.
/// </summary>
public sealed class CrossOriginGuard(RequestDelegate next, IOptions<CfOrchOptions> options)
{
    private readonly HashSet<string> _allowed = options.Value.Auth.AllowedOrigins
        .Select(o => Origins.TryNormalize(o, out var normalized) ? normalized : null)
        .OfType<string>()
        .ToHashSet(StringComparer.Ordinal);

    public Task InvokeAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var refusal = Refusal(http.Request);
        return refusal is null ? next(http) : ApiJson.WriteErrorAsync(http, StatusCodes.Status403Forbidden, refusal);
    }

    /// <summary>Why the request is refused, or null when it may go on.</summary>
    public string? Refusal(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!IsGuarded(request))
        {
            return null;
        }

        var own = Origins.Of(request.Scheme, request.Host.Host, request.Host.Port);
        var originHeader = request.Headers.Origin.ToString();
        var listed = false;
        if (originHeader.Length > 0)
        {
            if (!Origins.TryNormalize(originHeader, out var origin))
            {
                return $"refused: this request comes from a web page whose origin is '{originHeader}' (a sandboxed page or a file); web pages may not change cf-orch, only its own dashboard";
            }

            listed = _allowed.Contains(origin);
            if (origin != own && !listed)
            {
                return $"refused: this request comes from the web page {originHeader}, not from cf-orch's own dashboard ({Display(own)}); other web pages may not change cf-orch (list trusted ones in CfOrch:Auth:AllowedOrigins)";
            }
        }

        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (!listed && (site.Equals("cross-site", StringComparison.OrdinalIgnoreCase) || site.Equals("same-site", StringComparison.OrdinalIgnoreCase)))
        {
            return $"refused: the browser says this request comes from another web page ({site}); other web pages may not change cf-orch (list trusted ones in CfOrch:Auth:AllowedOrigins)";
        }

        return null;
    }

    private static bool IsGuarded(HttpRequest request) =>
        !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method) || HttpMethods.IsTrace(request.Method))
        || request.Path.StartsWithSegments("/_blazor", StringComparison.OrdinalIgnoreCase);

    private static string Display(string origin) =>
        origin.EndsWith(":80", StringComparison.Ordinal) && origin.StartsWith("http:", StringComparison.Ordinal) ? origin[..^3]
        : origin.EndsWith(":443", StringComparison.Ordinal) && origin.StartsWith("https:", StringComparison.Ordinal) ? origin[..^4]
        : origin;
}
