using Microsoft.Playwright;

[assembly: AssemblyFixture(typeof(CfOrch.E2E.BrowserFixture))]

namespace CfOrch.E2E;

/// <summary>One headless Debian Chromium for the whole run (Playwright cannot download its own browser here).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where screenshots go: CFORCH_SCREENSHOTS, else artifacts/screenshots in the repository.</summary>
    public static string ScreenshotDir =>
        Environment.GetEnvironmentVariable("CFORCH_SCREENSHOTS") is { Length: > 0 } dir
            ? dir
            : Path.Combine(AppProcess.RepositoryRoot, "artifacts", "screenshots");

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"{ChromiumPath} is missing: install Debian's chromium package (./test.sh does).");
        }

        _playwright = await Playwright.CreateAsync();
        Browser = await LaunchAsync();

        // Playwright's 5 s default is too short on a loaded machine: every expectation waits up to PageExtensions.Timeout.
        Assertions.SetDefaultExpectTimeout(PageExtensions.Timeout);
    }

    /// <summary>Another Chromium with extra command-line switches (a test that needs its own, such as host resolver rules).</summary>
    public Task<IBrowser> LaunchAsync(params string[] extraArgs) => _playwright!.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = ChromiumPath,
        Headless = true,
        Args =
        [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic", .. extraArgs,
        ],
    });

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }
}
