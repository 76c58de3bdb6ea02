using Bunit;
using CfOrch.Core.Storage;
using CfOrch.Web.Components.Layout;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

public sealed class StorageNoticeBannerTests : MudBunitContext
{
    private readonly StorageNotices _notices = new();
    private readonly StorageHealth _storage;

    public StorageNoticeBannerTests()
    {
        _storage = new StorageHealth(Time);
        Services.AddSingleton(_notices);
        Services.AddSingleton(_storage);
        _notices.Add(new StorageNotice("db-1", Time.GetUtcNow(), "The database /data/cf-orch.db was damaged (file is not a database). It was moved to /data/cf-orch.db.corrupt-20261129T120000Z."));
    }

    [Fact]
    public void A_storage_notice_shows_until_someone_who_may_control_cf_orch_dismisses_it()
    {
        var banner = RenderAs<StorageNoticeBanner>();
        Assert.Contains("was damaged (file is not a database)", banner.Find("[data-testid=storage-notice]").TextContent, StringComparison.Ordinal);

        banner.ClickOn("[data-testid=storage-notice] button");

        banner.WaitForAssertion(() => Assert.Empty(banner.FindAll("[data-testid=storage-notice]")));
        Assert.Empty(_notices.All);
    }

    [Fact]
    public void A_read_only_visitor_sees_the_notice_but_cannot_dismiss_it()
    {
        var banner = RenderAs<StorageNoticeBanner>(ReadOnly);

        Assert.Single(banner.FindAll("[data-testid=storage-notice]"));
        Assert.Empty(banner.FindAll("[data-testid=storage-notice] button"));
    }

    [Fact]
    public void Failing_storage_shows_a_red_banner_until_a_write_succeeds_again()
    {
        var banner = RenderAs<StorageNoticeBanner>(ReadOnly);
        Assert.Empty(banner.FindAll("[data-testid=storage-failing]"));

        _storage.WriteFailed("database or disk is full");

        banner.WaitForAssertion(() => Assert.Contains("cannot write its database since 2026-11-26 12:00:00Z (database or disk is full)", banner.Find("[data-testid=storage-failing]").TextContent, StringComparison.Ordinal));
        _storage.WriteSucceeded();
        banner.WaitForAssertion(() => Assert.Empty(banner.FindAll("[data-testid=storage-failing]")));
    }
}
