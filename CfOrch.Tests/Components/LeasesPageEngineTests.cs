using Bunit;
using CfOrch.Core.Leases;
using MudBlazor;
using LeasesPage = CfOrch.Web.Components.Pages.Leases;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>The Leases page's actions, carried out by the engine.</summary>
public sealed class LeasesPageEngineTests : EngineBunitContext
{
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
}
