using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using CfOrch.Core.Processes;

namespace CfOrch.Web.Hosting;

/// <summary>
/// The addresses cf-orch listens on (<c>Urls</c>, <c>--urls</c>, <c>ASPNETCORE_URLS</c>): checked before start-up, and
/// a failure to listen on them said in one line with what to do.
/// </summary>
public static partial class ListenAddresses
{
    private const string Advice = "choose another address with --urls (for example --urls http://0.0.0.0:7701) or the Urls setting";

    /// <summary>
    /// Why <paramref name="urls"/> (addresses separated by ';') cannot be listened on as written, or null. Kestrel takes
    /// an address it cannot parse as "every address, port 80": a typo must stop start-up, not open the dashboard there.
    /// </summary>
    public static string? Problem(string? urls)
    {
        if (string.IsNullOrWhiteSpace(urls))
        {
            return null;
        }

        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (UnixSocket().IsMatch(url))
            {
                continue;
            }

            var match = Address().Match(url);
            if (!match.Success)
            {
                return $"'{url}' is not an address to listen on: write it as http://HOST:PORT (for example http://0.0.0.0:7700, http://127.0.0.1:7700 or http://[::]:7700)";
            }

            var port = match.Groups["port"];
            if (port.Success && !(int.TryParse(port.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number <= 65535))
            {
                return $"'{url}' is not an address to listen on: its port '{port.Value}' is not a number from 0 to 65535";
            }
        }

        return null;
    }

    /// <summary>The one line (what failed, then what to do) for an exception Kestrel threw while it began to listen; null when it is not about listening.</summary>
    public static (string Problem, string Hint)? Failure(Exception exception, string? urls)
    {
        ArgumentNullException.ThrowIfNull(exception);
        switch (exception)
        {
            case IOException { InnerException: Microsoft.AspNetCore.Connections.AddressInUseException } inUse:
                return (inUse.Message.TrimEnd('.'), InUseHint(inUse.Message));
            case IOException { InnerException: SocketException inner } io:
                return (io.Message.TrimEnd('.'), Hint(inner.SocketErrorCode));
            case SocketException socket:
                return ($"it cannot listen on {urls ?? "its address"}: {socket.Message}", Hint(socket.SocketErrorCode));
            default:
                return null;
        }
    }

    private static string Hint(SocketError error) => error switch
    {
        SocketError.AddressNotAvailable => $"No network interface of this machine has that address: listen on 0.0.0.0 (every address) or on one of this machine's addresses, or {Advice}",
        SocketError.AccessDenied => $"Ports below 1024 may only be used by root: {Advice}",
        _ => $"Check the address, or {Advice}",
    };

    private static string InUseHint(string message)
    {
        var match = InUse().Match(message);
        if (!match.Success || !Uri.TryCreate(match.Groups["url"].Value, UriKind.Absolute, out var uri))
        {
            return $"Check the address, or {Advice}";
        }

        var holders = ProcFs.ListenersOf(uri.Port);
        var who = holders.Count == 0 ? $"Another program listens on port {uri.Port}" : $"Port {uri.Port} is held by {string.Join(", ", holders)}";
        return $"{who} (another cf-orch?): stop it, or {Advice}";
    }

    [GeneratedRegex(@"^https?://(?:\*|\+|\[[0-9A-Fa-f:.%\w]+\]|[A-Za-z0-9._-]+)(?::(?<port>[^/]*))?/?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Address();

    [GeneratedRegex(@"^https?://unix:/\S+$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UnixSocket();

    [GeneratedRegex(@"address (?<url>\S+?):? address already in use", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex InUse();
}
