using Bunit;
using CfOrch.Core.Leases;
using CfOrch.Web.Components.Controls;
using CfOrch.Web.Components.Pages;
using MudBlazor;
using LeasesPage = CfOrch.Web.Components.Pages.Leases;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

public sealed class LeasesPageTests : EngineBunitContext
{
    [Fact]
    public void Without_leases_it_says_how_one_is_granted_and_still_shows_the_capacity()
    {
        UseTestProfile();

        var page = RenderAs<LeasesPage>();

        Assert.Contains("POST /api/leases", page.Find("[data-testid=no-leases]").TextContent, StringComparison.Ordinal);
        var capacity = page.Find("[data-testid=capacity-table] tbody tr").QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Equal(["0 · Test GPU", "8,192 MB", "0 MB", "0 MB", "0 MB", "0 MB", "0 MB", "8,192 MB"], capacity);
    }

    [Fact]
    public void Each_lease_shows_its_holder_budget_measured_use_origin_and_time_left()
    {
        UseTestProfile();
        Grant("ollama", 4096, origin: HolderOrigin.Adopted, measuredMb: 3500);
        Grant("notebook", 1024, priority: 2, origin: HolderOrigin.Client, ttl: TimeSpan.FromMinutes(5));
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
        UseTestProfile();
        var lease = Grant("notebook", 1024, origin: HolderOrigin.Client, measuredMb: 100);
        var page = RenderAs<LeasesPage>();
        var button = page.FindComponents<MudButton>().Single(b => b.Instance.UserAttributes.GetValueOrDefault("aria-label") as string == "Release the lease of notebook").Instance;

        LeaseBook.UpdateMeasured(lease.LeaseId, 900);
        Time.Advance(TimeSpan.FromMilliseconds(100));

        page.WaitForAssertion(() => Assert.Contains("900 MB", page.Find("[data-testid=leases-table] tbody tr").TextContent, StringComparison.Ordinal), TimeSpan.FromSeconds(5));
        Assert.Same(button, page.FindComponents<MudButton>().Single(b => b.Instance.UserAttributes.GetValueOrDefault("aria-label") as string == "Release the lease of notebook").Instance);
    }

    [Fact]
    public void A_service_lease_cannot_be_released_here_and_a_read_only_visitor_cannot_release_any()
    {
        UseTestProfile();
        Grant("whisper", 3000);
        Grant("notebook", 1024, origin: HolderOrigin.Client);

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
    public void Releasing_a_client_lease_asks_first_then_frees_the_memory()
    {
        UseTestProfile();
        var lease = Grant("notebook", 1024, origin: HolderOrigin.Client);
        var dialogs = Render<MudDialogProvider>();
        var snackbars = Render<MudSnackbarProvider>();
        var page = RenderAs<LeasesPage>();

        page.ClickOn("[aria-label='Release the lease of notebook']");
        dialogs.WaitForAssertion(() => Assert.Contains("Release 1,024 MB held by notebook on GPU 0?", dialogs.Markup, StringComparison.Ordinal));
        Assert.NotNull(LeaseBook.Get(lease.LeaseId));

        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Release");

        page.WaitForAssertion(() => Assert.Null(LeaseBook.Get(lease.LeaseId)));
        snackbars.WaitForAssertion(() => Assert.Contains("Released the lease of notebook.", snackbars.Markup, StringComparison.Ordinal));
        Time.Advance(TimeSpan.FromMilliseconds(100));
        page.WaitForAssertion(() => Assert.NotEmpty(page.FindAll("[data-testid=no-leases]")), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_tab_whose_sign_in_was_signed_out_elsewhere_can_no_longer_act()
    {
        UseTestProfile();
        var lease = Grant("notebook", 1024, origin: HolderOrigin.Client);
        var dialogs = Render<MudDialogProvider>();
        var snackbars = Render<MudSnackbarProvider>();
        var page = RenderAs<LeasesPage>(CfOrch.Web.Auth.Access.Full("admin") with { Session = "tab-session" });

        // Another tab of the same browser signs out.
        Services.GetRequiredService<CfOrch.Web.Auth.SignedOutSessions>().SignOut("tab-session");
        page.ClickOn("[aria-label='Release the lease of notebook']");

        snackbars.WaitForAssertion(() => Assert.Contains("You signed out", snackbars.Markup, StringComparison.Ordinal));
        Assert.DoesNotContain("Release 1,024 MB", dialogs.Markup, StringComparison.Ordinal);
        Assert.NotNull(LeaseBook.Get(lease.LeaseId));
    }

    [Fact]
    public void Allocations_show_who_uses_which_service_with_model_ttl_and_age_and_can_be_released()
    {
        UseTestProfile();
        Grant("ollama", 4096, origin: HolderOrigin.Adopted);
        var table = Services.GetRequiredService<CfOrch.Core.Allocations.AllocationTable>();
        var now = Time.GetUtcNow();
        table.Add(new CfOrch.Core.Allocations.Allocation
        {
            AllocationId = "alloc-1",
            Service = "ollama",
            NodeId = "local",
            GpuIndex = 0,
            Model = "llama3.1:8b",
            Url = "http://127.0.0.1:11434",
            Caller = "notes-app",
            CreatedAt = now,
            ExpiresAt = now + TimeSpan.FromMinutes(10),
        });
        Time.Advance(TimeSpan.FromSeconds(40));
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<LeasesPage>();

        var cells = page.Find("[data-testid=allocations-table] tbody tr").QuerySelectorAll("td").Take(7).Select(td => td.TextContent.Trim()).ToList();
        Assert.Equal(["notes-app", "ollama", "llama3.1:8b", "0", "4,096 MB", "40 s", "9 min 20 s"], cells);

        // The service's own lease says it lasts while it is allocated.
        Assert.Equal("1 allocation", page.Find("[data-testid=lease-allocations]").TextContent.Trim());

        page.ClickOn("[aria-label='Release the allocation of notes-app on ollama']");
        dialogs.WaitForAssertion(() => Assert.Contains("Release notes-app's allocation of ollama (llama3.1:8b)?", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Release");

        page.WaitForAssertion(() => Assert.Null(table.Get("alloc-1")));
        page.WaitForAssertion(() => Assert.NotEmpty(page.FindAll("[data-testid=no-allocations]")), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Two_holders_on_one_gpu_whose_names_share_a_colour_get_the_colours_the_gpu_card_gives_them()
    {
        UseTestProfile();
        var twin = Enumerable.Range(0, 1000).Select(i => $"svc{i}").First(n => VramSegment.ColorFor(n) == VramSegment.ColorFor("notebook"));
        var first = Grant("notebook", 1024, priority: 1, origin: HolderOrigin.Client);
        var second = Grant(twin, 1024, priority: 2, origin: HolderOrigin.Client);

        var page = RenderAs<LeasesPage>();

        var swatches = page.FindAll("[data-testid=leases-table] tbody tr")
            .ToDictionary(r => r.QuerySelector("b")!.TextContent, r => r.QuerySelector("[data-testid=lease-swatch]")!.GetAttribute("style")!.Split("background:")[1].Trim());
        var card = VramSegment.HolderColors([first, second]);
        Assert.Equal(card[first.Holder], swatches[first.Holder]);
        Assert.Equal(card[second.Holder], swatches[second.Holder]);
        Assert.NotEqual(swatches[first.Holder], swatches[second.Holder]);
    }
}
