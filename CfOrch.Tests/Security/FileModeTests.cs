using System.Net;
using System.Runtime.Versioning;
using CfOrch.Core.Storage;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;

namespace CfOrch.Tests.Security;

/// <summary>What cf-orch writes is readable by its own user only: 0600 files in 0700 directories.</summary>
[SupportedOSPlatform("linux")]
public sealed class FileModeTests
{
    private const UnixFileMode File0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Dir0700 = File0600 | UnixFileMode.UserExecute;

    [Fact]
    public async Task Saved_profiles_backups_the_database_and_keys_are_private()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile());
        var yaml = "schema_version: 1\nname: mine\nvram_total_mb: 8192\nservices: {}\n";

        (await host.SendAsync(HttpMethod.Put, "/api/profiles/mine", yaml, contentType: "application/yaml")).Is(HttpStatusCode.OK);
        var saved = (await host.SendAsync(HttpMethod.Put, "/api/profiles/mine", yaml.Replace("8192", "4096", StringComparison.Ordinal), contentType: "application/yaml")).Is(HttpStatusCode.OK).Json;

        var dataDir = host.App.DataDir;
        Assert.Equal(Dir0700, File.GetUnixFileMode(dataDir));
        Assert.Equal(Dir0700, File.GetUnixFileMode(Path.Combine(dataDir, "profiles")));
        Assert.Equal(File0600, File.GetUnixFileMode(saved.GetProperty("path").GetString()!));
        var backup = saved.GetProperty("backup").GetString()!;
        Assert.Equal(File0600, File.GetUnixFileMode(backup));
        Assert.Equal(Dir0700, File.GetUnixFileMode(Path.GetDirectoryName(backup)!));
        Assert.Equal(File0600, File.GetUnixFileMode(Path.Combine(dataDir, "cf-orch.db")));
        foreach (var side in new[] { "-wal", "-shm" }.Select(s => Path.Combine(dataDir, "cf-orch.db" + s)).Where(File.Exists))
        {
            Assert.Equal(File0600, File.GetUnixFileMode(side));
        }

        // The sign-in page makes the app create its data-protection key.
        (await host.GetAsync("/login")).Is(HttpStatusCode.OK);
        var keys = Path.Combine(dataDir, "keys");
        Assert.Equal(Dir0700, File.GetUnixFileMode(keys));
        Assert.NotEmpty(Directory.GetFiles(keys));
        Assert.All(Directory.GetFiles(keys), k => Assert.Equal(File0600, File.GetUnixFileMode(k)));
    }

    [Fact]
    public void A_file_written_over_an_existing_readable_one_becomes_private()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "old.yaml");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, File0600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        PrivateFiles.WriteAllText(path, "new");

        Assert.Equal(File0600, File.GetUnixFileMode(path));
        Assert.Equal("new", File.ReadAllText(path));
    }
}
