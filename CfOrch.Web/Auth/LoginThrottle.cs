using System.Net;

namespace CfOrch.Web.Auth;

/// <summary>
/// Sign-in attempts per client address (an IPv6 one by its /64): at most <see cref="Limit"/> in a <see cref="Window"/> that starts with the
/// address's first attempt. Nothing runs on a timer (ASP.NET's partitioned rate limiter ticks ten times a second all
/// day, for an endpoint used a few times a month): a window is looked at, and renewed, when an attempt arrives. At most
/// <see cref="MaxAddresses"/> addresses are remembered: when that many hold a window, the ones that ended are forgotten,
/// and if none has, a new address shares one window with every other address past the bound. A stranger with many
/// addresses can slow sign-in down; it cannot grow the server's memory.
/// </summary>
public sealed class LoginThrottle(TimeProvider time)
{
    public const int Limit = 10;
    public const int MaxAddresses = 10_000;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, Attempts> _attempts = [];
    private readonly Attempts _overflow = new();

    /// <summary>Counts an attempt from <paramref name="address"/>; null when it may go on, or how long until it may try again.</summary>
    public TimeSpan? Attempt(IPAddress? address)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            var attempts = Of(Source(address), now);
            if (now - attempts.Since >= Window)
            {
                attempts.Since = now;
                attempts.Count = 0;
            }

            if (attempts.Count >= Limit)
            {
                return attempts.Since + Window - now;
            }

            attempts.Count++;
            return null;
        }
    }

    /// <summary>
    /// Whose attempt it is: the address, an IPv4 one as itself whether or not it came mapped into IPv6, and an IPv6 one
    /// by its /64 network (one machine may use any address of its /64, and change it at will).
    /// </summary>
    internal static IPAddress Source(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return address;
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    private Attempts Of(IPAddress address, DateTimeOffset now)
    {
        if (_attempts.TryGetValue(address, out var known))
        {
            return known;
        }

        if (_attempts.Count >= MaxAddresses)
        {
            foreach (var (ended, _) in _attempts.Where(a => now - a.Value.Since >= Window).ToList())
            {
                _attempts.Remove(ended);
            }

            if (_attempts.Count >= MaxAddresses)
            {
                return _overflow;
            }
        }

        var attempts = new Attempts { Since = now };
        _attempts[address] = attempts;
        return attempts;
    }

    private sealed class Attempts
    {
        public DateTimeOffset Since { get; set; }

        public int Count { get; set; }
    }
}
