using Microsoft.Playwright;

namespace CfOrch.E2E;

public static class PageExtensions
{
    public const float Timeout = 15_000;

    /// <summary>
    /// Opens a page and waits for the Blazor circuit (before it connects, prerendered buttons do nothing), and for the
    /// focus that <c>FocusOnNavigate</c> puts on the page's heading: it arrives a moment after the first interactive
    /// render, and on a busy machine it would otherwise take the focus from a field the test has just clicked into.
    /// </summary>
    public static async Task GotoInteractiveAsync(this IPage page, Uri address)
    {
        ArgumentNullException.ThrowIfNull(page);
        await page.GotoAsync(address.ToString(), new PageGotoOptions { Timeout = Timeout });
        await page.Locator("[data-interactive=true]").WaitForAsync(new LocatorWaitForOptions { Timeout = Timeout });
        await page.WaitForFunctionAsync("() => { const h = document.querySelector('h1'); return !h || document.activeElement === h; }", null, new PageWaitForFunctionOptions { Timeout = Timeout });
    }

    public static async Task ScreenshotToAsync(this IPage page, string name)
    {
        ArgumentNullException.ThrowIfNull(page);
        Directory.CreateDirectory(BrowserFixture.ScreenshotDir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(BrowserFixture.ScreenshotDir, name), FullPage = true });
    }
}
