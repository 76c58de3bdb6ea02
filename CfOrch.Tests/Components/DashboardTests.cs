using Bunit;
using CfOrch.Core.Configuration;
using CfOrch.Web.Components.Pages;

namespace CfOrch.Tests.Components;

public sealed class DashboardTests : MudBunitContext
{
    [Fact]
    public void Shows_one_card_per_gpu_and_the_profile_in_use()
    {
        UseGpus(null, new SimulatedGpuOptions { Name = "RTX 4090", TotalMb = 24576 }, new SimulatedGpuOptions { Name = "RTX 3060", TotalMb = 12288 });

        var page = Render<Dashboard>();

        Assert.Equal(2, page.FindAll("[data-testid=gpu-card]").Count);
        Assert.Contains("single-gpu-24gb", page.Find("[data-testid=active-profile]").TextContent, StringComparison.Ordinal);
        Assert.Contains("GPUs on local", page.Find("h1").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_gpus_it_says_why_and_how_to_simulate_some()
    {
        UseGpus();

        var page = Render<Dashboard>();

        var alert = page.Find("[data-testid=no-gpus]").TextContent;
        Assert.Contains("NVML is unavailable: test machine", alert, StringComparison.Ordinal);
        Assert.Contains("CfOrch__Gpus__Mode=simulated", alert, StringComparison.Ordinal);
        Assert.Contains("cpu-16gb", page.Find("[data-testid=active-profile]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_gpu_reading_is_pushed_to_the_open_page()
    {
        var gpus = UseGpus(null, new SimulatedGpuOptions { Name = "RTX 4090", TotalMb = 24576 })!;
        var monitor = Services.GetService<CfOrch.Core.Gpus.GpuMonitor>();
        var page = Render<Dashboard>();
        Assert.Contains("0 MB of 24,576 MB used", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal);

        gpus.SetProcessUsage(0, 999, 12288, "vllm");
        monitor!.Refresh();

        page.WaitForAssertion(() => Assert.Contains("12,288 MB of 24,576 MB used (50%)", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal), TimeSpan.FromSeconds(5));
    }
}
