using Microsoft.Playwright;

namespace CfOrch.E2E;

public static class PageExtensions
{
    public const float Timeout = 15_000;

    /// <summary>Opens a page and waits for the Blazor circuit: before it connects, prerendered buttons do nothing.</summary>
    public static async Task GotoInteractiveAsync(this IPage page, Uri address)
    {
        ArgumentNullException.ThrowIfNull(page);
        await page.GotoAsync(address.ToString(), new PageGotoOptions { Timeout = Timeout });
        await page.Locator("[data-interactive=true]").WaitForAsync(new LocatorWaitForOptions { Timeout = Timeout });
    }

    public static async Task ScreenshotToAsync(this IPage page, string name)
    {
        ArgumentNullException.ThrowIfNull(page);
        Directory.CreateDirectory(BrowserFixture.ScreenshotDir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(BrowserFixture.ScreenshotDir, name), FullPage = true });
    }
}
