using Bunit;
using CfOrch.Core;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Components.State;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.Configuration;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MudBlazor.Services;

namespace CfOrch.Tests.Components;

/// <summary>
/// bunit with MudBlazor's services, loose JS interop and cf-orch's whole engine (Core) over simulated GPUs and a fake
/// clock, plus the dashboard's per-circuit services. Components render as <see cref="Access"/> says (full control
/// unless a test renders them read-only).
/// </summary>
public abstract class MudBunitContext : BunitContext
{
    public static readonly Access ReadOnly = new(true, false, null, "Read-only: test visitor from the LAN.");

    static MudBunitContext()
    {
        // What a page waits for arrives through the thread pool (the state stream's watcher, a command's continuation):
        // on a loaded CI machine that can take longer than bunit's default of 1 s, so waits allow 10 s (a passing wait
        // returns as soon as its assertion holds).
        DefaultWaitTimeout = TimeSpan.FromSeconds(10);
    }

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

    /// <summary>A profile with a service of each kind: adoptable process, managed process, container, budget only.</summary>
    public const string TestProfile = """
        schema_version: 1
        name: test
        vram_total_mb: 8192
        services:
          ollama:
            max_mb: 4096
            priority: 1
            managed:
              type: process
              adopt: true
              exec_path: /usr/local/bin/ollama
              args_template: serve
              port: 11434
              health_path: /api/tags
          whisper:
            max_mb: 3000
            priority: 2
            managed:
              type: process
              exec_path: /usr/local/bin/whisper-server
              port: 9000
              health_path: /health
          vllm:
            max_mb: 6000
            priority: 1
            managed:
              type: docker
              image: vllm/vllm-openai:latest
              port: 8000
              host_port: 8000
              health_path: /health
          embeddings:
            max_mb: 1024
            priority: 3

        """;

    protected TempDir Data { get; }

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));

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

    /// <summary>Renders <typeparamref name="T"/> as a caller with <paramref name="access"/> (default: full control).</summary>
    protected IRenderedComponent<T> RenderAs<T>(Access? access = null, Action<ComponentParameterCollectionBuilder<T>>? parameters = null)
        where T : IComponent
    {
        // As in the app: interactive server rendering (live pages subscribe to the engine's state then).
        SetRendererInfo(new RendererInfo("Server", isInteractive: true));
        var host = Render<CascadingValue<Access>>(p => p
            .Add(c => c.Value, access ?? Access.Full(null))
            .AddChildContent<T>(parameters ?? (_ => { })));
        return host.FindComponent<T>();
    }

    /// <summary>An instance in the registry (as the engine would have put it there).</summary>
    protected InstanceSnapshot AddInstance(string service, InstanceState state, InstanceOrigin origin = InstanceOrigin.Managed, int gpu = 0, long budgetMb = 4096,
        Func<InstanceSnapshot, InstanceSnapshot>? with = null)
    {
        var now = Time.GetUtcNow();
        var instance = new InstanceSnapshot
        {
            Key = new InstanceKey(service, "local", gpu),
            Origin = origin,
            State = state,
            Url = "http://127.0.0.1:11434",
            HealthPath = "/",
            BudgetMb = budgetMb,
            Pid = origin == InstanceOrigin.Managed ? 4242 : null,
            Since = now,
            StateSince = now,
            ReadyAt = state is InstanceState.Running or InstanceState.Idle ? now : null,
        };
        return Instances.Set(with?.Invoke(instance) ?? instance);
    }

    protected override async ValueTask DisposeAsyncCore()
    {
        await base.DisposeAsyncCore();
        Data.Dispose();
    }
}
