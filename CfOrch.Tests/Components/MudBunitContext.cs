using Bunit;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Profiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MudBlazor.Services;

namespace CfOrch.Tests.Components;

/// <summary>bunit with MudBlazor's services, loose JS interop and cf-orch's Core services over simulated GPUs.</summary>
public abstract class MudBunitContext : BunitContext
{
    protected MudBunitContext()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices(o =>
        {
            o.SnackbarConfiguration.ShowTransitionDuration = 0;
            o.SnackbarConfiguration.HideTransitionDuration = 0;
        });
        Data = new TempDir();
    }

    protected TempDir Data { get; }

    /// <summary>Registers Core over the given simulated GPUs (none: no GPU) and returns the inventory.</summary>
    protected SimulatedGpuInventory? UseGpus(CfOrchOptions? options = null, params SimulatedGpuOptions[] gpus)
    {
        options ??= new CfOrchOptions();
        options.DataDir = Data.Path;
        IGpuInventory inventory = gpus.Length == 0 ? new NoGpuInventory("NVML is unavailable: test machine") : new SimulatedGpuInventory(gpus);
        var monitor = new GpuMonitor(inventory, TimeProvider.System, NullLogger<GpuMonitor>.Instance);
        Services.AddSingleton(Options.Create(options));
        Services.AddSingleton(TimeProvider.System);
        Services.AddSingleton(monitor);
        Services.AddSingleton(new ProfileRegistry(Options.Create(options), monitor, NullLogger<ProfileRegistry>.Instance));
        return inventory as SimulatedGpuInventory;
    }

    protected override async ValueTask DisposeAsyncCore()
    {
        await base.DisposeAsyncCore();
        Data.Dispose();
    }
}
