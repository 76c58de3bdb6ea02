using System.Net;
using CfOrch.Core.Profiles;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Api;

public sealed class ProfilesApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_list_has_cf_orchs_fields_and_names_the_active_profile()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var answer = (await host.GetAsync("/api/profiles")).Is(HttpStatusCode.OK).Json;

        Assert.Equal("engine-test", answer.GetProperty("active").GetString());
        var profiles = answer.GetProperty("profiles").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        Assert.Equal(8192, profiles["single-gpu-8gb"].GetProperty("vram_total_mb").GetInt64());
        Assert.Equal("shipped", profiles["single-gpu-8gb"].GetProperty("origin").GetString());
        Assert.True(profiles["engine-test"].GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task A_profile_is_served_as_yaml_or_json()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var yaml = (await host.GetAsync("/api/profiles/single-gpu-8gb")).Is(HttpStatusCode.OK);
        Assert.Equal("application/yaml", yaml.MediaType);
        Assert.Contains("name: single-gpu-8gb", yaml.Body, StringComparison.Ordinal);

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/profiles/single-gpu-8gb", UriKind.Relative));
        request.Headers.Accept.ParseAdd("application/json");
        using var json = await host.Client.SendAsync(request, Ct);
        Assert.Contains("\"yaml\":", await json.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/profiles/nope", HttpStatusCode.NotFound, "no profile is named 'nope'")]
    [InlineData("/api/profiles/..%2F..%2Fetc%2Fpasswd", HttpStatusCode.UnprocessableEntity, "is not a profile name")]
    [InlineData("/api/profiles/.hidden", HttpStatusCode.UnprocessableEntity, "is not a profile name")]
    public async Task Unknown_names_and_path_traversal_are_refused_on_read(string path, HttpStatusCode status, string expected)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        Assert.Contains(expected, (await host.GetAsync(path)).Is(status).Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("..%2F..%2Fetc%2Fcf-orch-evil")]
    [InlineData("a%2Fb")]
    [InlineData(".hidden")]
    public async Task A_put_with_a_path_in_its_name_is_refused_and_writes_nothing(string name)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var before = FilesUnder(host.App.DataDir);

        var detail = (await host.SendAsync(HttpMethod.Put, $"/api/profiles/{name}", "schema_version: 1\nname: x\n", contentType: "application/yaml")).Is(HttpStatusCode.UnprocessableEntity).Detail;

        Assert.Contains("is not a profile name", detail, StringComparison.Ordinal);
        Assert.False(File.Exists("/etc/cf-orch-evil.yaml"));
        Assert.Equal(before, FilesUnder(host.App.DataDir));
    }

    [Theory]
    [InlineData("over the size cap", 300_000, "services: {}\n# ", "x", "", HttpStatusCode.RequestEntityTooLarge, "the body is larger than 256 KiB")]
    [InlineData("nested 100,000 deep", 100_000, "services: ", "[", "", HttpStatusCode.UnprocessableEntity, "the YAML nests deeper than 32 levels")]
    public async Task A_put_of_a_yaml_bomb_is_refused_and_writes_nothing(string what, int count, string before, string repeated, string after, HttpStatusCode status, string expected)
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var body = "schema_version: 1\nname: mine\n" + before + string.Concat(Enumerable.Repeat(repeated, count)) + after;
        var files = FilesUnder(host.App.DataDir);

        var answer = (await host.SendAsync(HttpMethod.Put, "/api/profiles/mine", body, contentType: "application/yaml")).Is(status);

        Assert.Contains(expected, answer.Detail, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(host.App.DataDir, "profiles", "mine.yaml")), what);
        Assert.Equal(files, FilesUnder(host.App.DataDir));
    }

    /// <summary>The profile files under the data directory (the database's own files change with every request).</summary>
    private static string[] FilesUnder(string dataDir)
    {
        var profiles = Path.Combine(dataDir, "profiles");
        return Directory.Exists(profiles) ? [.. Directory.EnumerateFileSystemEntries(profiles, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)] : [];
    }

    [Fact]
    public async Task A_put_whose_yaml_names_another_profile_is_refused()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var answer = (await host.SendAsync(HttpMethod.Put, "/api/profiles/mine", "schema_version: 1\nname: theirs\n", contentType: "application/yaml")).Is(HttpStatusCode.UnprocessableEntity);

        Assert.Contains("the profile is named 'theirs', but it is being saved as 'mine'", answer.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_valid_profile_is_saved_atomically_with_a_backup_and_applied_without_a_restart()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, EngineApp.FreePort(), "service --port {port}", "/health")));
        var original = await File.ReadAllTextAsync(host.App.ProfilePath, Ct);
        var changed = original.Replace("max_mb: 1000", "max_mb: 1500", StringComparison.Ordinal);

        var plan = (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test?dry_run=true", changed, contentType: "application/yaml")).Is(HttpStatusCode.OK).Json;
        Assert.Equal("budget_changed", plan.GetProperty("changes")[0].GetProperty("kind").GetString());
        Assert.Equal(original, await File.ReadAllTextAsync(host.App.ProfilePath, Ct));

        var saved = (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test", changed, contentType: "application/yaml")).Is(HttpStatusCode.OK).Json;

        Assert.Equal(host.App.ProfilePath, saved.GetProperty("path").GetString());
        Assert.Equal(changed, await File.ReadAllTextAsync(host.App.ProfilePath, Ct));
        Assert.Equal(original, await File.ReadAllTextAsync(saved.GetProperty("backup").GetString()!, Ct));
        Assert.True(saved.GetProperty("active").GetBoolean());
        Assert.Equal(1500, host.Get<ProfileRegistry>().Active.Profile.Services["worker"].MaxMb);
    }

    [Fact]
    public async Task An_invalid_profile_answers_422_with_line_and_column_and_changes_nothing()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, EngineApp.FreePort(), "service --port {port}", "/health")));
        var original = await File.ReadAllTextAsync(host.App.ProfilePath, Ct);
        var broken = original.Replace("    priority: 1", "    priorty: 1", StringComparison.Ordinal);

        var answer = (await host.SendAsync(HttpMethod.Put, "/api/profiles/engine-test", broken, contentType: "application/yaml")).Is(HttpStatusCode.UnprocessableEntity);

        var errors = answer.Json.GetProperty("errors").EnumerateArray().ToList();
        var typo = errors.Single(e => e.GetProperty("path").GetString() == "services.worker.priorty");
        Assert.Equal((8, 5), (typo.GetProperty("line").GetInt32(), typo.GetProperty("column").GetInt32()));
        Assert.Contains("did you mean 'priority'", typo.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("engine-test.yaml:8:5", answer.Detail, StringComparison.Ordinal);
        Assert.Equal(original, await File.ReadAllTextAsync(host.App.ProfilePath, Ct));
        Assert.Equal(1000, host.Get<ProfileRegistry>().Active.Profile.Services["worker"].MaxMb);
    }

    [Fact]
    public async Task Saving_a_shipped_profiles_name_creates_a_user_copy_in_the_profiles_dir()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var yaml = (await host.GetAsync("/api/profiles/single-gpu-4gb")).Body.Replace("max_mb: 3072", "max_mb: 3000", StringComparison.Ordinal);

        var saved = (await host.SendAsync(HttpMethod.Put, "/api/profiles/single-gpu-4gb", yaml, contentType: "application/yaml")).Is(HttpStatusCode.OK).Json;

        Assert.Equal(Path.Combine(host.App.DataDir, "profiles", "single-gpu-4gb.yaml"), saved.GetProperty("path").GetString());
        Assert.Equal(ProfileOrigin.User, host.Get<ProfileRegistry>().Find("single-gpu-4gb")!.Origin);
        Assert.False(saved.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Another_profile_is_activated_with_its_plan_first_and_only_by_those_who_may_control()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());

        var preview = (await host.PostAsync("/api/profiles/single-gpu-8gb/activate?dry_run=true", null)).Is(System.Net.HttpStatusCode.OK).Json;
        Assert.False(preview.GetProperty("activated").GetBoolean());
        Assert.Equal("engine-test", preview.GetProperty("active_profile").GetString());
        Assert.NotEqual(0, preview.GetProperty("changes").GetArrayLength());

        (await host.PostAsync("/api/profiles/single-gpu-8gb/activate", null, remote: "192.168.1.50")).Is(System.Net.HttpStatusCode.Unauthorized);
        (await host.PostAsync("/api/profiles/nope/activate", null)).Is(System.Net.HttpStatusCode.NotFound);

        var done = (await host.PostAsync("/api/profiles/single-gpu-8gb/activate", null)).Is(System.Net.HttpStatusCode.OK).Json;
        Assert.True(done.GetProperty("activated").GetBoolean());
        Assert.Equal("single-gpu-8gb", done.GetProperty("active_profile").GetString());
        Assert.Equal("single-gpu-8gb", (await host.GetAsync("/api/profiles")).Json.GetProperty("active").GetString());
    }

    [Fact]
    public async Task A_broken_profile_of_yours_is_readable_with_its_problem_and_cannot_be_activated()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var dir = host.Get<CfOrch.Core.Profiles.ProfileRegistry>().ProfilesDir;
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "my-rig.yaml"), "schema_version: 1\nname: my-rig\nservicez: {}\n", TestContext.Current.CancellationToken);
        host.Get<CfOrch.Core.Profiles.ProfileRegistry>().Reload();

        var read = (await host.SendAsync(HttpMethod.Get, "/api/profiles/my-rig", null, headers: new Dictionary<string, string> { ["Accept"] = "application/json" })).Is(System.Net.HttpStatusCode.OK).Json;

        Assert.Contains("servicez", read.GetProperty("yaml").GetString(), StringComparison.Ordinal);
        Assert.Contains("unknown key 'servicez'", read.GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Contains("does not load, so it cannot be used", (await host.PostAsync("/api/profiles/my-rig/activate", null)).Is(System.Net.HttpStatusCode.UnprocessableEntity).Detail, StringComparison.Ordinal);
    }
}
