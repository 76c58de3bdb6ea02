using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Profiles;
using CfOrch.Core.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CfOrch.Tests.Profiles;

public sealed class ProfileRegistryTests : IDisposable
{
    private const string UserProfile = """
        schema_version: 1
        name: my-rig
        vram_total_mb: 12288
        services:
          ollama:
            max_mb: 8000
            priority: 1
            managed:
              type: process
              adopt: true
              exec_path: /usr/local/bin/ollama
              port: 11434
              health_path: /api/tags
        """;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(24576, "single-gpu-24gb")]
    [InlineData(22000, "single-gpu-24gb")]
    [InlineData(21999, "single-gpu-16gb")]
    [InlineData(16384, "single-gpu-16gb")]
    [InlineData(14000, "single-gpu-16gb")]
    [InlineData(12288, "single-gpu-8gb")]
    [InlineData(8000, "single-gpu-8gb")]
    [InlineData(7999, "single-gpu-6gb")]
    [InlineData(5500, "single-gpu-6gb")]
    [InlineData(4096, "single-gpu-4gb")]
    [InlineData(3500, "single-gpu-4gb")]
    [InlineData(3499, "single-gpu-2gb")]
    [InlineData(2048, "single-gpu-2gb")]
    public void Auto_detection_follows_gpu_0s_memory(long totalMb, string expected)
    {
        var registry = Create(new CfOrchOptions(), totalMb);

        Assert.Equal(expected, registry.Active.Profile.Name);
        Assert.Contains($"{totalMb} MB", registry.Active.Reason, StringComparison.Ordinal);
        Assert.Empty(registry.Problems);
    }

    [Fact]
    public void No_gpu_means_cpu_16gb()
    {
        var registry = Create(new CfOrchOptions());

        Assert.Equal("cpu-16gb", registry.Active.Profile.Name);
        Assert.Contains("no GPU", registry.Active.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_gpu_0_counts_for_auto_detection()
    {
        Assert.Equal("single-gpu-4gb", ProfileRegistry.AutoDetectName([Gpu(0, 4096), Gpu(1, 24576)]));
    }

    [Fact]
    public void A_profile_can_be_picked_by_name()
    {
        var registry = Create(new CfOrchOptions { Profile = "single-gpu-8gb" }, 24576);

        Assert.Equal("single-gpu-8gb", registry.Active.Profile.Name);
        Assert.Contains("CfOrch:Profile", registry.Active.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_profile_can_be_picked_by_file_path()
    {
        var path = _dir.Write("elsewhere/rig.yaml", UserProfile);

        var registry = Create(new CfOrchOptions { Profile = path }, 24576);

        Assert.Equal("my-rig", registry.Active.Profile.Name);
        Assert.Equal(ProfileOrigin.File, registry.Active.Loaded.Origin);
        Assert.Empty(registry.Problems);
    }

    [Fact]
    public void User_profiles_are_loaded_from_the_profiles_dir_and_can_be_picked_by_name()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/rig.yaml", UserProfile);

        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192);

        Assert.Equal("my-rig", registry.Active.Profile.Name);
        Assert.Equal(ProfileOrigin.User, registry.Active.Loaded.Origin);
        Assert.Contains(registry.Profiles, p => p.Name == "single-gpu-24gb" && p.Origin == ProfileOrigin.Shipped);
    }

    [Fact]
    public void A_broken_profile_file_without_a_backup_is_refused_with_its_position_and_no_services_run()
    {
        var broken = UserProfile.Replace("      port: 11434", "      prot: 11434", StringComparison.Ordinal);
        var path = _dir.Write("rig-file.yaml", broken);

        var registry = Create(new CfOrchOptions { Profile = path }, 8192);

        // Never another profile (it might adopt or start what nobody asked for): no services, the broken text to fix.
        Assert.Equal("my-rig", registry.Active.Profile.Name);
        Assert.Empty(registry.Active.Profile.Services);
        Assert.Equal((path, broken), (registry.Active.Loaded.Source, registry.Active.Loaded.Yaml));
        Assert.Contains($"{path} is invalid (its errors are listed above) and no earlier version of it was saved: cf-orch runs no services", registry.Active.Reason, StringComparison.Ordinal);
        var problem = Assert.Single(registry.Problems);
        var error = Assert.Single(problem.Errors, e => e.Path == "services.ollama.managed.prot");
        Assert.Equal((path, 12, 7), (error.File, error.Line, error.Column));
        Assert.Contains("did you mean 'port'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_broken_profile_at_start_up_keeps_its_last_good_version_from_the_backups()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/.backups/my-rig-20261101-100000-000.yaml", UserProfile.Replace("max_mb: 8000", "max_mb: 6000", StringComparison.Ordinal));
        var newest = _dir.Write("profiles/.backups/my-rig-20261102-100000-000.yaml", UserProfile);
        _dir.Write("profiles/.backups/my-rig-20261103-100000-000.yaml", "schema_version: 1\nname: my-rig\nservices: [broken");
        _dir.Write("profiles/my-rig.yaml", UserProfile.Replace("      port: 11434", "      prot: 11434", StringComparison.Ordinal));

        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192);

        Assert.Equal("my-rig", registry.Active.Profile.Name);
        Assert.Equal(8000, registry.Active.Profile.Services["ollama"].MaxMb);
        Assert.Contains($"the last good version of 'my-rig', from the backup {newest}, is in use", registry.Active.Reason, StringComparison.Ordinal);
        Assert.Contains(registry.Problems, p => p.Errors.Any(e => e.Path == "services.ollama.managed.prot"));
    }

    [Fact]
    public void A_profile_broken_by_hand_between_two_starts_starts_with_the_version_that_last_loaded()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        var path = _dir.Write("profiles/my-rig.yaml", UserProfile.Replace("max_mb: 8000", "max_mb: 7000", StringComparison.Ordinal));
        Assert.Equal(7000, Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192).Active.Profile.Services["ollama"].MaxMb);

        // Edited by hand (never saved through cf-orch, so no backup of it exists), broken, then cf-orch restarts.
        File.WriteAllText(path, UserProfile.Replace("max_mb: 8000", "max_mb: lots", StringComparison.Ordinal));
        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192);

        Assert.Equal(7000, registry.Active.Profile.Services["ollama"].MaxMb);
        Assert.Contains($"from the backup {ProfileStore.LastGoodPath(profilesDir, "my-rig")}, is in use", registry.Active.Reason, StringComparison.Ordinal);

        // Starting on the kept copy does not overwrite it with the broken text: a third start still has it.
        Assert.Equal(7000, Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192).Active.Profile.Services["ollama"].MaxMb);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(ProfileStore.LastGoodPath(profilesDir, "my-rig")));
        }
    }

    [Fact]
    public void The_backups_of_a_profile_whose_name_starts_the_same_are_never_used()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/.backups/my-rig-large-20261105-100000-000.yaml", UserProfile.Replace("name: my-rig", "name: my-rig-large", StringComparison.Ordinal));
        _dir.Write("profiles/my-rig.yaml", "schema_version: 1\nname: my-rig\nservices: [broken");

        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "my-rig" }, 8192);

        Assert.Empty(registry.Active.Profile.Services);
        Assert.Contains("no earlier version of it was saved", registry.Active.Reason, StringComparison.Ordinal);
        Assert.Equal(["my-rig-large-20261105-100000-000.yaml"], ProfileStore.BackupsOf(System.IO.Path.Combine(profilesDir, ".backups"), "my-rig-large").Select(System.IO.Path.GetFileName));
        Assert.Empty(ProfileStore.BackupsOf(System.IO.Path.Combine(profilesDir, ".backups"), "my-rig"));
    }

    [Fact]
    public void A_broken_user_file_with_a_shipped_name_does_not_fall_back_to_the_shipped_profile()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/8gb.yaml", "schema_version: 1\nname: single-gpu-8gb\nservices: [broken");

        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir, Profile = "single-gpu-8gb" }, 8192);

        // The shipped profile would start services the user replaced on purpose: none run until the file is fixed.
        Assert.Equal("single-gpu-8gb", registry.Active.Profile.Name);
        Assert.Empty(registry.Active.Profile.Services);
        Assert.Equal(ProfileOrigin.User, registry.Active.Loaded.Origin);
        Assert.Contains("is invalid", registry.Active.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_profile_name_is_reported_and_no_services_run()
    {
        var registry = Create(new CfOrchOptions { Profile = "single-gpu-9gb" }, 4096);

        Assert.Empty(registry.Active.Profile.Services);
        Assert.Contains("no profile has that name: cf-orch runs no services", registry.Active.Reason, StringComparison.Ordinal);
        Assert.Contains(registry.Problems, p => p.Errors.Any(e => e.Message.Contains("no profile is named 'single-gpu-9gb'", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_profile_broken_after_start_never_replaces_the_good_one()
    {
        var path = _dir.Write("rig.yaml", UserProfile);
        var registry = Create(new CfOrchOptions { Profile = path }, 8192);
        var changes = 0;
        registry.Changed += () => changes++;

        File.WriteAllText(path, UserProfile.Replace("max_mb: 8000", "max_mb: eight", StringComparison.Ordinal));
        registry.Reload();

        Assert.Equal(1, changes);
        Assert.Equal("my-rig", registry.Active.Profile.Name);
        Assert.Equal(8000, registry.Active.Profile.Services["ollama"].MaxMb);
        Assert.Contains("last good version", registry.Active.Reason, StringComparison.Ordinal);
        Assert.Equal("services.ollama.max_mb", Assert.Single(Assert.Single(registry.Problems).Errors).Path);

        File.WriteAllText(path, UserProfile.Replace("max_mb: 8000", "max_mb: 6000", StringComparison.Ordinal));
        registry.Reload();

        Assert.Equal(6000, registry.Active.Profile.Services["ollama"].MaxMb);
        Assert.Empty(registry.Problems);
    }

    [Fact]
    public void A_broken_user_profile_keeps_its_last_good_version_on_reload()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        var path = _dir.Write("profiles/rig.yaml", UserProfile);
        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir }, 8192);

        File.WriteAllText(path, "schema_version: 1\nname: [");
        registry.Reload();

        Assert.Equal(8000, registry.Find("my-rig")!.Profile.Services["ollama"].MaxMb);
        Assert.Contains("last good version of 'my-rig'", Assert.Single(registry.Problems).Consequence, StringComparison.Ordinal);
    }

    [Fact]
    public void A_user_profile_with_a_shipped_name_replaces_the_shipped_one()
    {
        var profilesDir = System.IO.Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/8gb.yaml", UserProfile.Replace("name: my-rig", "name: single-gpu-8gb", StringComparison.Ordinal).Replace("12288", "8192", StringComparison.Ordinal));

        var registry = Create(new CfOrchOptions { ProfilesDir = profilesDir }, 8192);

        Assert.Equal(ProfileOrigin.User, registry.Active.Loaded.Origin);
        Assert.Equal(8000, registry.Active.Profile.Services["ollama"].MaxMb);
    }

    [Fact]
    public void A_profile_file_over_the_size_cap_is_refused_unread()
    {
        var path = _dir.Write("profiles/big.yaml", UserProfile.Replace("my-rig", "big", StringComparison.Ordinal) + "\n# " + new string('x', ProfileParser.MaxFileBytes) + "\n");

        var registry = Create(new CfOrchOptions(), 24576);

        var problem = Assert.Single(registry.Problems);
        var error = Assert.Single(problem.Errors);
        Assert.Equal((path, "the file is larger than 256 KiB; a profile is a short YAML file"), (error.File, error.Message));
        Assert.Null(registry.Find("big"));
    }

    [Fact]
    public void A_profile_chosen_to_be_used_is_used_at_once_and_after_a_restart_over_the_configured_one()
    {
        var registry = Create(new CfOrchOptions { Profile = "single-gpu-24gb" }, 24576);
        var changed = 0;
        registry.Changed += () => changed++;

        registry.Activate("single-gpu-8gb");

        Assert.Equal("single-gpu-8gb", registry.Active.Profile.Name);
        Assert.Equal(1, changed);
        Assert.Contains("it overrides CfOrch:Profile", registry.Active.Reason, StringComparison.Ordinal);
        var restarted = Create(new CfOrchOptions { Profile = "single-gpu-24gb" }, 24576);
        Assert.Equal("single-gpu-8gb", restarted.Active.Profile.Name);
        Assert.Empty(restarted.Problems);

        var unknown = Assert.Throws<ArgumentException>(() => registry.Activate("no-such-profile"));
        Assert.Contains("no valid profile is named 'no-such-profile'", unknown.Message, StringComparison.Ordinal);
        Assert.Equal("single-gpu-8gb", registry.Active.Profile.Name);
    }

    [Fact]
    public void A_chosen_profile_that_is_gone_gives_way_to_the_configured_one_and_says_so()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "profiles"));
        File.WriteAllText(Path.Combine(_dir.Path, "profiles", "my-rig.yaml"), UserProfile);
        var registry = Create(new CfOrchOptions(), 24576);
        registry.Activate("my-rig");
        Assert.Equal("my-rig", registry.Active.Profile.Name);
        File.Delete(Path.Combine(_dir.Path, "profiles", "my-rig.yaml"));

        var restarted = Create(new CfOrchOptions(), 24576);

        Assert.Equal("single-gpu-24gb", restarted.Active.Profile.Name);
        Assert.Contains(restarted.Problems, p => p.Errors.Any(e => e.Message == "the profile chosen last, 'my-rig', is not there any more"));
    }

    [Fact]
    public async Task A_profile_file_changed_on_disk_is_read_again_without_a_save()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "profiles"));
        var file = Path.Combine(_dir.Path, "profiles", "my-rig.yaml");
        File.WriteAllText(file, UserProfile);
        var options = new CfOrchOptions { Profile = "my-rig" };
        var registry = Create(options, 24576);
        using var watcher = new ProfileWatcher(registry, Options.Create(options), TimeProvider.System, NullLogger<ProfileWatcher>.Instance);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        registry.Changed += () => changed.TrySetResult();
        watcher.Start();

        File.WriteAllText(file, UserProfile.Replace("max_mb: 8000", "max_mb: 7000", StringComparison.Ordinal));

        await changed.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(7000, registry.Active.Profile.Services["ollama"].MaxMb);
    }

    private ProfileRegistry Create(CfOrchOptions options, params long[] gpuTotals)
    {
        options.DataDir = _dir.Path;
        var inventory = gpuTotals.Length == 0
            ? (IGpuInventory)new NoGpuInventory("test")
            : new SimulatedGpuInventory(gpuTotals.Select(t => new SimulatedGpuOptions { Name = "Test GPU", TotalMb = t }));
        var monitor = new GpuMonitor(inventory, TimeProvider.System, NullLogger<GpuMonitor>.Instance);
        return new ProfileRegistry(Options.Create(options), monitor, NullLogger<ProfileRegistry>.Instance);
    }

    private static GpuInfo Gpu(int index, long totalMb) => new() { Index = index, Name = "g", TotalMb = totalMb, UsedMb = 0 };
}
