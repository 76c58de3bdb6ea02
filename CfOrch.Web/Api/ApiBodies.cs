using System.Text;
using System.Text.Json;
using CfOrch.Web.Protocol;
using CfOrch.Web.Security;

namespace CfOrch.Web.Api;

/// <summary>Reads a request's body, bounded, checked (<see cref="JsonBodyCheck"/>) and bound with <see cref="ApiJson.Options"/>.</summary>
public static class ApiBodies
{
    public const int MaxBodyBytes = 64 * 1024;

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

        JsonBodyCheck.Check(body);

        try
        {
            return JsonSerializer.Deserialize<T>(body, ApiJson.Options)
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

        // A body of a declared length (what every client sends for a small JSON body) is read straight into an array of
        // that size: one allocation per request, no copy. A longer body than declared is Kestrel's error, not ours.
        if (request.ContentLength is { } declared and >= 0 && declared <= limit)
        {
            var exact = new byte[declared];
            var filled = 0;
            while (filled < exact.Length)
            {
                var n = await request.Body.ReadAsync(exact.AsMemory(filled), cancellationToken);
                if (n == 0)
                {
                    break;
                }

                filled += n;
            }

            return filled == exact.Length ? exact : exact[..filled];
        }

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
}
