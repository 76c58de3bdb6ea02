using CfOrch.Web.Protocol;
using Microsoft.AspNetCore.Diagnostics;

namespace CfOrch.Web.Api;

/// <summary>An API answer that has a status but no body yet (no route for the method, a bare 404 or 400) gets a JSON one.</summary>
public static class ApiStatusPages
{
    public static Task WriteAsync(StatusCodeContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var http = context.HttpContext;
        var request = http.Request;
        var status = http.Response.StatusCode;
        var detail = status switch
        {
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {request.Path}"
                + (http.Response.Headers.Allow.ToString() is { Length: > 0 } allow ? $"; it takes {allow.Replace(", ", " or ", StringComparison.Ordinal)}" : ""),
            StatusCodes.Status404NotFound => $"nothing at {request.Method} {request.Path}; GET /openapi/v1.json lists the API",
            StatusCodes.Status400BadRequest => $"{request.Method} {request.Path}: the request is malformed",
            _ => $"{request.Method} {request.Path} answered {status}",
        };
        return ApiJson.WriteErrorAsync(http, status, detail);
    }
}
