using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.WebUtilities;

namespace CfOrch.Web.Protocol;

/// <summary>
/// cf-orch's JSON: snake_case, enums as snake_case strings, errors as <c>{"detail": "..."}</c> — what the API answers,
/// what the request checks and authorization refuse with, and what the agent client reads from other nodes.
/// </summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DictionaryKeyPolicy = null;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.MaxDepth = 32;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));

        // Answers are JSON for programs, never inlined into HTML: quotes in messages stay readable.
        options.Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        return options;
    }

    public const string ProblemContentType = "application/problem+json";

    /// <summary>An error answer: <c>application/problem+json</c> with <c>detail</c> (what cf-orch's clients read), status and title.</summary>
    public static IResult Error(int status, string detail) => Results.Json(ErrorBody.Of(status, detail), Options, ProblemContentType, status);

    /// <summary>Writes an error answer straight to the response (middleware, exception handlers).</summary>
    public static Task WriteErrorAsync(HttpContext http, int status, string detail, object? extra = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        http.Response.StatusCode = status;
        http.Response.ContentType = ProblemContentType;
        return extra is null
            ? http.Response.WriteAsJsonAsync(ErrorBody.Of(status, detail), Options, ProblemContentType, http.RequestAborted)
            : http.Response.WriteAsJsonAsync(extra, Options, ProblemContentType, http.RequestAborted);
    }

    /// <summary>An RFC 9457 problem: cf-orch's <c>detail</c> plus the status and its title.</summary>
    public sealed record ErrorBody(string Title, int Status, string Detail)
    {
        public static ErrorBody Of(int status, string detail) =>
            new(ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Error", status, detail);
    }
}
