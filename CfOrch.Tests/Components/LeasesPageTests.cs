using Bunit;
using CfOrch.Core.Leases;
using CfOrch.Web.Components.Controls;
using MudBlazor;
using LeasesPage = CfOrch.Web.Components.Pages.Leases;

namespace CfOrch.Tests.Components;

/// <summary>What the Leases page shows for the state it is given (its actions: <see cref="LeasesPageEngineTests"/>).</summary>
public sealed class LeasesPageTests : StateBunitContext
{
    [Fact]
    public void Without_leases_it_says_how_one_is_granted_and_still_shows_the_capacity()
    {
        UseProfile();

        var page = RenderAs<LeasesPage>();

        Assert.Contains("POST /api/leases", page.Find("[data-testid=no-leases]").TextContent, StringComparison.Ordinal);
        var capacity = page.Find("[data-testid=capacity-table] tbody tr").QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Equal(["0 · Test GPU", "8,192 MB", "0 MB", "0 MB", "0 MB", "0 MB", "0 MB", "8,192 MB"], capacity);
    }

    [Fact]
    public void Each_lease_shows_its_holder_budget_measured_use_origin_and_time_left()
    {
        UseProfile();
        AddLease("ollama", 4096, origin: HolderOrigin.Adopted, measuredMb: 3500);
        AddLease("notebook", 1024, priority: 2, origin: HolderOrigin.Client, ttl: TimeSpan.FromMinutes(5));
        Time.Advance(TimeSpan.FromSeconds(30));

        var page = RenderAs<LeasesPage>();

        var rows = page.FindAll("[data-testid=leases-table] tbody tr")
            .Select(r => string.Join(" | ", r.QuerySelectorAll("td").Take(8).Select(td => td.TextContent.Trim())))
            .ToList();
        Assert.Equal(
            [
                "ollama | 0 | 4,096 MB | 3,500 MB | 1 | adopted (running outside cf-orch) | 30 s | none",
                "notebook | 0 | 1,024 MB | — | 2 | client | 30 s | 4 min 30 s",
            ],
            rows);
    }

    [Fact]
    public void A_row_is_updated_in_place_when_its_lease_is_measured_again()
    {
        UseProfile();
        var lease = AddLease("notebook", 1024, origin: HolderOrigin.Client, measuredMb: 100);
        var page = RenderAs<LeasesPage>();
        var button = page.FindComponents<MudButton>().Single(b => b.Instance.UserAttributes.GetValueOrDefault("aria-label") as string == "Release the lease of notebook").Instance;

        Publish(new LeaseUpdated(lease with { MeasuredMb = 900 }));

        Assert.Contains("900 MB", page.Find("[data-testid=leases-table] tbody tr").TextContent, StringComparison.Ordinal);
        Assert.Same(button, page.FindComponents<MudButton>().Single(b => b.Instance.UserAttributes.GetValueOrDefault("aria-label") as string == "Release the lease of notebook").Instance);
    }

    [Fact]
    public void A_service_lease_cannot_be_released_here_and_a_read_only_visitor_cannot_release_any()
    {
        UseProfile();
        AddLease("whisper", 3000);
        AddLease("notebook", 1024, origin: HolderOrigin.Client);

        var page = RenderAs<LeasesPage>();
        var buttons = page.FindAll("[data-testid=leases-table] tbody button");
        Assert.True(buttons[0].HasAttribute("disabled"));
        Assert.Equal("This lease belongs to the service whisper: stop the service to release it.", buttons[0].ParentElement!.GetAttribute("title"));
        Assert.False(buttons[1].HasAttribute("disabled"));

        var readOnly = RenderAs<LeasesPage>(ReadOnly);
        Assert.All(readOnly.FindAll("[data-testid=leases-table] tbody button"), b =>
        {
            Assert.True(b.HasAttribute("disabled"));
            Assert.Equal(ReadOnly.Reason, b.ParentElement!.GetAttribute("title"));
        });
    }

    [Fact]
    public void Two_holders_on_one_gpu_whose_names_share_a_colour_get_the_colours_the_gpu_card_gives_them()
    {
        UseProfile();
        var twin = Enumerable.Range(0, 1000).Select(i => $"svc{i}").First(n => VramSegment.ColorFor(n) == VramSegment.ColorFor("notebook"));
        var first = AddLease("notebook", 1024, priority: 1, origin: HolderOrigin.Client);
        var second = AddLease(twin, 1024, priority: 2, origin: HolderOrigin.Client);

        var page = RenderAs<LeasesPage>();

        var swatches = page.FindAll("[data-testid=leases-table] tbody tr")
            .ToDictionary(r => r.QuerySelector("b")!.TextContent, r => r.QuerySelector("[data-testid=lease-swatch]")!.GetAttribute("style")!.Split("background:")[1].Trim());
        var card = VramSegment.HolderColors([first, second]);
        Assert.Equal(card[first.Holder], swatches[first.Holder]);
        Assert.Equal(card[second.Holder], swatches[second.Holder]);
        Assert.NotEqual(swatches[first.Holder], swatches[second.Holder]);
    }
}
