using Bunit;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Web.Components.Pages;
using CfOrch.Web.Components.State;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CfOrch.Tests.Components;

/// <summary>The dashboard over the engine: what the engine itself says (the profile it chose, why there are no GPUs, a failed reading).</summary>
public sealed class DashboardEngineTests : EngineBunitContext
{
    [Fact]
    public void Shows_one_card_per_gpu_and_the_profile_in_use()
    {
        UseGpus(null, new SimulatedGpuOptions { Name = "RTX 4090", TotalMb = 24576 }, new SimulatedGpuOptions { Name = "RTX 3060", TotalMb = 12288 });

        var page = RenderAs<Dashboard>();

        Assert.Equal(2, page.FindAll("[data-testid=gpu-card]").Count);
        Assert.Contains("single-gpu-24gb", page.Find("[data-testid=active-profile]").TextContent, StringComparison.Ordinal);
        Assert.Contains("GPUs on local", page.Find("h1").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_gpus_it_says_why_and_how_to_simulate_some()
    {
        UseGpus();

        var page = RenderAs<Dashboard>();

        var alert = page.Find("[data-testid=no-gpus]").TextContent;
        Assert.Contains("CfOrch:Gpus:Mode is 'none'", alert, StringComparison.Ordinal);
        Assert.Contains("CfOrch__Gpus__Mode=simulated", alert, StringComparison.Ordinal);
        Assert.Contains("cpu-16gb", page.Find("[data-testid=active-profile]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_gpu_reading_keeps_the_last_figures_and_says_they_are_getting_old()
    {
        var flaky = new FlakyInventory(new SimulatedGpuInventory([new SimulatedGpuOptions { Name = "RTX 4090", TotalMb = 24576, UsedMb = 1000 }]));
        UseTestProfile(configure: s => s.Replace(ServiceDescriptor.Singleton<IGpuInventory>(flaky)));
        var page = RenderAs<Dashboard>();
        Assert.Equal("just now", page.Find("[data-testid=read-ago]").TextContent);
        Assert.Empty(page.FindAll("[data-testid=gpu-read-error]"));

        Time.Advance(TimeSpan.FromSeconds(30));
        flaky.Failure = "NVML_ERROR_GPU_IS_LOST";
        Services.GetRequiredService<GpuMonitor>().Refresh();

        page.WaitForAssertion(() =>
        {
            Time.Advance(LiveState.BatchWindow);
            Assert.Contains("Reading the GPUs failed", page.Find("[data-testid=gpu-read-error]").TextContent, StringComparison.Ordinal);
        });
        Assert.Contains("NVML_ERROR_GPU_IS_LOST", page.Find("[data-testid=gpu-read-error]").TextContent, StringComparison.Ordinal);
        Assert.Matches(@"^3\d s ago$", page.Find("[data-testid=read-ago]").TextContent);
        Assert.Contains("1,000 MB of 24,576 MB used", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal);

        flaky.Failure = null;
        Services.GetRequiredService<GpuMonitor>().Refresh();
        page.WaitForAssertion(() =>
        {
            // The page takes changes in batches, on its clock.
            Time.Advance(LiveState.BatchWindow);
            Assert.Empty(page.FindAll("[data-testid=gpu-read-error]"));
        });
        Assert.Equal("just now", page.Find("[data-testid=read-ago]").TextContent);
    }

    /// <summary>An inventory whose reading fails on demand (a driver that lost its GPU).</summary>
    private sealed class FlakyInventory(SimulatedGpuInventory inner) : IGpuInventory
    {
        public string? Failure { get; set; }

        public GpuSource Source => inner.Source;

        public string Detail => inner.Detail;

        public IReadOnlyList<GpuInfo> Read() => Failure is { } failure ? throw new InvalidOperationException(failure) : inner.Read();

        public void Dispose() => inner.Dispose();
    }
}
