using CfOrch.Web.Protocol;
using Microsoft.Net.Http.Headers;

namespace CfOrch.Web.Security;

/// <summary>
/// The media types an API endpoint takes a body in (endpoint metadata); without it, <c>application/json</c>.
/// None of them is one a web page can send to another site without the browser asking first (a CORS preflight,
/// which cf-orch never grants) — except forms, which only the sign-in and sign-out take, with an anti-forgery token.
/// </summary>
public sealed class BodyMediaTypes(params string[] types)
{
    public static readonly BodyMediaTypes Json = new("application/json");

    public static readonly BodyMediaTypes Yaml = new("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml");

    public IReadOnlyList<string> Types { get; } = types;

    /// <summary>
    /// Refuses, with 415, an API write whose body is not in a type its endpoint takes: a <c>text/plain</c> or form post
    /// from another web page never reaches an endpoint.
    /// </summary>
    public static IApplicationBuilder UseBodyMediaTypes(IApplicationBuilder app) => app.Use((http, next) =>
    {
        var request = http.Request;
        if (!Auth.AccessPolicies.IsMachineRequest(http) || HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || !HasBody(request))
        {
            return next(http);
        }

        var accepted = http.GetEndpoint()?.Metadata.GetMetadata<BodyMediaTypes>() ?? Json;
        if (MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            && accepted.Types.Contains(type.MediaType.Value ?? "", StringComparer.OrdinalIgnoreCase))
        {
            return next(http);
        }

        var sent = string.IsNullOrEmpty(request.ContentType) ? "no Content-Type" : $"Content-Type '{request.ContentType}'";
        return ApiJson.WriteErrorAsync(http, StatusCodes.Status415UnsupportedMediaType,
            $"the body was sent with {sent}; {request.Method} {request.Path} takes {string.Join(" or ", accepted.Types)} (curl: -H 'Content-Type: {accepted.Types[0]}')");
    });

    private static bool HasBody(HttpRequest request) =>
        request.ContentLength > 0 || request.ContentLength is null && request.Headers.TransferEncoding.Count > 0;
}
