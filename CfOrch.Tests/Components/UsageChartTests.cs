using Bunit;
using CfOrch.Web.Components.Controls;
using CfOrch.Web.Components.State;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

public sealed class UsageChartTests : BunitContext
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 8, 0, 0, TimeSpan.Zero);

    public UsageChartTests() => Services.AddScoped<BrowserClock>();

    private IRenderedComponent<UsageChart> Chart(double max, params UsageChart.ChartSeries[] series) =>
        Render<UsageChart>(p => p.Add(c => c.Max, max).Add(c => c.Series, series).Add(c => c.Title, "VRAM of GPU 0"));

    private static UsageChart.ChartSeries Series(string name, params (int Minute, double Value)[] points) =>
        new(name, "#000", points.Select(p => (T0.AddMinutes(p.Minute), p.Value)).ToList());

    [Fact]
    public void A_pause_in_the_samples_breaks_the_line_instead_of_bridging_it()
    {
        // Samples every minute, then cf-orch was down for an hour.
        var chart = Chart(8192, Series("used", (0, 1000), (1, 1100), (2, 1200), (63, 4000), (64, 4100)));

        var runs = chart.FindAll("polyline[data-series=used]");

        Assert.Equal(2, runs.Count);
        Assert.Equal(3, runs[0].GetAttribute("points")!.Split(' ').Length);
        Assert.Equal(2, runs[1].GetAttribute("points")!.Split(' ').Length);
    }

    [Fact]
    public void An_over_commitment_grows_the_scale_and_draws_the_cards_size()
    {
        var chart = Chart(8192, Series("committed", (0, 6000), (1, 10000)), Series("used", (0, 4000), (1, 5000)));

        Assert.Contains("scale: 10,000 MB (the card has 8,192 MB)", chart.Markup, StringComparison.Ordinal);
        Assert.NotNull(chart.Find("[data-testid=chart-total]"));
        // The highest point is at the top of the chart (y = 2 of 140), not clipped at the card's size.
        Assert.EndsWith(",2", chart.Find("polyline[data-series=committed]").GetAttribute("points"), StringComparison.Ordinal);
    }

    [Fact]
    public void Within_the_card_the_scale_is_the_card()
    {
        var chart = Chart(8192, Series("used", (0, 1000), (1, 2000)));

        Assert.Contains("scale: 8,192 MB", chart.Markup, StringComparison.Ordinal);
        Assert.DoesNotContain("the card has", chart.Markup, StringComparison.Ordinal);
        Assert.Empty(chart.FindAll("[data-testid=chart-total]"));
        Assert.Contains("Nov 27 08:00 UTC", chart.Markup, StringComparison.Ordinal);
    }

    [Fact]
    public void The_y_axis_names_the_megabytes_and_equal_lines_keep_apart_by_their_dash()
    {
        var chart = Chart(24576, Series("measured", (0, 3000), (1, 3000)), Series("used", (0, 3000), (1, 3000)));

        Assert.Equal(["24 GB", "18 GB", "12 GB", "6 GB", "0 GB"], chart.FindAll("[data-testid=chart-axis] span").Select(s => s.TextContent));
        var dashes = chart.FindAll("polyline").Select(l => l.GetAttribute("style")!.Split("stroke-dasharray:")[1].Trim()).ToList();
        Assert.Equal(2, dashes.Distinct().Count());
    }
}
