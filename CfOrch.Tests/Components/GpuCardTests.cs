using Bunit;
using CfOrch.Core.Gpus;
using CfOrch.Core.Leases;
using CfOrch.Web.Components.Controls;

namespace CfOrch.Tests.Components;

public sealed class GpuCardTests : MudBunitContext
{
    private static readonly GpuInfo Gpu = new()
    {
        Index = 1,
        Name = "NVIDIA GeForce RTX 3090",
        Uuid = "GPU-1234",
        TotalMb = 24576,
        UsedMb = 6144,
        TemperatureC = 88,
        UtilizationPercent = 57,
        Processes = [new GpuProcess(4242, 4096, "ollama"), new GpuProcess(77, null, "Xorg")],
    };

    [Fact]
    public void Shows_name_memory_temperature_utilisation_and_processes()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu));

        Assert.Equal("1", card.Find("[data-testid=gpu-card]").GetAttribute("data-gpu-index"));
        Assert.Contains("NVIDIA GeForce RTX 3090", card.Markup, StringComparison.Ordinal);
        Assert.Equal("6,144 MB of 24,576 MB used (25%)", card.Find("[data-testid=vram-used]").TextContent.Trim());
        Assert.Contains("88 °C", card.Markup, StringComparison.Ordinal);
        Assert.Contains("57 %", card.Markup, StringComparison.Ordinal);
        var rows = card.FindAll(".cf-process-table tbody tr");
        Assert.Equal(["ollama | 4242 | not tracked | 4,096 MB", "Xorg | 77 | not tracked | n/a"], rows.Select(r => string.Join(" | ", r.QuerySelectorAll("td").Select(td => td.TextContent.Trim()))));
    }

    [Fact]
    public void A_hot_gpu_shows_its_temperature_as_an_error()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu));

        var chip = card.FindAll(".mud-chip").Single(c => c.TextContent.Contains("°C", StringComparison.Ordinal));
        Assert.Contains("mud-chip-color-error", chip.ClassName, StringComparison.Ordinal);
    }

    [Fact]
    public void Temperature_and_utilisation_are_left_out_when_the_driver_does_not_give_them()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu with { TemperatureC = null, UtilizationPercent = null, Processes = [] }));

        Assert.DoesNotContain("°C", card.Markup, StringComparison.Ordinal);
        Assert.Empty(card.FindAll(".cf-process-table"));
    }

    [Fact]
    public void A_device_error_is_shown_on_the_card()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu with { Error = "the GPU has fallen off the bus" }));

        Assert.Contains("the GPU has fallen off the bus", card.Find(".mud-alert").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void The_vram_bar_has_a_segment_per_holder_sized_against_the_total()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu).Add(c => c.ReserveMb, 1024));

        var bar = card.Find("[data-testid=vram-bar]");
        Assert.Equal("VRAM: 6,144 of 24,576 MB used", bar.GetAttribute("aria-label"));
        var segments = bar.QuerySelectorAll(".cf-vram-seg").Select(s => (s.GetAttribute("data-kind"), s.GetAttribute("data-mb"), s.GetAttribute("title"))).ToList();
        Assert.Equal(
            [
                ("External", "4096", "ollama (PID 4242, not tracked by cf-orch): 4,096 MB"),
                ("Unattributed", "2048", "In use outside cf-orch (the driver and other programs): 2,048 MB"),
                ("Reserve", "1024", "Reserve (never leased): 1,024 MB"),
                ("Free", "17408", "Available to new leases: 17,408 MB"),
            ],
            segments);
        Assert.Contains("width:16.667%", bar.QuerySelectorAll(".cf-vram-seg")[0].GetAttribute("style"), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_kind_of_segment_has_a_legend_entry_and_holders_on_one_gpu_never_share_a_colour()
    {
        var gpu = Gpu with { Processes = [new GpuProcess(4242, 1000, "python")], UsedMb = 1500 };
        var leases = new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k" }
            .Select((holder, i) => new Lease { LeaseId = $"l{i}", NodeId = "local", GpuIndex = 1, Holder = holder, Service = holder, Mb = 100, Priority = 2, Origin = HolderOrigin.Managed, GrantedAt = DateTimeOffset.UnixEpoch.AddSeconds(i) })
            .ToList();

        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, gpu).Add(c => c.Leases, leases).Add(c => c.ReserveMb, 512));

        var colors = card.FindAll("[data-kind=Lease]").Select(s => s.GetAttribute("style")!.Split("--seg:")[1].Split(';')[0]).ToList();
        Assert.Equal(11, colors.Count);
        Assert.Equal(10, colors.Take(10).Distinct().Count());
        Assert.Equal(11, card.FindAll("[data-testid=legend-lease]").Count);
        Assert.Contains("outside cf-orch 1,500 MB", card.Find("[data-testid=legend-outside]").TextContent, StringComparison.Ordinal);

        // What runs outside cf-orch (a named process and the rest) is drawn in the legend's "outside" colour, never in
        // a holder's.
        var outside = card.FindAll("[data-kind=External], [data-kind=Unattributed]").Select(s => s.GetAttribute("style")!.Split("--seg:")[1].Split(';')[0].Trim()).ToList();
        Assert.Equal(2, outside.Count);
        Assert.All(outside, c => Assert.Equal("var(--cf-vram-unattributed)", c));
        Assert.DoesNotContain(colors, c => outside.Contains(c.Trim()));
        Assert.Contains("512 MB reserved, never leased", card.Find("[data-testid=legend-reserve]").TextContent, StringComparison.Ordinal);
        Assert.Contains("not in use", card.Find("[data-testid=vram-free]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void A_click_or_tap_on_a_segment_shows_its_details_under_the_bar_and_a_second_one_hides_them()
    {
        var card = Render<GpuCard>(p => p.Add(c => c.Gpu, Gpu).Add(c => c.ReserveMb, 1024));
        Assert.Empty(card.FindAll("[data-testid=segment-detail]"));

        card.Find("[data-kind=External]").Click();

        Assert.Equal("ollama (PID 4242, not tracked by cf-orch): 4,096 MB", card.Find("[data-testid=segment-detail]").TextContent.Trim());
        Assert.Contains("cf-vram-seg-open", card.Find("[data-kind=External]").ClassName, StringComparison.Ordinal);

        card.Find("[data-kind=External]").Click();
        Assert.Empty(card.FindAll("[data-testid=segment-detail]"));
    }
}
