using CfOrch.Web.Protocol;
using Microsoft.AspNetCore.Routing.Template;

namespace CfOrch.Web.Api;

/// <summary>
/// What answers an API request no endpoint took: 405 with <c>Allow</c> when the path exists for other methods
/// (<c>GET /api/services/x/stop</c>), else 404 — both as JSON problems.
/// </summary>
public sealed class ApiFallback(EndpointDataSource endpoints)
{
    private readonly Lazy<IReadOnlyList<(TemplateMatcher Matcher, IReadOnlyList<string> Methods)>> _routes = new(() =>
        endpoints.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } raw && raw.StartsWith("/api/", StringComparison.Ordinal) && !raw.Contains("{**", StringComparison.Ordinal))
            .Select(e => (new TemplateMatcher(TemplateParser.Parse(e.RoutePattern.RawText!), []),
                (IReadOnlyList<string>)(e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])))
            .ToArray());

    public IResult Answer(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var request = http.Request;
        var allowed = _routes.Value
            .Where(r => r.Matcher.TryMatch(request.Path, []))
            .SelectMany(r => r.Methods)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (allowed.Length == 0)
        {
            return ApiJson.Error(StatusCodes.Status404NotFound, $"no endpoint {request.Method} {request.Path}; GET /openapi/v1.json lists them");
        }

        http.Response.Headers.Allow = string.Join(", ", allowed);
        return ApiJson.Error(StatusCodes.Status405MethodNotAllowed, $"{request.Method} is not allowed on {request.Path}; it takes {string.Join(" or ", allowed)}");
    }
}
