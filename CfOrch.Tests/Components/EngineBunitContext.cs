using Bunit;
using CfOrch.Core;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Web.Cluster;
using CfOrch.Web.Components.State;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>
/// bunit over cf-orch's whole engine (Core) on simulated GPUs and the fake clock, plus the dashboard's per-circuit
/// services: for the tests of what a page does through the engine (start, stop, release, save, activate) and of what the
/// engine itself tells a page. A test that only checks what is displayed derives from <see cref="StateBunitContext"/>.
/// </summary>
public abstract class EngineBunitContext : MudBunitContext
{
    static EngineBunitContext()
    {
        // What these pages wait for arrives through the thread pool (a command's continuation, the engine's own work):
        // on a loaded CI machine that can take longer than bunit's default of 1 s, so waits allow 10 s (a passing wait
        // returns as soon as its assertion holds). bunit keeps this value for the whole process: the state-only tests
        // never wait, so they do not depend on it.
        DefaultWaitTimeout = TimeSpan.FromSeconds(10);
    }

    /// <summary>Registers the engine over the given simulated GPUs (none: no GPU) and returns the inventory.</summary>
    protected SimulatedGpuInventory? UseGpus(string? profile = null, params SimulatedGpuOptions[] gpus) =>
        UseEngine(new Dictionary<string, string?> { ["CfOrch:Profile"] = profile }, null, gpus);

    protected SimulatedGpuInventory? UseEngine(Dictionary<string, string?> settings, Action<IServiceCollection>? configure, params SimulatedGpuOptions[] gpus)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var values = new Dictionary<string, string?>
        {
            ["CfOrch:DataDir"] = Data.Path,
            ["CfOrch:Gpus:Mode"] = gpus.Length == 0 ? "none" : "simulated",
        };
        for (var i = 0; i < gpus.Length; i++)
        {
            values[$"CfOrch:Gpus:Simulated:{i}:Name"] = gpus[i].Name;
            values[$"CfOrch:Gpus:Simulated:{i}:TotalMb"] = gpus[i].TotalMb.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        Services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
        Services.AddLogging();
        Services.AddSingleton<TimeProvider>(Time);
        Services.AddCfOrchCore();
        Services.AddScoped<LiveState>();
        Services.AddScoped<CommandExecutor>();
        Services.AddScoped<BrowserClock>();
        Services.AddSingleton<CfOrch.Web.Auth.SignedOutSessions>();
        Services.AddCfOrchCluster();
        configure?.Invoke(Services);
        if (Services.All(d => d.ServiceType != typeof(IDbContextFactory<CfOrch.Web.Data.CfOrchDb>)))
        {
            // Only the registered nodes are kept there; a page never reads it.
            Services.AddDbContextFactory<CfOrch.Web.Data.CfOrchDb>(o => o.UseSqlite($"Data Source={Path.Combine(Data.Path, "nodes.db")}"));
        }

        // The lease manager publishes the GPUs' books to the state stream, the runtimes their status; the poll job would read the GPUs.
        Services.GetRequiredService<LeaseManager>();
        Services.GetRequiredService<CfOrch.Core.Runtimes.ServiceRuntimes>();
        Services.GetRequiredService<GpuMonitor>().Refresh();
        return Services.GetRequiredService<IGpuInventory>() as SimulatedGpuInventory;
    }

    /// <summary>The engine over one simulated 8 GB GPU with <see cref="TestProfile"/> (or <paramref name="yaml"/>) in use.</summary>
    protected void UseTestProfile(string? yaml = null, long totalMb = 8192, Dictionary<string, string?>? settings = null, Action<IServiceCollection>? configure = null)
    {
        Data.Write("profiles/test.yaml", yaml ?? TestProfile);
        var values = new Dictionary<string, string?>(settings ?? []) { ["CfOrch:Profile"] = "test" };
        UseEngine(values, configure, new SimulatedGpuOptions { Name = "Test GPU", TotalMb = totalMb });
        var active = Services.GetRequiredService<ProfileRegistry>().Active;
        Assert.True(active.Profile.Name == "test", active.Reason + " " + string.Join("; ", Services.GetRequiredService<ProfileRegistry>().Problems.SelectMany(p => p.Errors).Select(e => e.ToString())));
    }

    protected InstanceRegistry Instances => Services.GetRequiredService<InstanceRegistry>();

    protected LeaseManager LeaseBook => Services.GetRequiredService<LeaseManager>();

    /// <summary>A lease granted by the lease manager (the test fails when it is not).</summary>
    protected Lease Grant(string holder, long mb, int priority = 1, HolderOrigin origin = HolderOrigin.Managed, long? measuredMb = null, TimeSpan? ttl = null)
    {
        var admission = LeaseBook.Request(new LeaseRequest(holder, origin == HolderOrigin.Client ? null : holder, 0, mb, priority, origin, ttl) { AlreadyRunning = origin == HolderOrigin.Adopted });
        var lease = Assert.IsType<Admission.Granted>(admission).Lease;
        if (measuredMb is not null)
        {
            LeaseBook.UpdateMeasured(lease.LeaseId, measuredMb);
        }

        return LeaseBook.Get(lease.LeaseId)!;
    }

    /// <summary>Changes simulated usage and reads the GPUs again, as the poll job would.</summary>
    protected void SetUsage(int gpu, int pid, long mb, string? name = null)
    {
        ((SimulatedGpuInventory)Services.GetRequiredService<IGpuInventory>()).SetProcessUsage(gpu, pid, mb, name);
        Services.GetRequiredService<GpuMonitor>().Refresh();
    }

    /// <summary>An instance in the registry (as the engine would have put it there).</summary>
    protected InstanceSnapshot AddInstance(string service, InstanceState state, InstanceOrigin origin = InstanceOrigin.Managed, int gpu = 0, long budgetMb = 4096,
        Func<InstanceSnapshot, InstanceSnapshot>? with = null)
        => Instances.Set(NewInstance(service, state, origin, gpu, budgetMb, with));
}
