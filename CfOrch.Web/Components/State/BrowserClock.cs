using System.Globalization;

namespace CfOrch.Web.Components.State;

/// <summary>
/// Shows times as the person looking at the page reads them: in their browser's time zone, not the server's (a
/// container runs in UTC). The browser's offset arrives once the circuit is interactive; until then times are in UTC
/// and say so.
/// </summary>
public sealed class BrowserClock
{
    private TimeSpan? _offset;

    /// <summary>Raised once the browser's offset is known (pages re-render their times).</summary>
    public event Action? Changed;

    /// <summary>Sets the browser's offset from UTC in minutes (JavaScript's <c>-Date.getTimezoneOffset()</c>).</summary>
    public void SetOffsetMinutes(int minutes)
    {
        // Real offsets lie between -12:00 and +14:00.
        var offset = TimeSpan.FromMinutes(Math.Clamp(minutes, -14 * 60, 14 * 60));
        if (_offset != offset)
        {
            _offset = offset;
            Changed?.Invoke();
        }
    }

    /// <summary><paramref name="at"/> in the browser's time zone, formatted; with " UTC" while that zone is unknown.</summary>
    public string Format(DateTimeOffset at, string format) =>
        _offset is { } offset
            ? at.ToOffset(offset).ToString(format, CultureInfo.InvariantCulture)
            : at.ToUniversalTime().ToString(format, CultureInfo.InvariantCulture) + " UTC";

    public string Format(long unixMs, string format) => Format(DateTimeOffset.FromUnixTimeMilliseconds(unixMs), format);
}
