using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>What a self-hoster sees when the configuration or the profile is wrong.</summary>
public sealed class StartupTests(BrowserFixture browser)
{
    [Fact]
    public async Task A_profile_with_a_typo_is_refused_with_its_position_and_the_app_runs_no_services_instead_of_another_profile()
    {
        var profile = Path.Combine(Path.GetTempPath(), $"cf-orch-typo-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(profile, """
            schema_version: 1
            name: my-rig
            vram_total_mb: 12288
            services:
              ollama:
                max_mb: 8192
                priority: 1
                managed:
                  type: process
                  adopt: true
                  exec_path: /usr/local/bin/ollama
                  args_template: serve
                  prot: 11434
                  host_port: 11434
                  health_path: /api/tags
            """, TestContext.Current.CancellationToken);
        try
        {
            var environment = AppProcess.SimulatedGpus();
            environment["CfOrch__Profile"] = profile;
            await using var app = await AppProcess.StartAsync(environment, TestContext.Current.CancellationToken);

            Assert.Contains($"{profile}:13:7: services.ollama.managed.prot: unknown key 'prot' (did you mean 'port'?)", app.Output, StringComparison.Ordinal);
            Assert.Contains($"Using profile 'my-rig' from {profile}: {profile} is invalid (its errors are listed above) and no earlier version of it was saved: cf-orch runs no services until it is fixed", app.Output, StringComparison.Ordinal);

            await using var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1440, Height = 900 } });
            var page = await context.NewPageAsync();
            await page.GotoInteractiveAsync(app.BaseAddress);
            await Assertions.Expect(page.GetByTestId("profile-problem")).ToContainTextAsync($"{profile}:13:7: services.ollama.managed.prot: unknown key 'prot'");
            await Assertions.Expect(page.GetByTestId("active-profile-reason")).ToContainTextAsync("cf-orch runs no services until it is fixed");
            await page.ScreenshotToAsync("profile-error.png");
        }
        finally
        {
            File.Delete(profile);
        }
    }

    [Fact]
    public async Task An_invalid_setting_stops_start_up_naming_its_key()
    {
        var environment = AppProcess.SimulatedGpus();
        environment["CfOrch__Gpus__Mode"] = "cuda";
        environment["CfOrch__Gpus__Simulated__1__TotalMb"] = "lots";

        var (exitCode, output) = await AppProcess.RunToExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(1, exitCode);
        Assert.Contains("cf-orch cannot start: the configuration is invalid.", output, StringComparison.Ordinal);
        Assert.Contains("CfOrch:Gpus:Mode: 'cuda' is not one of auto, nvml, simulated, none.", output, StringComparison.Ordinal);
        Assert.Contains("CfOrch:Gpus:Simulated:1:TotalMb: 'lots' is not a whole number.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_data_directory_that_cannot_be_created_stops_start_up_with_one_line_that_says_so()
    {
        // A file where the data directory's parent should be: no directory can be made there, whoever runs cf-orch.
        var file = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-file-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(file, "not a directory", TestContext.Current.CancellationToken);
        try
        {
            var environment = AppProcess.SimulatedGpus();
            environment["CfOrch__DataDir"] = Path.Combine(file, "data");

            var (exitCode, output) = await AppProcess.RunToExitAsync(environment, TestContext.Current.CancellationToken);

            Assert.Equal(1, exitCode);
            Assert.Contains($"cf-orch cannot write its data directory {Path.Combine(file, "data")}", output, StringComparison.Ordinal);
            Assert.Contains("or set CfOrch:DataDir to one", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Now listening", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_read_only_data_directory_stops_start_up_with_one_line_that_says_so()
    {
        // A real read-only file system (root ignores file modes, so chmod would prove nothing): a tmpfs mounted read-only.
        var mount = Path.Combine(Path.GetTempPath(), $"cf-orch-e2e-ro-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        if (!await RunAsync("mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mount))
        {
            Directory.Delete(mount);
            Assert.Skip("mounting a read-only tmpfs needs root with CAP_SYS_ADMIN (CI has it); this machine refused");
        }

        try
        {
            var environment = AppProcess.SimulatedGpus();
            environment["CfOrch__DataDir"] = mount;

            var (exitCode, output) = await AppProcess.RunToExitAsync(environment, TestContext.Current.CancellationToken);

            Assert.Equal(1, exitCode);
            Assert.Contains($"cf-orch cannot write its data directory {mount}", output, StringComparison.Ordinal);
            Assert.Contains("Read-only file system", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync("umount", mount);
            Directory.Delete(mount);
        }
    }

    private static async Task<bool> RunAsync(string file, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using var process = System.Diagnostics.Process.Start(start)!;
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
