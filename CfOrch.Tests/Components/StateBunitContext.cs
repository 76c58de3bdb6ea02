using Bunit;
using CfOrch.Core;
using CfOrch.Core.Changes;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Components.State;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>
/// bunit for what a page displays: the page's <see cref="LiveState"/> reads <see cref="State"/>, a state stream only the
/// test publishes to, on the test's fake clock. <see cref="Publish"/> returns once the page shows what was published — a
/// test asserts right after it, with no wait. No engine feeds the page; see <see cref="UseProfile"/> for what pages
/// inject besides the state.
/// </summary>
public abstract class StateBunitContext : MudBunitContext
{
    protected StateBunitContext()
    {
        Services.AddLogging();
        Services.AddSingleton<TimeProvider>(Time);
        Services.AddScoped(_ => new LiveState(State, Time));
        Services.AddScoped<CommandExecutor>();
        Services.AddScoped<BrowserClock>();
        Services.AddSingleton<SignedOutSessions>();
    }

    /// <summary>What the pages show: only the test publishes to it.</summary>
    protected StateStream State { get; } = new();

    /// <summary>
    /// <see cref="MudBunitContext.TestProfile"/> (or <paramref name="yaml"/>) as the profile in use, read by the real
    /// profile registry over no GPUs. The engine's services are registered (built when a page injects them), never
    /// started: pages inject the orchestrator and the cluster façade for their actions (and read from them only this
    /// node's id and a service's URL as clients see it, both from the options); what they would publish goes to the
    /// engine's own stream, which no page reads here. The state starts as the engine's would on one 8 GB GPU
    /// (<see cref="Gpu"/>) with nothing leased.
    /// </summary>
    protected void UseProfile(string? yaml = null, Action<IServiceCollection>? configure = null)
    {
        Data.Write("profiles/test.yaml", yaml ?? TestProfile);
        Services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["CfOrch:DataDir"] = Data.Path,
            ["CfOrch:Gpus:Mode"] = "none",
            ["CfOrch:Profile"] = "test",
        }).Build());
        Services.AddCfOrchCore();
        Services.AddCfOrchCluster();
        configure?.Invoke(Services);
        if (Services.All(d => d.ServiceType != typeof(IDbContextFactory<CfOrch.Web.Data.CfOrchDb>)))
        {
            // The cluster's node directory keeps the registered nodes there; nothing here opens it.
            Services.AddDbContextFactory<CfOrch.Web.Data.CfOrchDb>(o => o.UseSqlite($"Data Source={Path.Combine(Data.Path, "nodes.db")}"));
        }

        var profiles = Services.GetRequiredService<ProfileRegistry>();
        Assert.True(profiles.Active.Profile.Name == "test", profiles.Active.Reason + " " + string.Join("; ", profiles.Problems.SelectMany(p => p.Errors).Select(e => e.ToString())));
        SetGpus(Gpu());
    }

    /// <summary>
    /// Publishes <paramref name="changes"/> and returns once the page shows them. A page's LiveState runs its watch on
    /// the renderer, where the page subscribed: a published change is queued there at once, so once the renderer has run
    /// what is queued, the page has applied the change and rendered. When LiveState's batch window holds a change back (a
    /// batch was rendered less than 100 ms ago on the fake clock), the clock moves on by that window, as time would.
    /// </summary>
    protected void Publish(params StateChange[] changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        foreach (var change in changes)
        {
            State.Publish(change);
        }

        var live = Services.GetRequiredService<LiveState>();
        var published = State.Snapshot().Version;
        if (!Settle(live, published))
        {
            Time.Advance(LiveState.BatchWindow);
            if (!Settle(live, published))
            {
                throw new InvalidOperationException($"The page's state is at version {live.Current.Version}, the stream at {published}: a change did not reach the page after its batch window.");
            }
        }
    }

    /// <summary>A GPU as the inventory reads it, using what <paramref name="processes"/> use.</summary>
    protected static GpuInfo Gpu(string name = "Test GPU", long totalMb = 8192, int index = 0, params GpuProcess[] processes) => new()
    {
        Index = index,
        Name = name,
        Uuid = $"GPU-{index}",
        TotalMb = totalMb,
        UsedMb = processes.Sum(p => p.UsedMb ?? 0),
        Processes = processes,
    };

    /// <summary>The books of <paramref name="gpu"/> with these figures, as the lease manager publishes them (no reserve).</summary>
    protected static GpuAccount Books(GpuInfo gpu, long leasedMb = 0, long measuredMb = 0, long heldMb = 0, long externalMb = 0) => new()
    {
        GpuIndex = gpu.Index,
        TotalMb = gpu.TotalMb,
        UsedMb = gpu.UsedMb,
        FreeMb = gpu.FreeMb,
        ReserveMb = 0,
        LeasedMb = leasedMb,
        MeasuredMb = measuredMb,
        HeldMb = heldMb,
        ExternalMb = externalMb,
    };

    /// <summary>A reading of these GPUs now, with the books of GPUs that hold no lease (all their use is outside cf-orch).</summary>
    protected void SetGpus(params GpuInfo[] gpus) => SetGpus(gpus, gpus.Select(g => Books(g, externalMb: g.UsedMb)).ToList());

    /// <summary>A reading of these GPUs now, with their books.</summary>
    protected void SetGpus(IReadOnlyList<GpuInfo> gpus, IReadOnlyList<GpuAccount> accounts)
    {
        ArgumentNullException.ThrowIfNull(gpus);
        Publish(new GpusChanged(new GpuSnapshot(Time.GetUtcNow(), GpuSource.Simulated, gpus, $"{gpus.Count} simulated GPU(s)"), accounts));
    }

    /// <summary>An instance, as the engine would have published it.</summary>
    protected InstanceSnapshot AddInstance(string service, InstanceState state, InstanceOrigin origin = InstanceOrigin.Managed, int gpu = 0, long budgetMb = 4096,
        Func<InstanceSnapshot, InstanceSnapshot>? with = null)
    {
        var instance = NewInstance(service, state, origin, gpu, budgetMb, with);
        Publish(new InstanceChanged(instance));
        return instance;
    }

    /// <summary>A lease on GPU 0 of this node, granted now, as the lease manager would have published it.</summary>
    protected Lease AddLease(string holder, long mb, int priority = 1, HolderOrigin origin = HolderOrigin.Managed, long? measuredMb = null, TimeSpan? ttl = null)
    {
        var now = Time.GetUtcNow();
        var lease = new Lease
        {
            LeaseId = $"lease-{holder}",
            NodeId = "local",
            GpuIndex = 0,
            Holder = holder,
            Service = origin == HolderOrigin.Client ? null : holder,
            Mb = mb,
            Priority = priority,
            Origin = origin,
            GrantedAt = now,
            ExpiresAt = ttl is { } t ? now + t : null,
            MeasuredMb = measuredMb,
        };
        Publish(new LeaseGranted(lease));
        return lease;
    }

    /// <summary>
    /// Runs what is queued on the renderer, and what that queues in turn, until the page's state has caught up with the
    /// stream (true) or nothing more comes (false: the batch window holds the changes back). A change reaches the page in
    /// two steps there — the stream's channel wakes the batch reader, which wakes LiveState's loop, which applies the batch
    /// and renders the page in place — and each step queues the next while it runs: the renderer is drained until the
    /// state has caught up, then once more, so that the step which caught up has finished rendering.
    /// </summary>
    private bool Settle(LiveState live, long published)
    {
        for (var i = 0; i < 3; i++)
        {
            RunQueued();
            if (live.Current.Version >= published)
            {
                RunQueued();
                return true;
            }
        }

        return false;
    }

    private void RunQueued() => Renderer.Dispatcher.InvokeAsync(() => { }).GetAwaiter().GetResult();
}
