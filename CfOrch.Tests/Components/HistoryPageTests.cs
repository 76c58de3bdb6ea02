using System.Globalization;
using Bunit;
using CfOrch.Web.Components.State;
using CfOrch.Web.Components.Pages;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>The History page over a real SQLite file with the app's schema (no engine: the page takes only the GPUs' names from the state).</summary>
public sealed class HistoryPageTests : StateBunitContext
{
    /// <summary>
    /// How long a wait for the page's queries may take: they run on SQLite through EF Core, off the renderer, and on a
    /// loaded machine the first one (EF Core's start-up, the migration) takes seconds.
    /// </summary>
    private static readonly TimeSpan Query = TimeSpan.FromSeconds(10);

    private void UseHistory(int events, int samples)
    {
        Services.AddDbContextFactory<CfOrchDb>(o => o.UseSqlite($"Data Source={Path.Combine(Data.Path, "history.db")}"));
        Services.AddSingleton<HistoryChanges>();
        Services.AddSingleton<Core.History.IHistoryReader, HistoryQueries>();
        using var db = Services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContext();
        db.Database.Migrate();
        var now = Time.GetUtcNow();
        for (var i = 0; i < events; i++)
        {
            db.LeaseEvents.Add(new LeaseEventRow
            {
                AtUnixMs = (now - TimeSpan.FromMinutes(events - i)).ToUnixTimeMilliseconds(),
                Kind = i % 2 == 0 ? "granted" : "released",
                NodeId = "local",
                GpuIndex = 0,
                Service = "whisper",
                Holder = $"holder-{i:00}",
                Origin = "managed",
                BudgetMb = 1000 + i,
                Reason = $"reason {i}",
            });
        }

        for (var i = 0; i < samples; i++)
        {
            db.GpuSamples.Add(new GpuSample
            {
                NodeId = "local",
                GpuIndex = 0,
                GpuName = "Test GPU",
                AtUnixMs = (now - TimeSpan.FromMinutes(samples - i)).ToUnixTimeMilliseconds(),
                TotalMb = 8192,
                UsedMb = 1000 * i,
                CommittedMb = 2000 + (100 * i),
                MeasuredMb = 500 * i,
            });
        }

        db.SaveChanges();
    }

    [Fact]
    public void Without_history_it_says_so_and_when_samples_come()
    {
        UseHistory(0, 0);

        var page = RenderAs<History>();

        page.WaitForAssertion(() => Assert.NotEmpty(page.FindAll("[data-testid=no-history]")), Query);
        Assert.Contains("one is written every 15 seconds", page.Find("[data-testid=no-samples]").TextContent, StringComparison.Ordinal);
        Assert.Empty(page.FindAll("[data-testid=timeline] .mud-timeline-item"));
    }

    [Fact]
    public void Events_are_newest_first_paged_and_the_samples_are_charted_per_gpu()
    {
        UseHistory(30, 5);

        var page = RenderAs<History>();

        page.WaitForAssertion(() => Assert.Equal(25, page.FindAll("[data-testid=history-table] tbody tr").Count), Query);
        Assert.Contains("holder-29", page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal);
        Assert.Contains("Page 1 of 2", page.Markup, StringComparison.Ordinal);
        Assert.Equal(12, page.FindAll("[data-testid=timeline] .mud-timeline-item").Count);
        Assert.Contains("GPU 0 · Test GPU", page.Markup, StringComparison.Ordinal);
        Assert.Empty(page.FindAll("[data-testid=no-samples]"));

        page.ClickOn("[data-testid=next]");

        page.WaitForAssertion(() => Assert.Equal(5, page.FindAll("[data-testid=history-table] tbody tr").Count), Query);
        Assert.Contains("holder-04", page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal);
        Assert.Contains("Page 2 of 2", page.Markup, StringComparison.Ordinal);
        Assert.True(page.Find("[data-testid=next]").HasAttribute("disabled"));
    }

    [Fact]
    public void Rows_written_while_the_page_is_open_appear_when_the_writer_says_so()
    {
        UseHistory(1, 0);
        var page = RenderAs<History>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=history-table] tbody tr")), Query);

        using (var db = Services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContext())
        {
            db.LeaseEvents.Add(new LeaseEventRow
            {
                AtUnixMs = Time.GetUtcNow().ToUnixTimeMilliseconds(),
                Kind = "evicted",
                NodeId = "local",
                GpuIndex = 0,
                Service = "comfyui",
                Holder = "comfyui",
                Origin = "managed",
                BudgetMb = 6144,
                Reason = "evicted for vllm (priority 1)",
            });
            db.SaveChanges();
        }

        Assert.Single(page.FindAll("[data-testid=history-table] tbody tr"));
        Services.GetRequiredService<HistoryChanges>().Notify();

        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid=history-table] tbody tr").Count), Query);
        Assert.Contains("evicted for vllm (priority 1)", page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void A_page_past_the_end_after_the_history_shrank_shows_the_last_page()
    {
        UseHistory(30, 0);
        var page = RenderAs<History>();
        page.WaitForAssertion(() => Assert.Equal(25, page.FindAll("[data-testid=history-table] tbody tr").Count), Query);
        page.ClickOn("[data-testid=next]");
        page.WaitForAssertion(() => Assert.Contains("Page 2 of 2", page.Markup, StringComparison.Ordinal), Query);

        // Housekeeping deleted old events while the page was open.
        using (var db = Services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContext())
        {
            db.LeaseEvents.Where(e => e.Id <= 20).ExecuteDelete();
        }

        Services.GetRequiredService<HistoryChanges>().Notify();

        page.WaitForAssertion(() => Assert.Contains("Page 1 of 1", page.Markup, StringComparison.Ordinal), Query);
        Assert.Equal(10, page.FindAll("[data-testid=history-table] tbody tr").Count);
    }

    [Fact]
    public void Times_are_in_utc_and_say_so_until_the_browser_gives_its_zone_then_in_the_browsers_zone()
    {
        UseHistory(1, 0);
        var page = RenderAs<History>();
        var at = Time.GetUtcNow() - TimeSpan.FromMinutes(1);
        page.WaitForAssertion(() => Assert.Contains(at.ToString("MMM d HH:mm:ss", CultureInfo.InvariantCulture) + " UTC", page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal), Query);

        // A browser in UTC+05:30 reports its offset (the layout asks once the circuit is up).
        Services.GetRequiredService<BrowserClock>().SetOffsetMinutes(330);

        page.WaitForAssertion(() => Assert.Contains(at.ToOffset(TimeSpan.FromMinutes(330)).ToString("MMM d HH:mm:ss", CultureInfo.InvariantCulture), page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal), Query);
        Assert.DoesNotContain(" UTC", page.Find("[data-testid=history-table] tbody tr").TextContent, StringComparison.Ordinal);
    }
}
