using Bunit;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Web.Components.Pages;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using ProfilesPage = CfOrch.Web.Components.Pages.Profiles;

namespace CfOrch.Tests.Components;

public sealed class ProfilesPageTests : EngineBunitContext
{
    /// <summary>Types <paramref name="yaml"/> into the editor and lets the pause pass until <paramref name="validated"/> holds.</summary>
    private void Type(IRenderedComponent<ProfilesPage> page, string yaml, Action validated)
    {
        page.InvokeAsync(() => page.Find("[data-testid=yaml-input]").InputAsync(new() { Value = yaml })).GetAwaiter().GetResult();

        // Validation runs once typing pauses (250 ms on the page's clock).
        page.WaitForAssertion(
            () =>
            {
                Time.Advance(TimeSpan.FromMilliseconds(250));
                validated();
            },
            TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void The_profile_in_use_is_open_in_the_editor_with_every_line_highlighted()
    {
        UseTestProfile();

        var page = RenderAs<ProfilesPage>();

        Assert.Equal("test", page.Find("[data-testid=editing-name]").TextContent);
        Assert.Equal(TestProfile, page.Find("[data-testid=yaml-input]").GetAttribute("value"));
        Assert.Equal(TestProfile.Split('\n').Length, page.FindAll(".cf-editor-gutter [data-line]").Count);
        Assert.Equal("schema_version", page.Find(".cf-line[data-line='1'] .cf-tok-key").TextContent);
        Assert.Null(page.Find("[data-testid=yaml-input]").GetAttribute("readonly"));
        Assert.Equal("Nothing changed.", page.Find("[data-testid=save-wrapper]").GetAttribute("title"));
    }

    [Fact]
    public void A_mistake_is_marked_at_its_line_and_column_and_saving_is_blocked_until_it_is_fixed()
    {
        UseTestProfile();
        var page = RenderAs<ProfilesPage>();

        Type(page, TestProfile.Replace("    priority: 2\n", "    priorty: 2\n", StringComparison.Ordinal), () => Assert.NotEmpty(page.FindAll("[data-testid=error-line]")));
        var lines = page.FindAll("[data-testid=error-line]");
        Assert.Equal(["16", "17"], lines.Select(l => l.GetAttribute("data-line")).Order(StringComparer.Ordinal));
        var squiggle = page.Find(".cf-line[data-line='17'] .cf-squiggle");
        Assert.Equal("priorty", squiggle.TextContent);
        Assert.Equal("5", squiggle.GetAttribute("data-column"));
        Assert.Contains("unknown key 'priorty' (did you mean 'priority'?)", squiggle.GetAttribute("title"), StringComparison.Ordinal);
        Assert.Contains("line 17, column 5 · services.whisper.priorty: unknown key 'priorty'", page.Find("[data-testid=profile-errors]").TextContent, StringComparison.Ordinal);
        Assert.Equal("Fix the 2 errors first.", page.Find("[data-testid=save-wrapper]").GetAttribute("title"));
        Assert.True(page.Find("[data-testid=save]").HasAttribute("disabled"));

        Type(page, TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal), () => Assert.NotEmpty(page.FindAll("[data-testid=profile-valid]")));
        Assert.Empty(page.FindAll("[data-testid=error-line]"));
        Assert.Null(page.Find("[data-testid=save-wrapper]").GetAttribute("title"));
        Assert.Equal(["- max_mb: 3000", "+ max_mb: 3500"], page.FindAll("[data-testid=profile-diff] div").Select(d => d.TextContent.Replace("  ", "", StringComparison.Ordinal).Trim()));
    }

    [Fact]
    public void Saving_says_what_happens_to_running_services_asks_first_then_writes_the_file_and_applies_it()
    {
        UseTestProfile();
        AddInstance("whisper", InstanceState.Running, budgetMb: 3000);
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();
        var edited = TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal);

        Type(page, edited, () => Assert.Contains("whisper", page.Find("[data-testid=profile-plan]").TextContent, StringComparison.Ordinal));
        page.ClickOn("[data-testid=save]");
        dialogs.WaitForAssertion(() => Assert.Contains("Save test and apply it now?", dialogs.Markup, StringComparison.Ordinal));
        Assert.Equal(TestProfile, File.ReadAllText(Path.Combine(Data.Path, "profiles", "test.yaml")));

        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Save");

        page.WaitForAssertion(() => Assert.Equal(edited, File.ReadAllText(Path.Combine(Data.Path, "profiles", "test.yaml"))));
        Assert.Equal(3500, Services.GetRequiredService<ProfileRegistry>().Active.Profile.Services["whisper"].MaxMb);
        Assert.Single(ProfileStore.BackupsOf(Path.Combine(Data.Path, "profiles", ".backups"), "test"));
        page.WaitForAssertion(() => Assert.Equal("Nothing changed.", page.Find("[data-testid=save-wrapper]").GetAttribute("title")));
    }

    [Fact]
    public void A_read_only_visitor_can_read_but_not_edit_or_save()
    {
        UseTestProfile();

        var page = RenderAs<ProfilesPage>(ReadOnly);

        Assert.NotNull(page.Find("[data-testid=yaml-input]").GetAttribute("readonly"));
        Assert.Equal(ReadOnly.Reason, page.Find("[data-testid=save-wrapper]").GetAttribute("title"));
        Assert.True(page.Find("[data-testid=save]").HasAttribute("disabled"));
    }

    [Fact]
    public void A_read_only_visitor_sees_env_secrets_masked_and_a_controller_sees_them()
    {
        var withSecret = TestProfile.Replace("      args_template: serve\n", "      args_template: serve\n      env:\n        HF_TOKEN: hf_live_SECRET\n        OLLAMA_HOST: 127.0.0.1\n", StringComparison.Ordinal);
        Assert.NotEqual(TestProfile, withSecret);
        UseTestProfile(withSecret);

        var visitor = RenderAs<ProfilesPage>(ReadOnly);
        var shown = visitor.Find("[data-testid=yaml-input]").GetAttribute("value")!;
        Assert.DoesNotContain("SECRET", shown, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN: ••••", shown, StringComparison.Ordinal);
        Assert.Contains("OLLAMA_HOST: 127.0.0.1", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", visitor.Markup, StringComparison.Ordinal);

        var controller = RenderAs<ProfilesPage>();
        Assert.Contains("HF_TOKEN: hf_live_SECRET", controller.Find("[data-testid=yaml-input]").GetAttribute("value"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_read_only_visitors_edits_are_not_validated_on_the_server()
    {
        UseTestProfile();
        var page = RenderAs<ProfilesPage>(ReadOnly);

        // The editor is read-only; a forged input event (a modified client) is ignored, so it costs no validation.
        await page.InvokeAsync(() => page.Find("[data-testid=yaml-input]").InputAsync(new() { Value = "services: [" }));
        Time.Advance(TimeSpan.FromSeconds(1));

        Assert.Empty(page.FindAll("[data-testid=error-line]"));
        Assert.Empty(page.FindAll("[data-testid=profile-errors]"));
        Assert.Empty(page.FindAll("[data-testid=profile-diff]"));
        Assert.Equal(TestProfile, page.Find("[data-testid=yaml-input]").GetAttribute("value"));
    }

    [Fact]
    public void A_shipped_profile_is_read_only_and_can_be_copied()
    {
        UseTestProfile();
        var page = RenderAs<ProfilesPage>();

        page.ClickOn("[data-testid=profiles-table] tbody tr", r => r.TextContent.Contains("single-gpu-8gb", StringComparison.Ordinal));

        page.WaitForAssertion(() => Assert.Equal("single-gpu-8gb", page.Find("[data-testid=editing-name]").TextContent));
        Assert.NotNull(page.Find("[data-testid=yaml-input]").GetAttribute("readonly"));
        Assert.Contains("Shipped with cf-orch, read-only", page.Markup, StringComparison.Ordinal);
        Assert.False(page.Find("[data-testid=copy-profile]").HasAttribute("disabled"));
        Assert.Empty(page.FindAll("[data-testid=save]"));
    }

    [Fact]
    public void Switching_away_from_unsaved_edits_asks_first()
    {
        UseTestProfile();
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();
        var edited = TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal);
        Type(page, edited, () => Assert.NotEmpty(page.FindAll("[data-testid=profile-valid]")));

        page.ClickOn("button[aria-label='Open single-gpu-8gb']");
        dialogs.WaitForAssertion(() => Assert.Contains("Discard your unsaved changes to test?", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Keep editing");
        page.WaitForAssertion(() => Assert.Empty(dialogs.FindAll(".mud-dialog")));
        Assert.Equal("test", page.Find("[data-testid=editing-name]").TextContent);

        // The edit is still there (the browser keeps the typed text; the page still has it to save).
        Assert.Contains("+     max_mb: 3500", page.Find("[data-testid=profile-diff]").TextContent, StringComparison.Ordinal);
        Assert.Null(page.Find("[data-testid=save-wrapper]").GetAttribute("title"));

        page.ClickOn("button[aria-label='Open single-gpu-8gb']");
        dialogs.WaitForAssertion(() => Assert.Contains("Discard your unsaved changes to test?", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Discard");
        page.WaitForAssertion(() => Assert.Equal("single-gpu-8gb", page.Find("[data-testid=editing-name]").TextContent));
    }

    [Fact]
    public void A_profile_saved_elsewhere_meanwhile_is_not_overwritten_and_revert_loads_the_new_version()
    {
        UseTestProfile();
        var snackbars = Render<MudSnackbarProvider>();
        var page = RenderAs<ProfilesPage>();
        Type(page, TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal), () => Assert.NotEmpty(page.FindAll("[data-testid=profile-valid]")));

        // Another tab (or the API) saves the same profile.
        var theirs = TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 2500\n", StringComparison.Ordinal);
        Services.GetRequiredService<ProfileStore>().Save("test", theirs);
        page.ClickOn("[data-testid=save]");

        snackbars.WaitForAssertion(() => Assert.Contains("test was changed elsewhere since you opened it", snackbars.Markup, StringComparison.Ordinal));
        Assert.Equal(theirs, File.ReadAllText(Path.Combine(Data.Path, "profiles", "test.yaml")));

        page.ClickOn("[data-testid=revert]");
        page.WaitForAssertion(() => Assert.Equal(theirs, page.Find("[data-testid=yaml-input]").GetAttribute("value")));
    }

    [Fact]
    public void A_second_copy_of_a_shipped_profile_gets_a_new_name_instead_of_replacing_the_first()
    {
        UseTestProfile();
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();

        foreach (var expected in new[] { "single-gpu-8gb-custom", "single-gpu-8gb-custom-2" })
        {
            page.ClickOn("button[aria-label='Open single-gpu-8gb']");
            page.WaitForAssertion(() => Assert.Equal("single-gpu-8gb", page.Find("[data-testid=editing-name]").TextContent));
            page.ClickOn("[data-testid=copy-profile]");
            dialogs.WaitForAssertion(() => Assert.Contains($"as {expected}?", dialogs.Markup, StringComparison.Ordinal));
            dialogs.ClickOn("button", b => b.TextContent.Trim() == "Copy");
            page.WaitForAssertion(() => Assert.Equal(expected, page.Find("[data-testid=editing-name]").TextContent));
        }

        Assert.True(File.Exists(Path.Combine(Data.Path, "profiles", "single-gpu-8gb-custom.yaml")));
        Assert.Contains("name: single-gpu-8gb-custom-2", File.ReadAllText(Path.Combine(Data.Path, "profiles", "single-gpu-8gb-custom-2.yaml")), StringComparison.Ordinal);
    }

    [Fact]
    public void Use_this_profile_shows_what_it_does_then_makes_it_the_one_in_use()
    {
        UseTestProfile();
        var registry = Services.GetRequiredService<CfOrch.Core.Profiles.ProfileRegistry>();
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();
        Assert.Empty(page.FindAll("[data-testid=use-profile]"));

        page.ClickOn("button[aria-label='Open single-gpu-8gb']");
        page.WaitForAssertion(() => Assert.Equal("single-gpu-8gb", page.Find("[data-testid=editing-name]").TextContent));
        page.ClickOn("[data-testid=use-profile]");

        dialogs.WaitForAssertion(() => Assert.Contains("Use single-gpu-8gb instead of test?", dialogs.Markup, StringComparison.Ordinal));
        Assert.Contains("The choice is kept across restarts.", dialogs.Markup, StringComparison.Ordinal);
        Assert.Equal("test", registry.Active.Profile.Name);
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Use");

        page.WaitForAssertion(() => Assert.Equal("single-gpu-8gb", page.Find("[data-testid=active-profile-name]").TextContent));
        Assert.Equal("single-gpu-8gb", registry.Active.Profile.Name);
        Assert.Empty(page.FindAll("[data-testid=use-profile]"));
    }

    [Fact]
    public void A_broken_profile_of_yours_is_listed_with_its_error_and_opens_in_the_editor_to_be_fixed()
    {
        Data.Write("profiles/my-rig.yaml", "schema_version: 1\nname: my-rig\nservices:\n  web:\n    max_mb: 100\n    priority: 1\n    managd: {}\n");
        UseTestProfile();
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();

        var row = page.FindAll("[data-testid=profiles-table] tbody tr").Single(r => r.TextContent.Contains("my-rig", StringComparison.Ordinal));
        Assert.Contains("does not load:", row.QuerySelector("[data-testid=profile-broken]")!.TextContent, StringComparison.Ordinal);
        Assert.Contains("unknown key 'managd'", row.TextContent, StringComparison.Ordinal);

        page.ClickOn("button[aria-label='Open my-rig']");
        page.WaitForAssertion(() => Assert.Equal("my-rig", page.Find("[data-testid=editing-name]").TextContent));
        Assert.Contains("managd", page.Find("[data-testid=yaml-input]").GetAttribute("value"), StringComparison.Ordinal);
        Assert.Contains("unknown key 'managd'", page.Find("[data-testid=profile-errors]").TextContent, StringComparison.Ordinal);

        // Fixed in the editor and saved: it loads, and the row says so.
        var fixedText = "schema_version: 1\nname: my-rig\nservices:\n  web:\n    max_mb: 100\n    priority: 1\n";
        Type(page, fixedText, () => Assert.Empty(page.FindAll("[data-testid=profile-errors]")));
        page.ClickOn("[data-testid=save]");
        dialogs.WaitForAssertion(() => Assert.Contains("Save my-rig? It is not the profile in use", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Save");

        page.WaitForAssertion(() => Assert.NotNull(Services.GetRequiredService<ProfileRegistry>().Find("my-rig")));
        page.WaitForAssertion(() => Assert.Empty(page.FindAll("[data-testid=profile-broken]")));
    }

    [Fact]
    public void A_new_version_on_disk_is_offered_to_an_unsaved_edit_not_forced_on_it()
    {
        UseTestProfile();
        var registry = Services.GetRequiredService<ProfileRegistry>();
        var page = RenderAs<ProfilesPage>();
        Type(page, TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal), () => Assert.NotEmpty(page.FindAll("[data-testid=profile-valid]")));

        var onDisk = TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 2500\n", StringComparison.Ordinal);
        Data.Write("profiles/test.yaml", onDisk);
        registry.Reload();

        page.WaitForAssertion(() => Assert.Contains("test was changed outside this page", page.Find("[data-testid=changed-on-disk]").TextContent, StringComparison.Ordinal));
        Assert.Contains("+     max_mb: 3500", page.Find("[data-testid=profile-diff]").TextContent, StringComparison.Ordinal);

        page.ClickOn("[data-testid=load-changed]");

        page.WaitForAssertion(() => Assert.Equal(onDisk, page.Find("[data-testid=yaml-input]").GetAttribute("value")));
        Assert.Empty(page.FindAll("[data-testid=changed-on-disk]"));
    }

    [Fact]
    public void A_profile_that_breaks_on_disk_after_it_loaded_is_marked_and_opens_with_its_broken_text_while_the_last_good_version_runs()
    {
        UseTestProfile();
        var registry = Services.GetRequiredService<ProfileRegistry>();
        var dialogs = Render<MudDialogProvider>();
        var page = RenderAs<ProfilesPage>();

        var broken = TestProfile.Replace("    priority: 1\n", "    priorty: 1\n", StringComparison.Ordinal);
        Data.Write("profiles/test.yaml", broken);
        registry.Reload();

        // The last good version stays in use; the page shows the file as it is now, with its error at its line.
        Assert.Equal(4096, registry.Active.Profile.Services["ollama"].MaxMb);
        page.WaitForAssertion(() => Assert.Equal(broken, page.Find("[data-testid=yaml-input]").GetAttribute("value")));
        Assert.Contains("unknown key 'priorty'", page.Find("[data-testid=profile-errors]").TextContent, StringComparison.Ordinal);
        var row = page.FindAll("[data-testid=profiles-table] tbody tr").Single(r => r.TextContent.Contains("test", StringComparison.Ordinal) && r.TextContent.Contains("yours", StringComparison.Ordinal));
        Assert.Contains("the file does not load (its last good version is in use)", row.QuerySelector("[data-testid=profile-broken]")!.TextContent, StringComparison.Ordinal);
        Assert.Single(page.FindAll("[data-testid=profiles-table] tbody tr"), r => r.TextContent.Contains("test", StringComparison.Ordinal) && r.TextContent.Contains("yours", StringComparison.Ordinal));

        // Fixed in the editor and saved: it loads again and the mark goes.
        Type(page, TestProfile.Replace("    max_mb: 4096\n", "    max_mb: 3000\n", StringComparison.Ordinal), () => Assert.Empty(page.FindAll("[data-testid=profile-errors]")));
        page.ClickOn("[data-testid=save]");
        dialogs.WaitForAssertion(() => Assert.Contains("Save test and apply it now?", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Save");

        page.WaitForAssertion(() => Assert.Empty(page.FindAll("[data-testid=profile-broken]")));
        Assert.Equal(3000, registry.Active.Profile.Services["ollama"].MaxMb);
    }

    [Fact]
    public async Task The_save_shortcut_saves_the_text_just_typed_and_says_why_when_there_is_nothing_to_save()
    {
        UseTestProfile();
        var dialogs = Render<MudDialogProvider>();
        var snackbars = Render<MudSnackbarProvider>();
        var page = RenderAs<ProfilesPage>();

        page.ClickOn("[data-testid=save-shortcut]");
        snackbars.WaitForAssertion(() => Assert.Contains("Not saved: Nothing changed.", snackbars.Markup, StringComparison.Ordinal));

        // Typed and saved at once, before validation ran: the shortcut validates the text itself.
        var edited = TestProfile.Replace("    max_mb: 3000\n", "    max_mb: 3500\n", StringComparison.Ordinal);
        await page.InvokeAsync(() => page.Find("[data-testid=yaml-input]").InputAsync(new() { Value = edited }));
        page.ClickOn("[data-testid=save-shortcut]");
        dialogs.WaitForAssertion(() => Assert.Contains("Save test and apply it now?", dialogs.Markup, StringComparison.Ordinal));
        dialogs.ClickOn("button", b => b.TextContent.Trim() == "Save");
        page.WaitForAssertion(() => Assert.Equal(edited, File.ReadAllText(Path.Combine(Data.Path, "profiles", "test.yaml"))));
    }
}
