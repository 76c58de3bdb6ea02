using System.Net.Http.Json;
using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>The dashboard against the real app, a stand-in Ollama on loopback and real child processes.</summary>
public sealed class LiveDashboardTests(BrowserFixture browser, LiveAppFixture app) : IClassFixture<LiveAppFixture>, IAsyncLifetime
{
    private IBrowserContext _context = null!;
    private IPage _page = null!;

    private static LocatorAssertionsToContainTextOptions Slow => new() { Timeout = 20_000 };

    public async ValueTask InitializeAsync()
    {
        _context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 1000 }, ColorScheme = ColorScheme.Light });
        _page = await _context.NewPageAsync();
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();

    private Uri Url(string path) => new(app.App.BaseAddress, path);

    [Fact]
    public async Task The_adopted_ollama_row_shows_running_and_its_url()
    {
        await _page.GotoInteractiveAsync(Url("services"));

        var row = _page.GetByRole(AriaRole.Row).Filter(new() { Has = _page.Locator("[data-service=ollama]") });
        await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running");
        await Assertions.Expect(row.GetByTestId("adopted")).ToContainTextAsync("running outside cf-orch");
        await Assertions.Expect(row.GetByTestId("service-url")).ToHaveTextAsync($"http://127.0.0.1:{app.Ollama.Port}");
        await Assertions.Expect(row.GetByTestId("stop")).ToBeDisabledAsync();
        Assert.Contains("runs outside cf-orch", await row.GetByTestId("stop-wrapper").GetAttributeAsync("title"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_a_phone_every_page_fits_the_screen_width()
    {
        await using var phone = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 390, Height = 844 }, IsMobile = true, HasTouch = true });
        var page = await phone.NewPageAsync();
        foreach (var path in new[] { "", "services", "leases", "history", "profiles" })
        {
            await page.GotoInteractiveAsync(Url(path));
            // A mobile browser widens its layout viewport to fit content wider than the device: compare with 390.
            var overflow = await page.EvaluateAsync<int>("() => Math.max(document.documentElement.scrollWidth, window.innerWidth) - 390");

            Assert.True(overflow <= 0, $"/{path} is {overflow} px wider than a 390 px phone screen");
            var toggle = await page.GetByRole(AriaRole.Button, new() { Name = "Toggle dark theme" }).BoundingBoxAsync();
            Assert.True(toggle is not null && toggle.X + toggle.Width <= 390, $"/{path}: the app bar pushes the theme toggle off the screen");
        }

        await page.GotoInteractiveAsync(Url("services"));
        await Assertions.Expect(page.Locator("[data-service=ollama]")).ToBeVisibleAsync();

        // A service that is not running is one line: its name, state and Start.
        var whisper = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.Locator("[data-service=whisper]") });
        await Assertions.Expect(whisper.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "not running");
        await Assertions.Expect(whisper.Locator("[data-state]")).ToBeVisibleAsync();
        var line = await whisper.BoundingBoxAsync();
        var start = await whisper.GetByTestId("start").BoundingBoxAsync();
        Assert.True(line is not null && start is not null && line.Height <= start.Height + 16, $"a stopped service's row is {line?.Height} px tall on a phone, more than one line");
        await page.ScreenshotToAsync("services-phone.png");
    }

    [Fact]
    public async Task The_adopted_ollamas_lease_is_a_segment_of_its_gpus_vram_bar()
    {
        await _page.GotoInteractiveAsync(app.App.BaseAddress);

        var card = _page.GetByTestId("gpu-card").Filter(new() { HasText = "NVIDIA GeForce RTX 4090" });
        var segment = card.Locator("[data-kind=Lease]").Filter(new() { Has = _page.Locator(".cf-vram-measured") });
        await Assertions.Expect(segment).ToHaveCountAsync(1);
        Assert.StartsWith("ollama (adopted, running outside cf-orch): budget 8,192 MB, measured 3,100 MB", await segment.GetAttributeAsync("title"), StringComparison.Ordinal);
        Assert.Equal("8192", await segment.GetAttributeAsync("data-mb"));
        await Assertions.Expect(_page.GetByTestId("service-strip").Locator("[data-service=ollama] [data-state]")).ToHaveAttributeAsync("data-state", "running");
        await _page.ScreenshotToAsync("dashboard.png");
    }

    [Fact]
    public async Task Start_on_a_managed_service_goes_to_running_and_stop_ends_it()
    {
        await _page.GotoInteractiveAsync(Url("services"));
        var row = _page.GetByRole(AriaRole.Row).Filter(new() { Has = _page.Locator("[data-service=comfyui]") });
        await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "not running");

        await Assertions.Expect(row.GetByTestId("start")).ToBeEnabledAsync();
        // The columns keep their places as the row's state changes (its URL, uptime and probe come and go).
        async Task<List<int>> ColumnsAsync()
        {
            var boxes = new List<int>();
            foreach (var header in await _page.Locator("[data-testid=services-table] thead th").AllAsync())
            {
                boxes.Add((int)Math.Round((await header.BoundingBoxAsync())!.X / 4) * 4);
            }

            return boxes;
        }

        var columns = await ColumnsAsync();
        await row.GetByTestId("start").ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Start", Exact = true }).Last.ClickAsync();

        await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "running", new() { Timeout = 20_000 });
        await Assertions.Expect(_page.Locator(".mud-snackbar")).ToContainTextAsync("comfyui is running on GPU");
        await Assertions.Expect(row.GetByText("PID ")).ToBeVisibleAsync();
        await Assertions.Expect(row.GetByTestId("last-probe")).ToContainTextAsync("ok 200", Slow);
        Assert.Equal(columns, await ColumnsAsync());
        await _page.ScreenshotToAsync("services.png");

        // Its output, live, on the logs page.
        await row.GetByRole(AriaRole.Link, new() { Name = "Logs of comfyui" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Heading, new() { Name = "Logs of comfyui" })).ToBeVisibleAsync();
        await Assertions.Expect(_page.GetByTestId("log")).ToContainTextAsync("STANDIN LISTENING", Slow);
        await Assertions.Expect(_page.GetByTestId("log").Locator(".cf-log-line").First).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^STANDIN LISTENING http://127\.0\.0\.1:\d+$"));
        await _page.ScreenshotToAsync("logs.png");

        // Restarted (here through the API): the open page follows the new process, below a marker.
        using (var http = new HttpClient { BaseAddress = app.App.BaseAddress })
        using (var restarted = await http.PostAsJsonAsync(new Uri("api/services/comfyui/restart", UriKind.Relative), new { }, TestContext.Current.CancellationToken))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, restarted.StatusCode);
        }

        await Assertions.Expect(_page.GetByTestId("log").Locator(".cf-log-sep")).ToContainTextAsync("comfyui started again", Slow);
        await Assertions.Expect(_page.GetByTestId("log").Locator(".cf-log-sep ~ .cf-log-line").Filter(new() { HasText = "STANDIN LISTENING" })).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await _page.ScreenshotToAsync("logs-restarted.png");
        await _page.GetByRole(AriaRole.Link, new() { Name = "Back to services" }).ClickAsync();

        await row.GetByTestId("stop").ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Stop", Exact = true }).Last.ClickAsync();
        await Assertions.Expect(row.Locator("[data-state]")).ToHaveAttributeAsync("data-state", "stopped", new() { Timeout = 20_000 });
        Assert.Equal(columns, await ColumnsAsync());
    }

    [Fact]
    public async Task A_state_change_made_through_the_api_appears_on_an_open_page_without_a_reload()
    {
        await _page.GotoInteractiveAsync(Url("leases"));
        await Assertions.Expect(_page.GetByTestId("leases-table")).ToContainTextAsync("ollama");
        await Assertions.Expect(_page.GetByTestId("leases-table")).Not.ToContainTextAsync("batch-job");

        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        using var granted = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 1, mb = 2048, service = "batch-job", ttl_s = 600 }, TestContext.Current.CancellationToken);
        granted.EnsureSuccessStatusCode();

        var row = _page.GetByRole(AriaRole.Row).Filter(new() { HasText = "batch-job" });
        await Assertions.Expect(row).ToContainTextAsync("2,048 MB");
        await Assertions.Expect(row).ToContainTextAsync("client");
        await _page.ScreenshotToAsync("leases.png");

        await row.GetByRole(AriaRole.Button, new() { Name = "Release the lease of batch-job" }).ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Release", Exact = true }).Last.ClickAsync();
        await Assertions.Expect(_page.GetByTestId("leases-table")).Not.ToContainTextAsync("batch-job");
    }

    [Fact]
    public async Task A_ttl_counts_down_by_the_servers_clock_in_a_browser_whose_clock_is_an_hour_ahead()
    {
        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        using var granted = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 1, mb = 512, service = "skewed-clock", ttl_s = 600 }, TestContext.Current.CancellationToken);
        granted.EnsureSuccessStatusCode();
        var id = (await granted.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(TestContext.Current.CancellationToken)).GetProperty("lease").GetProperty("lease_id").GetString();

        await _page.Clock.SetSystemTimeAsync(DateTime.UtcNow.AddHours(1));
        await _page.GotoInteractiveAsync(Url("leases"));

        var row = _page.GetByRole(AriaRole.Row).Filter(new() { HasText = "skewed-clock" });
        // The browser's own clock would say the lease expired 50 minutes ago.
        var ttl = row.Locator("[data-expires]");
        await Assertions.Expect(ttl).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^(9 min \d+ s|10 min)$"));
        // Once the browser's countdown has ticked (the text changes), it still counts by the server's clock.
        var rendered = await ttl.TextContentAsync();
        await Assertions.Expect(ttl).Not.ToHaveTextAsync(rendered!, new() { Timeout = 5_000 });
        await Assertions.Expect(ttl).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^9 min \d+ s$"));

        using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_profile_edited_with_an_error_shows_the_marker_and_cannot_be_saved_and_once_fixed_saves_and_applies()
    {
        await _page.GotoInteractiveAsync(Url("profiles"));
        await Assertions.Expect(_page.GetByTestId("editing-name")).ToHaveTextAsync("e2e-rig");
        var input = _page.GetByTestId("yaml-input");
        var original = await input.InputValueAsync();

        await input.FillAsync(original.Replace("    priority: 2", "    priorty: 2", StringComparison.Ordinal));

        // The typo's line is marked where the key starts (and the mapping that now lacks 'priority' too).
        var marker = _page.GetByTestId("error-line").Filter(new() { HasText = "priorty" });
        await Assertions.Expect(marker).ToHaveCountAsync(1);
        Assert.Equal("5", await marker.Locator(".cf-squiggle").GetAttributeAsync("data-column"));
        await Assertions.Expect(_page.GetByTestId("profile-errors")).ToContainTextAsync("services.whisper.priorty: unknown key 'priorty' (did you mean 'priority'?)");
        await Assertions.Expect(_page.GetByTestId("save")).ToBeDisabledAsync();
        Assert.Contains("Fix the", await _page.GetByTestId("save-wrapper").GetAttributeAsync("title"), StringComparison.Ordinal);
        await _page.ScreenshotToAsync("profile-editor-error.png");

        await input.FillAsync(original.Replace("    max_mb: 1200", "    max_mb: 1500", StringComparison.Ordinal));
        await Assertions.Expect(_page.GetByTestId("profile-valid")).ToBeVisibleAsync();
        await Assertions.Expect(_page.GetByTestId("profile-diff")).ToContainTextAsync("+     max_mb: 1500");
        await Assertions.Expect(_page.GetByTestId("profile-plan")).ToContainTextAsync("budget 1200 → 1500 MB");
        await Assertions.Expect(_page.GetByTestId("save")).ToBeEnabledAsync();
        await _page.ScreenshotToAsync("profiles.png");

        await _page.GetByTestId("save").ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Save", Exact = true }).Last.ClickAsync();
        await Assertions.Expect(_page.Locator(".mud-snackbar")).ToContainTextAsync("applied");
        Assert.Contains("max_mb: 1500", await File.ReadAllTextAsync(app.ProfilePath, TestContext.Current.CancellationToken), StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        var profile = await http.GetStringAsync(new Uri("api/profiles/e2e-rig", UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Contains("max_mb: 1500", profile, StringComparison.Ordinal);
        await File.WriteAllTextAsync(app.ProfilePath, original, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task The_profile_editor_keeps_every_key_of_a_burst_indents_with_tab_saves_with_ctrl_s_and_asks_before_leaving()
    {
        await _page.GotoInteractiveAsync(Url("profiles"));
        await Assertions.Expect(_page.GetByTestId("editing-name")).ToHaveTextAsync("e2e-rig");
        var input = _page.GetByTestId("yaml-input");
        var original = await input.InputValueAsync();
        await input.FocusAsync();
        await _page.Keyboard.PressAsync("Control+End");

        // 200 characters typed with no delay between the keys: none may be lost on the way to the server and back.
        var burst = "\n# " + string.Concat(Enumerable.Range(0, 20).Select(i => $"burst-{i:D2}-x"));
        Assert.Equal(203, burst.Length);
        await _page.Keyboard.TypeAsync(burst);
        await Assertions.Expect(input).ToHaveValueAsync(original + burst);
        await Assertions.Expect(_page.GetByTestId("profile-diff")).ToContainTextAsync(burst.Trim(), new() { Timeout = 10_000 });
        await Assertions.Expect(input).ToHaveValueAsync(original + burst);

        // Tab indents instead of leaving the editor.
        await _page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(input).ToHaveValueAsync(original + burst + "  ");
        await Assertions.Expect(input).ToBeFocusedAsync();

        // Ctrl+S saves (after the same confirmation as the button), also pressed straight after a key, before the page
        // has re-rendered its Save button; Cmd+S too.
        await _page.Keyboard.TypeAsync("#");
        await _page.Keyboard.PressAsync("Control+s");
        await Assertions.Expect(_page.GetByText("Save e2e-rig and apply it now?")).ToBeVisibleAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Cancel", Exact = true }).ClickAsync();
        await input.FocusAsync();
        await _page.Keyboard.PressAsync("Control+End");
        await _page.Keyboard.PressAsync("Backspace");
        await Assertions.Expect(input).ToHaveValueAsync(original + burst + "  ");
        await _page.Keyboard.PressAsync("Meta+s");
        await Assertions.Expect(_page.GetByText("Save e2e-rig and apply it now?")).ToBeVisibleAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Cancel", Exact = true }).ClickAsync();

        // Esc, then Tab leaves the editor (as in VS Code) without changing the text.
        await input.FocusAsync();
        await _page.Keyboard.PressAsync("Escape");
        await _page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(input).Not.ToBeFocusedAsync();
        await Assertions.Expect(input).ToHaveValueAsync(original + burst + "  ");

        // Leaving with the edit unsaved asks first.
        await _page.GetByRole(AriaRole.Link, new() { Name = "Services" }).First.ClickAsync();
        await Assertions.Expect(_page.GetByText("Leave this page and discard your unsaved changes to e2e-rig?")).ToBeVisibleAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Keep editing", Exact = true }).ClickAsync();
        Assert.EndsWith("/profiles", new Uri(_page.Url).AbsolutePath, StringComparison.Ordinal);
        await Assertions.Expect(input).ToHaveValueAsync(original + burst + "  ");

        // The browser asks too, before a reload, a closed tab or another site (beforeunload); dismissed, the page stays.
        var asked = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnDialog(object? sender, IDialog dialog)
        {
            asked.TrySetResult(dialog.Type);
            _ = dialog.DismissAsync();
        }

        _page.Dialog += OnDialog;
        await _page.CloseAsync(new() { RunBeforeUnload = true });
        Assert.Equal("beforeunload", await asked.Task.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken));
        _page.Dialog -= OnDialog;
        Assert.False(_page.IsClosed);
        await Assertions.Expect(input).ToHaveValueAsync(original + burst + "  ");

        await _page.GetByTestId("revert").ClickAsync();
        await Assertions.Expect(input).ToHaveValueAsync(original);
    }

    [Fact]
    public async Task History_shows_lease_events_and_a_chart_per_gpu()
    {
        await _page.GotoInteractiveAsync(Url("history"));
        // At least the adopted Ollama's grant is there already.
        await Assertions.Expect(_page.GetByTestId("history-table").Locator("tbody tr").First).ToBeVisibleAsync(new() { Timeout = 20_000 });

        // Events written while the page is open appear on it, without a reload.
        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        using var granted = await http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 0, mb = 1024, service = "history-probe" }, TestContext.Current.CancellationToken);
        var id = (await granted.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(TestContext.Current.CancellationToken)).GetProperty("lease").GetProperty("lease_id").GetString();
        using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative), TestContext.Current.CancellationToken);

        await Assertions.Expect(_page.GetByTestId("history-table").Locator("tbody tr").First).ToContainTextAsync("history-probe", Slow);
        await Assertions.Expect(_page.GetByTestId("history-table").Locator("tbody tr").First).ToContainTextAsync("released");
        await Assertions.Expect(_page.GetByTestId("usage-chart").First).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await _page.ScreenshotToAsync("history.png");
    }
}
