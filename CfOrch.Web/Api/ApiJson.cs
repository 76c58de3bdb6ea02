using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.WebUtilities;

namespace CfOrch.Web.Api;

/// <summary>cf-orch's JSON: snake_case, enums as snake_case strings, errors as <c>{"detail": "..."}</c>.</summary>
public static class ApiJson
{
    public const int MaxBodyBytes = 64 * 1024;

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

    /// <summary>
    /// Reads a JSON body into <typeparamref name="T"/>: a missing, oversized, malformed or mistyped body becomes an
    /// <see cref="ApiException"/> (422, or 413 for size) whose detail says what and where — never a 500.
    /// </summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken, bool allowEmpty = false)
        where T : class, new()
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ContentLength > MaxBodyBytes)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, $"the body is larger than {MaxBodyBytes / 1024} KiB");
        }

        var body = await ReadLimitedAsync(request, MaxBodyBytes, cancellationToken);
        if (body.Length == 0 || body.AsSpan().Trim((byte)' ').Length == 0)
        {
            return allowEmpty ? new T() : throw new ApiException(StatusCodes.Status422UnprocessableEntity, "the body is empty; a JSON object is expected");
        }

        Security.JsonBodyCheck.Check(body);

        try
        {
            return JsonSerializer.Deserialize<T>(body, Options)
                ?? throw new ApiException(StatusCodes.Status422UnprocessableEntity, "the body is null; a JSON object is expected");
        }
        catch (JsonException ex)
        {
            var where = ex.Path is { Length: > 1 } path ? $" at {path.TrimStart('$', '.')}" : "";
            var position = ex.LineNumber is { } line ? $" (line {line + 1}, position {ex.BytePositionInLine + 1})" : "";
            throw new ApiException(StatusCodes.Status422UnprocessableEntity, $"the body is not valid{where}{position}: {Simplify(ex.Message)}");
        }
    }

    /// <summary>Reads at most <paramref name="limit"/> bytes; more is a 413.</summary>
    public static async Task<byte[]> ReadLimitedAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                throw new ApiException(StatusCodes.Status413PayloadTooLarge, $"the body is larger than {limit / 1024} KiB");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    public static async Task<string> ReadTextAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        var bytes = await ReadLimitedAsync(request, limit, cancellationToken);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new ApiException(StatusCodes.Status422UnprocessableEntity, "the body is not valid UTF-8 text");
        }
    }

    private static string Simplify(string message)
    {
        // "The JSON value could not be converted to System.Int64. Path: $.mb | LineNumber: 0 | BytePositionInLine: 12."
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var text = cut > 0 ? message[..cut] : message;
        text = text.Replace("System.Nullable`1[", "", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal);
        return text.Replace("System.Int64", "a whole number", StringComparison.Ordinal)
            .Replace("System.Int32", "a whole number", StringComparison.Ordinal)
            .Replace("System.Double", "a number", StringComparison.Ordinal)
            .Replace("System.String", "a string", StringComparison.Ordinal)
            .Replace("System.Boolean", "true or false", StringComparison.Ordinal)
            .TrimEnd('.');
    }

    /// <summary>An RFC 9457 problem: cf-orch's <c>detail</c> plus the status and its title.</summary>
    public sealed record ErrorBody(string Title, int Status, string Detail)
    {
        public static ErrorBody Of(int status, string detail) =>
            new(ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Error", status, detail);
    }
}

/// <summary>A request the API refuses; the status and the detail go to the client as <c>{"detail": ...}</c>.</summary>
public sealed class ApiException : Exception
{
    public ApiException(int status, string detail)
        : base(detail)
    {
        Status = status;
    }

    public ApiException()
    {
    }

    public ApiException(string message)
        : base(message)
    {
    }

    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Status { get; } = StatusCodes.Status422UnprocessableEntity;
}
