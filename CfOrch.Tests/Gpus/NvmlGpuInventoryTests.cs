using CfOrch.Core;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Gpus.Nvml;

namespace CfOrch.Tests.Gpus;

public sealed class NvmlGpuInventoryTests
{
    [Fact]
    public void Devices_are_read_with_memory_utilisation_temperature_and_processes()
    {
        var api = new FakeNvmlApi();
        api.Devices.Add(new FakeNvmlApi.Device("NVIDIA GeForce RTX 4090", "GPU-aaaa", 24564UL << 20, 20000UL << 20, 37, 45,
            [new NvmlProcessInfoV2 { Pid = 4242, UsedGpuMemory = 3000UL << 20 }, new NvmlProcessInfoV2 { Pid = 17, UsedGpuMemory = NvmlConventions.ValueNotAvailable }]));

        Assert.True(NvmlGpuInventory.TryCreate(api, pid => pid == 4242 ? "ollama" : null, out var inventory, out _));
        var gpu = Assert.Single(inventory!.Read());

        Assert.Equal(GpuSource.Nvml, inventory.Source);
        Assert.Equal("NVML, driver 550.54.15", inventory.Detail);
        Assert.Equal(("NVIDIA GeForce RTX 4090", "GPU-aaaa", 24564L, 4564L, 37, 45), (gpu.Name, gpu.Uuid, gpu.TotalMb, gpu.UsedMb, gpu.UtilizationPercent!.Value, gpu.TemperatureC!.Value));
        Assert.Equal([new GpuProcess(17, null, null), new GpuProcess(4242, 3000, "ollama")], gpu.Processes);
        Assert.Null(gpu.Error);
    }

    [Fact]
    public void What_a_device_does_not_support_is_left_out_not_fatal()
    {
        var api = new FakeNvmlApi();
        api.Devices.Add(new FakeNvmlApi.Device("Tesla", "GPU-b", 16384UL << 20, 16000UL << 20, null, null, null));

        NvmlGpuInventory.TryCreate(api, _ => null, out var inventory, out _);
        var gpu = inventory!.Read()[0];

        Assert.Null(gpu.TemperatureC);
        Assert.Null(gpu.UtilizationPercent);
        Assert.Empty(gpu.Processes);
        Assert.Null(gpu.Error);
    }

    [Fact]
    public void A_lost_gpu_is_reported_on_its_card_and_the_others_still_read()
    {
        var api = new FakeNvmlApi();
        api.Devices.Add(new FakeNvmlApi.Device("A", "GPU-a", 8192UL << 20, 8192UL << 20, 0, 30, []) { Handle = NvmlReturn.GpuIsLost });
        api.Devices.Add(new FakeNvmlApi.Device("B", "GPU-b", 8192UL << 20, 4096UL << 20, 0, 30, []));

        NvmlGpuInventory.TryCreate(api, _ => null, out var inventory, out _);
        var gpus = inventory!.Read();

        Assert.Contains("fallen off the bus", gpus[0].Error, StringComparison.Ordinal);
        Assert.Equal(4096, gpus[1].UsedMb);
    }

    [Fact]
    public void A_missing_library_says_why_in_words()
    {
        var api = new FakeNvmlApi { InitThrows = new DllNotFoundException("libnvidia-ml.so.1") };

        Assert.False(NvmlGpuInventory.TryCreate(api, null, out var inventory, out var reason));

        Assert.Null(inventory);
        Assert.Contains("libnvidia-ml.so.1 was not found", reason, StringComparison.Ordinal);
        Assert.Contains("NVIDIA runtime", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failing_init_reports_nvmls_own_words()
    {
        var api = new FakeNvmlApi { InitResult = NvmlReturn.DriverNotLoaded };

        Assert.False(NvmlGpuInventory.TryCreate(api, null, out _, out var reason));

        Assert.Equal("NVML failed to initialise: the NVIDIA driver is not loaded", reason);
    }

    [Fact]
    public void Dispose_shuts_nvml_down_once()
    {
        var api = new FakeNvmlApi();
        NvmlGpuInventory.TryCreate(api, null, out var inventory, out _);

        inventory!.Dispose();
        inventory.Dispose();

        Assert.Equal(1, api.Shutdowns);
        Assert.Throws<ObjectDisposedException>(() => inventory.Read());
    }

    [Fact]
    public void Auto_mode_on_a_machine_without_nvml_falls_back_to_simulated_gpus_and_says_why()
    {
        var options = new GpuOptions { Simulated = [new SimulatedGpuOptions { Name = "Sim", TotalMb = 8192 }] };

        var (inventory, explanation) = GpuInventoryFactory.Create(options, new FakeNvmlApi { InitThrows = new DllNotFoundException() });

        Assert.Equal(GpuSource.Simulated, inventory.Source);
        Assert.Contains("NVML is unavailable (libnvidia-ml.so.1 was not found", explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_mode_without_nvml_or_simulated_gpus_tracks_none()
    {
        var (inventory, explanation) = GpuInventoryFactory.Create(new GpuOptions(), new FakeNvmlApi { InitThrows = new DllNotFoundException() });

        Assert.Equal(GpuSource.None, inventory.Source);
        Assert.Empty(inventory.Read());
        Assert.Contains("no simulated GPUs are configured", explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_mode_prefers_nvml_when_it_loads()
    {
        var api = new FakeNvmlApi();
        api.Devices.Add(new FakeNvmlApi.Device("Real", "GPU-r", 8192UL << 20, 8192UL << 20, 0, 30, []));

        var (inventory, _) = GpuInventoryFactory.Create(new GpuOptions { Simulated = [new SimulatedGpuOptions { Name = "Sim", TotalMb = 1 }] }, api);

        Assert.Equal(GpuSource.Nvml, inventory.Source);
        Assert.Equal("Real", inventory.Read()[0].Name);
    }

    [Fact]
    public void The_real_binding_on_this_machine_either_reads_gpus_or_explains_why_not()
    {
        // On CI (no driver) this exercises the resolver and the DllNotFoundException path of the real P/Invoke binding;
        // on a GPU machine it reads the real devices.
        if (NvmlGpuInventory.TryCreate(new NvmlApi(), null, out var inventory, out var reason))
        {
            using (inventory)
            {
                Assert.All(inventory!.Read(), g => Assert.True(g.TotalMb > 0 || g.Error is not null));
            }
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(reason));
            Assert.DoesNotContain("Exception", reason, StringComparison.Ordinal);
        }
    }

    private sealed class FakeNvmlApi : INvmlApi
    {
        public List<Device> Devices { get; } = [];

        public NvmlReturn InitResult { get; init; } = NvmlReturn.Success;

        public Exception? InitThrows { get; init; }

        public int Shutdowns { get; private set; }

        public NvmlReturn Init() => InitThrows is null ? InitResult : throw InitThrows;

        public NvmlReturn Shutdown()
        {
            Shutdowns++;
            return NvmlReturn.Success;
        }

        public string ErrorString(NvmlReturn code) => NvmlConventions.Describe(code);

        public NvmlReturn GetDriverVersion(out string version)
        {
            version = "550.54.15";
            return NvmlReturn.Success;
        }

        public NvmlReturn GetDeviceCount(out int count)
        {
            count = Devices.Count;
            return NvmlReturn.Success;
        }

        public NvmlReturn GetDeviceHandle(int index, out nint device)
        {
            device = index + 1;
            return Devices[index].Handle;
        }

        public NvmlReturn GetName(nint device, out string name)
        {
            name = D(device).Name;
            return NvmlReturn.Success;
        }

        public NvmlReturn GetUuid(nint device, out string uuid)
        {
            uuid = D(device).Uuid;
            return NvmlReturn.Success;
        }

        public NvmlReturn GetMemory(nint device, out ulong totalBytes, out ulong freeBytes)
        {
            (totalBytes, freeBytes) = (D(device).Total, D(device).Free);
            return NvmlReturn.Success;
        }

        public NvmlReturn GetUtilization(nint device, out NvmlUtilization utilization)
        {
            utilization = new NvmlUtilization { Gpu = (uint)(D(device).Utilization ?? 0) };
            return D(device).Utilization is null ? NvmlReturn.NotSupported : NvmlReturn.Success;
        }

        public NvmlReturn GetTemperature(nint device, out int celsius)
        {
            celsius = D(device).Temperature ?? 0;
            return D(device).Temperature is null ? NvmlReturn.NotSupported : NvmlReturn.Success;
        }

        public NvmlReturn GetComputeProcesses(nint device, out IReadOnlyList<NvmlProcessInfoV2> processes)
        {
            processes = D(device).Processes ?? [];
            return D(device).Processes is null ? NvmlReturn.NotSupported : NvmlReturn.Success;
        }

        private Device D(nint handle) => Devices[(int)handle - 1];

        public sealed record Device(string Name, string Uuid, ulong Total, ulong Free, int? Utilization, int? Temperature, NvmlProcessInfoV2[]? Processes)
        {
            public NvmlReturn Handle { get; init; } = NvmlReturn.Success;
        }
    }
}
