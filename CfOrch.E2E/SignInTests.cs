using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>Signing in and out in Chromium, through the forms and their anti-forgery tokens.</summary>
public sealed class SignInTests(BrowserFixture browser) : IAsyncLifetime
{
    private const string Password = "correct horse battery";

    private AppProcess _app = null!;

    public async ValueTask InitializeAsync()
    {
        var environment = AppProcess.SimulatedGpus();
        environment["CfOrch__Auth__AdminPassword"] = Password;
        _app = await AppProcess.StartAsync(environment, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Signing_in_returns_to_the_page_and_signing_out_makes_the_dashboard_read_only()
    {
        await using var context = await browser.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoInteractiveAsync(new Uri(_app.BaseAddress, "services"));
        await Assertions.Expect(page.GetByTestId("read-only")).ToBeVisibleAsync(new() { Timeout = PageExtensions.Timeout });

        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("[data-interactive=true]").WaitForAsync(new() { Timeout = PageExtensions.Timeout });
        await page.GetByLabel("Admin password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).Last.ClickAsync();

        // Back on the page it came from: the address is enough (the next line waits for the page to be interactive); the
        // browser's load event, which also waits for every style sheet and script, took over 15 s once on a busy CI run.
        await page.WaitForURLAsync(new Uri(_app.BaseAddress, "services").ToString(), new() { Timeout = PageExtensions.Timeout, WaitUntil = WaitUntilState.Commit });
        await page.Locator("[data-interactive=true]").WaitForAsync(new() { Timeout = PageExtensions.Timeout });
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync(new() { Timeout = PageExtensions.Timeout });
        await Assertions.Expect(page.GetByTestId("read-only")).ToHaveCountAsync(0);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.Locator("[data-interactive=true]").WaitForAsync(new() { Timeout = PageExtensions.Timeout });
        await Assertions.Expect(page.GetByTestId("read-only")).ToBeVisibleAsync(new() { Timeout = PageExtensions.Timeout });
    }
}
