using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;

namespace CfOrch.Tests.Gpus;

public sealed class SimulatedGpuInventoryTests
{
    [Fact]
    public void Gpus_come_from_configuration_in_order()
    {
        using var inventory = new SimulatedGpuInventory([
            new SimulatedGpuOptions { Name = "RTX 4090", TotalMb = 24576, UsedMb = 800, TemperatureC = 41, UtilizationPercent = 3 },
            new SimulatedGpuOptions { Name = "RTX 3060", TotalMb = 12288 },
        ]);

        var gpus = inventory.Read();

        Assert.Equal(GpuSource.Simulated, inventory.Source);
        Assert.Equal([0, 1], gpus.Select(g => g.Index));
        Assert.Equal(("RTX 4090", 24576L, 800L, 23776L, 41), (gpus[0].Name, gpus[0].TotalMb, gpus[0].UsedMb, gpus[0].FreeMb, gpus[0].TemperatureC!.Value));
        Assert.Equal(0, gpus[1].UsedMb);
        Assert.NotEqual(gpus[0].Uuid, gpus[1].Uuid);
    }

    [Fact]
    public void Per_process_usage_can_be_set_and_removed_at_run_time()
    {
        using var inventory = new SimulatedGpuInventory([new SimulatedGpuOptions { Name = "g", TotalMb = 8192, UsedMb = 200 }]);

        inventory.SetProcessUsage(0, 4242, 3000, "ollama");
        inventory.SetProcessUsage(0, 77, 1000, "python3");
        var gpu = inventory.Read()[0];

        Assert.Equal(4200, gpu.UsedMb);
        Assert.Equal([(77, 1000L), (4242, 3000L)], gpu.Processes.Select(p => (p.Pid, p.UsedMb!.Value)));
        Assert.Equal("ollama", gpu.Processes[1].Name);

        inventory.SetProcessUsage(0, 4242, 0);
        Assert.Equal(1200, inventory.Read()[0].UsedMb);
    }

    [Fact]
    public void Usage_never_reads_above_the_cards_memory()
    {
        using var inventory = new SimulatedGpuInventory([new SimulatedGpuOptions { Name = "g", TotalMb = 4096 }]);

        inventory.SetProcessUsage(0, 1, 5000);

        Assert.Equal(4096, inventory.Read()[0].UsedMb);
        Assert.Equal(0, inventory.Read()[0].FreeMb);
    }

    [Fact]
    public void An_unknown_gpu_index_is_an_error()
    {
        using var inventory = new SimulatedGpuInventory([new SimulatedGpuOptions { Name = "g", TotalMb = 4096 }]);

        Assert.Throws<ArgumentOutOfRangeException>(() => inventory.SetProcessUsage(1, 1, 10));
    }
}
