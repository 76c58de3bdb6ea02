using Microsoft.Playwright;

namespace CfOrch.E2E;

public sealed class DashboardTests(BrowserFixture browser, SimulatedAppFixture app) : IClassFixture<SimulatedAppFixture>, IAsyncLifetime
{
    private IBrowserContext _context = null!;
    private IPage _page = null!;

    public async ValueTask InitializeAsync()
    {
        _context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1440, Height = 900 }, ColorScheme = ColorScheme.Light });
        _page = await _context.NewPageAsync();
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();

    [Fact]
    public async Task The_dashboard_shows_a_card_with_a_vram_bar_for_each_simulated_gpu()
    {
        await _page.GotoInteractiveAsync(app.App.BaseAddress);

        var cards = _page.GetByTestId("gpu-card");
        await Assertions.Expect(cards).ToHaveCountAsync(2, new() { Timeout = PageExtensions.Timeout });
        await Assertions.Expect(cards.Nth(0)).ToContainTextAsync("NVIDIA GeForce RTX 4090");
        await Assertions.Expect(cards.Nth(0).GetByTestId("vram-used")).ToHaveTextAsync("1,310 MB of 24,576 MB used (5%)");
        await Assertions.Expect(cards.Nth(1)).ToContainTextAsync("NVIDIA GeForce RTX 3060");
        await Assertions.Expect(cards.Nth(1).GetByRole(AriaRole.Img, new() { Name = "VRAM: 412 of 12,288 MB used" })).ToBeVisibleAsync();
        await Assertions.Expect(_page.GetByTestId("active-profile")).ToContainTextAsync("single-gpu-24gb");
        await Assertions.Expect(_page.GetByTestId("node-name")).ToHaveTextAsync("local");

        await _page.ScreenshotToAsync("dashboard-simulated.png");
    }

    [Fact]
    public async Task Navigation_reaches_every_page_through_the_circuit()
    {
        await _page.GotoInteractiveAsync(app.App.BaseAddress);

        await _page.GetByRole(AriaRole.Link, new() { Name = "Services", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Heading, new() { Name = "Service instances" })).ToBeVisibleAsync();
        await Assertions.Expect(_page.GetByTestId("services-table")).ToContainTextAsync("ollama");

        await _page.GetByRole(AriaRole.Link, new() { Name = "Leases", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Heading, new() { Name = "Leases" })).ToBeVisibleAsync();

        await _page.GetByRole(AriaRole.Link, new() { Name = "History", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Heading, new() { Name = "History" })).ToBeVisibleAsync();

        await _page.GetByRole(AriaRole.Link, new() { Name = "Profiles", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByTestId("active-profile-name")).ToHaveTextAsync("single-gpu-24gb");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Open single-gpu-8gb", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByTestId("editing-name")).ToHaveTextAsync("single-gpu-8gb");
        await Assertions.Expect(_page.GetByTestId("yaml-input")).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("name: single-gpu-8gb"));

        await _page.GetByRole(AriaRole.Link, new() { Name = "Dashboard", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByTestId("gpu-card")).ToHaveCountAsync(2);
    }

    [Fact]
    public async Task The_theme_toggle_switches_to_dark_and_remembers_it()
    {
        await _page.GotoInteractiveAsync(app.App.BaseAddress);

        await _page.GetByRole(AriaRole.Button, new() { Name = "Toggle dark theme" }).ClickAsync();

        await Assertions.Expect(_page.GetByRole(AriaRole.Button, new() { Name = "Toggle dark theme" })).ToBeVisibleAsync();
        var saved = await _page.WaitForFunctionAsync("() => window.localStorage.getItem('cf-orch.theme') === 'dark'", null, new() { Timeout = PageExtensions.Timeout });
        Assert.NotNull(saved);
        await _page.ReloadAsync();
        await _page.Locator("[data-interactive=true]").WaitForAsync(new() { Timeout = PageExtensions.Timeout });
        await UntilDarkAsync();
        await _page.ScreenshotToAsync("dashboard-dark.png");

        // The other pages in the dark theme: the filter's placeholder is drawn in the theme's secondary text colour at
        // full opacity (MudBlazor's own rule dims it to 42 %, unreadable on the dark background).
        await _page.GotoInteractiveAsync(new Uri(app.App.BaseAddress, "services"));
        await UntilDarkAsync();
        var filter = _page.Locator("input[placeholder]").First;
        Assert.Equal("1", await filter.EvaluateAsync<string>("e => getComputedStyle(e, '::placeholder').opacity"));
        Assert.Equal(
            await _page.EvaluateAsync<string>("() => { const s = document.createElement('span'); s.className = 'mud-text-secondary'; document.body.append(s); const c = getComputedStyle(s).color; s.remove(); return c; }"),
            await filter.EvaluateAsync<string>("e => getComputedStyle(e, '::placeholder').color"));
        await _page.ScreenshotToAsync("services-dark.png");
        await _page.GotoInteractiveAsync(new Uri(app.App.BaseAddress, "history"));
        await _page.ScreenshotToAsync("history-dark.png");
    }

    /// <summary>
    /// Waits until the page is drawn in the dark theme (the page's background, rgb(245, 247, 251) in the light one): the
    /// saved choice is read once the page is interactive, and the first render after that applies it, so a page can be
    /// interactive and still light for a moment. (The main content's own background is transparent in both themes: the
    /// body's is the one that changes.)
    /// </summary>
    private async Task UntilDarkAsync() =>
        Assert.NotNull(await _page.WaitForFunctionAsync(
            "() => getComputedStyle(document.body).backgroundColor === 'rgb(17, 24, 39)'",
            null,
            new() { Timeout = PageExtensions.Timeout }));
}
