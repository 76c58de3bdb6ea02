using System.Globalization;
using CfOrch.Core.Allocations;
using CfOrch.Core.Changes;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Measurement;
using CfOrch.Core.Ollama;
using CfOrch.Core.Profiles;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>cf-orch asked an Ollama to unload one of its idle models to make room for a more important lease.</summary>
public sealed record ModelUnloaded(InstanceKey Key, string Model, long Mb, string For, int ForPriority, int Priority, string Reason) : StateChange;

/// <summary>
/// Model-level eviction: a lease that does not fit, on a GPU where a less important Ollama (adopted or managed) holds
/// models nobody uses, gets its room from Ollama's own unload call instead of a refusal. Ollama keeps running — nothing
/// is stopped or signalled — and its lease yields: it holds what its remaining models measure until the more
/// important lease ends, then takes its budget back.
/// </summary>
/// <remarks>
/// A model is idle when no allocation names it and its <c>expires_at</c> has not moved for
/// <c>CfOrch:Ollama:IdleModelSeconds</c> (Ollama pushes it on every request). The largest idle models go first, only
/// as many as make the request fit the books and the GPU's live free memory; when all of them would not, nothing is
/// unloaded and the caller refuses as before.
/// </remarks>
public sealed partial class IdleModelEviction(
    InstanceRegistry registry,
    AllocationTable allocations,
    LeaseManager leases,
    ProfileRegistry profiles,
    OllamaClient ollama,
    UsageMeter meter,
    GpuMonitor gpus,
    RoomWaiter room,
    IStatePublisher publisher,
    IHistorySink history,
    TimeProvider time,
    IOptions<CfOrchOptions> options,
    ILogger<IdleModelEviction> logger)
{
    /// <summary>How often Ollama and the GPU are read again while the memory comes back.</summary>
    private static readonly TimeSpan FreeMemoryPoll = TimeSpan.FromMilliseconds(250);

    /// <summary>One model to unload: from which instance (and its lease), and how much it holds.</summary>
    public sealed record Unload(InstanceSnapshot Instance, Lease Lease, LoadedModel Model);

    /// <summary>
    /// The idle models whose unloading makes <paramref name="request"/> fit, largest first; empty when unloading every
    /// idle model would not (or none may be unloaded). Nothing changes.
    /// </summary>
    public IReadOnlyList<Unload> Plan(LeaseRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!string.IsNullOrEmpty(request.NodeId) && request.NodeId != options.Value.NodeId)
        {
            return [];
        }

        var idle = new List<Unload>();
        foreach (var instance in registry.All.Where(i => i is { IsServing: true, LeaseId: not null, MeasuredMb: not null } && i.Key.GpuIndex == request.GpuIndex && MayUnload(i)))
        {
            if (leases.Get(instance.LeaseId!) is { } lease && lease.Priority > request.Priority && lease.Holder != request.Holder)
            {
                idle.AddRange(IdleModels(instance).Select(m => new Unload(instance, lease, m)));
            }
        }

        var remaining = new Dictionary<string, long>(StringComparer.Ordinal);
        if (idle.Count == 0 || leases.FitsIfYielded(request, remaining, 0))
        {
            return [];
        }

        var chosen = new List<Unload>();
        long freed = 0;
        foreach (var unload in idle.OrderByDescending(u => u.Model.VramMb).ThenBy(u => u.Model.Name, StringComparer.Ordinal))
        {
            chosen.Add(unload);
            freed += unload.Model.VramMb;
            var held = remaining.TryGetValue(unload.Lease.LeaseId, out var left) ? left : unload.Instance.MeasuredMb!.Value;
            remaining[unload.Lease.LeaseId] = Math.Max(0, held - unload.Model.VramMb);
            if (leases.FitsIfYielded(request, remaining, freed))
            {
                return chosen;
            }
        }

        return [];
    }

    /// <summary>
    /// Unloads what <see cref="Plan"/> names, waits (bounded by the profile's <c>eviction_timeout_s</c>) until Ollama
    /// and the GPU show the memory back, and returns the lease for <paramref name="request"/>; null when unloading idle
    /// models cannot make room (nothing was unloaded). Each unload is a history row, a state change and a log line.
    /// </summary>
    public async Task<string?> LeaseByUnloadingAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        var plan = Plan(request);
        if (plan.Count == 0)
        {
            return null;
        }

        // The yielding leases count only what their models measure from now on, so the memory is the newcomer's
        // once it is really free; they take their budgets back when its lease ends (or at once if it is never granted).
        var yielded = plan.Select(u => u.Lease).DistinctBy(l => l.LeaseId).Where(l => l.Yield is null).ToList();
        foreach (var lease in yielded)
        {
            leases.Yield(lease.LeaseId, request.Holder);
        }

        try
        {
            var unloaded = new List<string>();
            foreach (var (instance, lease, model) in plan)
            {
                if (!await ollama.UnloadAsync(instance.Url, model.Name, cancellationToken))
                {
                    LogUnloadRefused(model.Name, instance.Key);
                    continue;
                }

                unloaded.Add(model.Name);
                Record(instance, lease, model, request.Holder, request.Priority, string.Create(CultureInfo.InvariantCulture,
                    $"unloaded {model.Name} ({Size(model.VramMb)}) from {instance.Service} for {request.Holder}, priority {request.Priority} over {lease.Priority}"));
            }

            var leaseId = await room.LeaseOnceFreedAsync(
                request,
                $"unloaded {(unloaded.Count == 0 ? "nothing (Ollama did not answer its unload calls)" : string.Join(", ", unloaded))} from {string.Join(", ", plan.Select(u => u.Instance.Service).Distinct())}",
                $"GPU {request.GpuIndex}",
                async ct =>
                {
                    await meter.MeasureAllAsync(ct);
                    gpus.Refresh();
                },
                FreeMemoryPoll,
                cancellationToken);
            foreach (var lease in yielded)
            {
                leases.Yield(lease.LeaseId, request.Holder, leaseId);
            }

            // Released already (a client quick to let go): nothing is left to yield to.
            if (leases.Get(leaseId) is null)
            {
                foreach (var lease in yielded)
                {
                    leases.EndYield(lease.LeaseId);
                }
            }

            return leaseId;
        }
        catch
        {
            foreach (var lease in yielded)
            {
                leases.EndYield(lease.LeaseId);
            }

            throw;
        }
    }

    /// <summary>
    /// Before an allocation uses <paramref name="model"/> on a serving Ollama of this node that does not have it loaded:
    /// when it would not fit in Ollama's budget beside the models it has loaded, its idle models (never one an
    /// allocation names) are unloaded first, largest first, only as many as make it fit; when all of them would not,
    /// none is (Ollama then fits the model as it can, offloading layers to the CPU).
    /// </summary>
    public async Task MakeRoomForModelAsync(InstanceSnapshot instance, string model, string caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        if (instance.Key.NodeId != options.Value.NodeId || !instance.IsServing || instance.LeaseId is null || instance.MeasuredMb is not { } measured
            || !MayUnload(instance) || instance.LoadedModels.Any(m => m.Name == model) || leases.Get(instance.LeaseId) is not { } lease)
        {
            return;
        }

        var idle = IdleModels(instance).Where(m => m.Name != model).OrderByDescending(m => m.VramMb).ThenBy(m => m.Name, StringComparer.Ordinal).ToList();
        if (idle.Count == 0 || (await ollama.TagsAsync(instance.Url, cancellationToken))?.FirstOrDefault(t => t.Name == model) is not { } tag)
        {
            return;
        }

        var needed = tag.Size / (1024 * 1024);
        var chosen = new List<LoadedModel>();
        var held = measured;
        foreach (var candidate in idle)
        {
            if (held + needed <= lease.Mb)
            {
                break;
            }

            chosen.Add(candidate);
            held -= candidate.VramMb;
        }

        if (chosen.Count == 0 || held + needed > lease.Mb)
        {
            return;
        }

        foreach (var unload in chosen)
        {
            if (await ollama.UnloadAsync(instance.Url, unload.Name, cancellationToken))
            {
                Record(instance, lease, unload, caller, lease.Priority,
                    string.Create(CultureInfo.InvariantCulture, $"unloaded {unload.Name} ({Size(unload.VramMb)}) from {instance.Service} to load {model} ({Size(needed)}) for {caller} within its {lease.Mb} MB"));
            }
            else
            {
                LogUnloadRefused(unload.Name, instance.Key);
            }
        }

        await meter.MeasureAllAsync(cancellationToken);
    }

    /// <summary>Whether cf-orch may unload this instance's models: it speaks Ollama's API and its profile does not say <c>unload_idle_models: false</c>.</summary>
    private bool MayUnload(InstanceSnapshot instance) =>
        OllamaClient.IsOllama(instance.Service, instance.HealthPath)
        && profiles.Active.Profile.Services.GetValueOrDefault(instance.Service)?.Managed?.UnloadIdleModels != false;

    /// <summary>Its loaded models that nobody uses: no allocation names them, and their expiry has not moved for the idle time.</summary>
    private IEnumerable<LoadedModel> IdleModels(InstanceSnapshot instance)
    {
        var now = time.GetUtcNow();
        var idleFor = TimeSpan.FromSeconds(options.Value.Ollama.IdleModelSeconds);
        var named = allocations.All
            .Where(a => a.Service == instance.Service && a.NodeId == instance.Key.NodeId && a.GpuIndex == instance.Key.GpuIndex && a.Model is not null)
            .Select(a => a.Model!)
            .ToHashSet(StringComparer.Ordinal);
        return instance.LoadedModels.Where(m => m.VramMb > 0 && !named.Contains(m.Name) && m.LastUsedAt is { } used && now - used >= idleFor);
    }

    private void Record(InstanceSnapshot instance, Lease lease, LoadedModel model, string forWhom, int forPriority, string reason)
    {
        history.Record(new HistoryEvent
        {
            At = time.GetUtcNow(),
            Kind = HistoryKind.Unloaded,
            NodeId = instance.Key.NodeId,
            GpuIndex = instance.Key.GpuIndex,
            Service = instance.Service,
            Holder = instance.Service,
            Origin = lease.Origin.ToString().ToLowerInvariant(),
            BudgetMb = model.VramMb,
            Reason = reason,
            Priority = lease.Priority,
        });
        publisher.Publish(new ModelUnloaded(instance.Key, model.Name, model.VramMb, forWhom, forPriority, lease.Priority, reason));
        LogUnloaded(model.Name, model.VramMb, instance.Key, forWhom);
    }

    /// <summary>A model's size as Ollama writes it (decimal GB: llama3.1:8b's 4,693 MB is "4.9 GB"); "300 MB" under a GB.</summary>
    private static string Size(long mb) => mb * 1024 * 1024 >= 1_000_000_000
        ? string.Create(CultureInfo.InvariantCulture, $"{mb * 1024 * 1024 / 1e9:0.0} GB")
        : string.Create(CultureInfo.InvariantCulture, $"{mb} MB");

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloaded idle model {Model} ({Mb} MB) from {Key} to make room for {For}")]
    private partial void LogUnloaded(string model, long mb, InstanceKey key, string @for);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} did not unload {Model}: its unload call was not answered")]
    private partial void LogUnloadRefused(string model, InstanceKey key);
}
