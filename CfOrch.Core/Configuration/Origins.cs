using System.Diagnostics.CodeAnalysis;

namespace CfOrch.Core.Configuration;

/// <summary>Web origins (<c>scheme://host:port</c>) compared the way browsers do: scheme and host case-insensitive, default ports implied.</summary>
public static class Origins
{
    /// <summary>
    /// Normalizes <paramref name="text"/> to <c>scheme://host:port</c> in lower case (ports explicit). Fails for anything
    /// but an http or https origin without path, query or user info.
    /// </summary>
    public static bool TryNormalize(string? text, [NotNullWhen(true)] out string? origin)
    {
        origin = null;
        if (string.IsNullOrWhiteSpace(text) || !Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri)
            || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0
            || uri.AbsolutePath != "/")
        {
            return false;
        }

        origin = Of(uri.Scheme, uri.IdnHost, uri.Port);
        return true;
    }

    /// <summary>The origin of a request: its scheme, host and port (the scheme's default port when none).</summary>
    public static string Of(string scheme, string host, int? port)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        ArgumentNullException.ThrowIfNull(host);
        scheme = scheme.ToLowerInvariant();
        var p = port ?? (scheme == "https" ? 443 : 80);
        if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('['))
        {
            host = $"[{host}]";
        }

        return $"{scheme}://{host.ToLowerInvariant()}:{p}";
    }
}
