using System.Net;
using System.Text.RegularExpressions;
using CfOrch.Tests.Engine;
using CfOrch.Tests.Web;
using CfOrch.Web.Security;

namespace CfOrch.Tests.Security;

/// <summary>The sign-in form: an anti-forgery token from the page, and a redirect afterwards to a path of this site only.</summary>
public sealed partial class SignInFormTests
{
    private const string Password = "correct horse battery";
    private const string Lan = "192.168.1.50";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/services", "/services")]
    [InlineData("/logs?service=ollama&gpu=0", "/logs?service=ollama&gpu=0")]
    [InlineData("/\\localhost:9999/evil.html", "/")]
    [InlineData("//evil.example/", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("/\t/evil.example", "/")]
    [InlineData("", "/")]
    public async Task Signing_in_redirects_to_a_local_path_only(string returnUrl, string expected)
    {
        await using var app = new CfOrchAppFactory(new() { ["CfOrch:Auth:AdminPassword"] = Password });
        using var client = app.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
        var (token, cookie) = await FormTokenAsync(client);

        using var response = await PostFormAsync(client, cookie, ("__RequestVerificationToken", token), ("password", Password), ("returnUrl", returnUrl));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(expected, response.Headers.Location?.OriginalString);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("cf-orch.auth=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sign_in_form_posted_without_the_pages_token_signs_nobody_in()
    {
        await using var app = new CfOrchAppFactory(new() { ["CfOrch:Auth:AdminPassword"] = Password });
        using var client = app.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
        var (token, cookie) = await FormTokenAsync(client);

        using var noToken = await PostFormAsync(client, cookie, ("password", Password), ("returnUrl", "/"));
        using var wrongToken = await PostFormAsync(client, cookie, ("__RequestVerificationToken", token[..^4] + "AAAA"), ("password", Password));
        using var noCookie = await PostFormAsync(client, null, ("__RequestVerificationToken", token), ("password", Password));

        foreach (var response in new[] { noToken, wrongToken, noCookie })
        {
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.Equal("/login?error=expired", response.Headers.Location?.OriginalString);
            Assert.False(response.Headers.TryGetValues("Set-Cookie", out var set) && set.Any(c => c.StartsWith("cf-orch.auth=", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task The_sign_out_form_needs_its_token_and_json_sign_out_still_works()
    {
        await using var app = new CfOrchAppFactory(new() { ["CfOrch:Auth:AdminPassword"] = Password });
        using var client = app.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
        var (token, cookie) = await FormTokenAsync(client);
        using var signedIn = await PostFormAsync(client, cookie, ("__RequestVerificationToken", token), ("password", Password));
        var session = signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("cf-orch.auth=", StringComparison.Ordinal)).Split(';')[0];

        using var forged = await PostFormAsync(client, session, "/api/auth/logout", ("nothing", "here"));

        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        using var me = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/auth/me", UriKind.Relative));
        me.Headers.Add("Cookie", session);
        me.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, Lan);
        using var stillIn = await client.SendAsync(me, Ct);
        Assert.Contains("\"can_control\":true", await stillIn.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/services", true)]
    [InlineData("/", true)]
    [InlineData("/\\evil.example", false)]
    [InlineData("//evil.example", false)]
    [InlineData("/ok\\path", false)]
    [InlineData("http://evil.example", false)]
    [InlineData("evil", false)]
    [InlineData("/a\u001b[31m", false)]
    [InlineData(null, false)]
    public void Local_urls_are_paths_of_this_site(string? url, bool local)
    {
        Assert.Equal(local ? url : "/", LocalUrl.OrRoot(url));
    }

    /// <summary>The anti-forgery token of the sign-in page and its cookie, as a browser gets them.</summary>
    private static async Task<(string Token, string Cookie)> FormTokenAsync(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/login", UriKind.Relative));
        request.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, Lan);
        using var page = await client.SendAsync(request, Ct).WaitAsync(EngineApp.Deadline, Ct);
        var html = await page.Content.ReadAsStringAsync(Ct);
        var token = TokenInput().Match(html);
        Assert.True(token.Success, "the sign-in page has no anti-forgery token");
        var cookie = page.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(".AspNetCore.Antiforgery.", StringComparison.Ordinal)).Split(';')[0];
        return (WebUtility.HtmlDecode(token.Groups[1].Value), cookie);
    }

    private static Task<HttpResponseMessage> PostFormAsync(HttpClient client, string? cookie, params (string Name, string Value)[] fields) =>
        PostFormAsync(client, cookie, "/api/auth/login", fields);

    private static async Task<HttpResponseMessage> PostFormAsync(HttpClient client, string? cookie, string path, params (string Name, string Value)[] fields)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(path, UriKind.Relative))
        {
            Content = new FormUrlEncodedContent(fields.Select(f => KeyValuePair.Create(f.Name, f.Value))),
        };
        request.Headers.Add(CfOrchAppFactory.RemoteAddressHeader, Lan);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return await client.SendAsync(request, Ct).WaitAsync(EngineApp.Deadline, Ct);
    }

    [GeneratedRegex("""<input(?=[^>]*name="__RequestVerificationToken")[^>]*value="([^"]+)"[^>]*>""")]
    private static partial Regex TokenInput();
}
