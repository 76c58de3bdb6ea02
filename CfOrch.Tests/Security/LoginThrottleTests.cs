using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CfOrch.Tests.Engine;
using CfOrch.Tests.Web;
using CfOrch.Web.Auth;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Security;

/// <summary>Sign-in attempts are limited per client address, without a timer, in bounded memory.</summary>
public sealed class LoginThrottleTests
{
    private static readonly IPAddress Guesser = IPAddress.Parse("192.168.1.66");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Ten_attempts_a_minute_per_address_and_the_window_starts_with_the_first()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", CultureInfo.InvariantCulture));
        var throttle = new LoginThrottle(time);

        for (var i = 0; i < LoginThrottle.Limit; i++)
        {
            Assert.Null(throttle.Attempt(Guesser));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        // The window began 10 s ago: 50 s to wait; another address is not held back.
        Assert.Equal(TimeSpan.FromSeconds(50), throttle.Attempt(Guesser));
        Assert.Null(throttle.Attempt(IPAddress.Parse("192.168.1.67")));
        time.Advance(TimeSpan.FromSeconds(49));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.Attempt(Guesser));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(throttle.Attempt(Guesser));
    }

    [Fact]
    public void An_ipv6_client_is_counted_by_its_64_network_and_a_mapped_ipv4_one_as_itself()
    {
        var throttle = new LoginThrottle(new FakeTimeProvider());
        for (var i = 0; i < LoginThrottle.Limit; i++)
        {
            // Any address of one /64: the same client.
            Assert.Null(throttle.Attempt(IPAddress.Parse($"2001:db8:1:2::{i + 1:x}")));
        }

        Assert.NotNull(throttle.Attempt(IPAddress.Parse("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        Assert.Null(throttle.Attempt(IPAddress.Parse("2001:db8:1:3::1")));

        for (var i = 0; i < LoginThrottle.Limit; i++)
        {
            Assert.Null(throttle.Attempt(i % 2 == 0 ? Guesser : Guesser.MapToIPv6()));
        }

        Assert.NotNull(throttle.Attempt(Guesser.MapToIPv6()));
    }

    [Fact]
    public void Past_the_bound_on_addresses_ended_windows_are_forgotten_and_new_addresses_share_one_window()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", CultureInfo.InvariantCulture));
        var throttle = new LoginThrottle(time);
        for (var i = 0; i < LoginThrottle.MaxAddresses; i++)
        {
            Assert.Null(throttle.Attempt(Address(i)));
        }

        // Every remembered window still runs: the addresses past the bound share one, and use it up together.
        for (var i = 0; i < LoginThrottle.Limit; i++)
        {
            Assert.Null(throttle.Attempt(Address(LoginThrottle.MaxAddresses + i)));
        }

        Assert.NotNull(throttle.Attempt(Address(LoginThrottle.MaxAddresses + 100)));
        Assert.Null(throttle.Attempt(Address(5)));

        // Once those windows end they are forgotten, and a new address has a window of its own again.
        time.Advance(LoginThrottle.Window);
        Assert.Null(throttle.Attempt(Address(LoginThrottle.MaxAddresses + 200)));
        for (var i = 1; i < LoginThrottle.Limit; i++)
        {
            Assert.Null(throttle.Attempt(Address(LoginThrottle.MaxAddresses + 200)));
        }

        Assert.NotNull(throttle.Attempt(Address(LoginThrottle.MaxAddresses + 200)));
        Assert.Null(throttle.Attempt(Address(LoginThrottle.MaxAddresses + 201)));
    }

    [Fact]
    public async Task The_eleventh_attempt_in_a_minute_is_refused_with_when_to_try_again_as_json_or_back_on_the_sign_in_page()
    {
        await using var app = new CfOrchAppFactory(new() { ["CfOrch:Auth:AdminPassword"] = "correct horse battery" });
        using var client = app.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
        for (var i = 0; i < LoginThrottle.Limit; i++)
        {
            using var wrong = await LoginAsync(client, Guesser, "guess");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        // Refused before the password is looked at: the right one does not get through either.
        using var refused = await LoginAsync(client, Guesser, "correct horse battery");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var seconds = int.Parse(refused.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 1, 60);
        Assert.Equal($"too many sign-in attempts from this address (10 a minute); try again in {seconds} s", (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString());
        Assert.False(refused.Headers.Contains("Set-Cookie"));

        // The sign-in form is sent back to its page, which says why.
        using var form = new HttpRequestMessage(HttpMethod.Post, new Uri("/api/auth/login", UriKind.Relative))
        {
            Content = new FormUrlEncodedContent([KeyValuePair.Create("password", "guess"), KeyValuePair.Create("returnUrl", "/services")]),
        };
        form.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, Guesser.ToString());
        using var formRefused = await client.SendAsync(form, Ct).WaitAsync(EngineApp.Deadline, Ct);
        Assert.Equal(HttpStatusCode.Redirect, formRefused.StatusCode);
        Assert.Equal("/login?error=toomany&returnUrl=%2Fservices", formRefused.Headers.Location?.OriginalString);
        using var page = await client.GetAsync(new Uri("/login?error=toomany", UriKind.Relative), Ct);
        Assert.Contains("Too many sign-in attempts from this address", await page.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // Another machine signs in.
        using var other = await LoginAsync(client, IPAddress.Parse("192.168.1.50"), "correct horse battery");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    private static IPAddress Address(int i) => new([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);

    private static async Task<HttpResponseMessage> LoginAsync(HttpClient client, IPAddress from, string password)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/api/auth/login", UriKind.Relative)) { Content = JsonContent.Create(new { password }) };
        request.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, from.ToString());
        return await client.SendAsync(request, Ct).WaitAsync(EngineApp.Deadline, Ct);
    }
}
