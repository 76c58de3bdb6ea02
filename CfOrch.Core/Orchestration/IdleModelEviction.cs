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
/// is stopped or signalled — and its lease lends the newcomer what it needs of its budget until that lease ends, then
/// takes it back.
/// </summary>
/// <remarks>
/// A model is idle when no allocation names it and its <c>expires_at</c> has not moved for
/// <c>CfOrch:Ollama:IdleModelSeconds</c> (Ollama pushes it on every request) and is still ahead (a model past it is
/// busy with a request); a model kept for ever (<c>keep_alive: -1</c>) is never idle. The largest idle models go first, only
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

        if (idle.Count == 0 || leases.FitsIfYielded(request, new Dictionary<string, long>(), 0))
        {
            return [];
        }

        var chosen = new List<Unload>();
        foreach (var unload in idle.OrderByDescending(u => u.Model.VramMb).ThenBy(u => u.Model.Name, StringComparer.Ordinal))
        {
            chosen.Add(unload);
            if (Fits(request, chosen))
            {
                return chosen;
            }
        }

        return [];
    }

    /// <summary>
    /// Unloads what <see cref="Plan"/> names, waits (bounded by the profile's <c>eviction_timeout_s</c>) until Ollama
    /// and the GPU show the memory back, and returns the lease granted to <paramref name="request"/>; null when unloading
    /// idle models cannot make room (then nothing was unloaded — or, when Ollama did not answer some unload calls, not
    /// enough). Each unload is a history row, a state change and a log line. One request at a time per GPU: a second one
    /// plans with what the first left, and no more than one waits on the memory.
    /// </summary>
    public async Task<Lease?> LeaseByUnloadingAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Plan(request).Count == 0)
        {
            return null;
        }

        var gate = _gates.GetOrAdd(request.GpuIndex, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            // Planned again under the gate: what an earlier request unloaded may have made room already.
            if (leases.Request(request) is Admission.Granted granted)
            {
                return granted.Lease;
            }

            var plan = Plan(request);
            return plan.Count == 0 ? null : await UnloadAndLeaseAsync(request, plan, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, SemaphoreSlim> _gates = new();

    private async Task<Lease?> UnloadAndLeaseAsync(LeaseRequest request, IReadOnlyList<Unload> plan, CancellationToken cancellationToken)
    {
        // Each Ollama lends the request what it needs of its budget, so the memory is the newcomer's once it is really
        // free — and no one else's: the lender takes it back when that lease ends (or at once if it is never granted).
        var loans = plan.Select(u => u.Lease.LeaseId).Distinct(StringComparer.Ordinal)
            .Select(id => (LeaseId: id, Token: leases.Lend(id, request)))
            .Where(l => l.Token is not null)
            .ToList();
        try
        {
            var unloaded = new List<Unload>();
            foreach (var unload in plan)
            {
                if (!await ollama.UnloadAsync(unload.Instance.Url, unload.Model.Name, cancellationToken))
                {
                    LogUnloadRefused(unload.Model.Name, unload.Instance.Key);
                    continue;
                }

                unloaded.Add(unload);
                Record(unload.Instance, unload.Lease, unload.Model, request.Holder, request.Priority, string.Create(CultureInfo.InvariantCulture,
                    $"unloaded {unload.Model.Name} ({Size(unload.Model.VramMb)}) from {unload.Instance.Service} for {request.Holder}, priority {request.Priority} over {unload.Lease.Priority}"));
            }

            // Ollama did not answer some unload calls: wait only if what it did unload still makes room.
            if (unloaded.Count < plan.Count && !Fits(request, unloaded))
            {
                EndLoans(loans);
                return null;
            }

            var lease = await room.LeaseOnceFreedAsync(
                request,
                $"unloaded {string.Join(", ", unloaded.Select(u => u.Model.Name))} from {string.Join(", ", plan.Select(u => u.Instance.Service).Distinct())}",
                $"GPU {request.GpuIndex}",
                async ct =>
                {
                    await meter.MeasureAllAsync(ct);
                    gpus.Refresh();
                },
                RoomWaiter.LocalPoll,
                cancellationToken);
            foreach (var (leaseId, token) in loans)
            {
                leases.ConfirmLoan(leaseId, token!, lease.LeaseId);
            }

            return lease;
        }
        catch
        {
            EndLoans(loans);
            throw;
        }
    }

    private void EndLoans(List<(string LeaseId, string? Token)> loans)
    {
        foreach (var (leaseId, token) in loans)
        {
            leases.EndLoan(leaseId, token!);
        }
    }

    /// <summary>Whether unloading <paramref name="unloads"/> (all of them) makes the request fit the books and the GPU's free memory.</summary>
    private bool Fits(LeaseRequest request, List<Unload> unloads)
    {
        var remaining = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var unload in unloads)
        {
            var held = remaining.TryGetValue(unload.Lease.LeaseId, out var left) ? left : unload.Instance.MeasuredMb!.Value;
            remaining[unload.Lease.LeaseId] = Math.Max(0, held - unload.Model.VramMb);
        }

        return unloads.Count > 0 && leases.FitsIfYielded(request, remaining, unloads.Sum(u => u.Model.VramMb));
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
        if (instance.Key.NodeId != options.Value.NodeId || !instance.IsServing || instance.LeaseId is null || instance.MeasuredMb is null
            || !MayUnload(instance) || instance.LoadedModels.Any(m => m.Name == model) || leases.Get(instance.LeaseId) is not { } lease)
        {
            return;
        }

        if (!IdleModels(instance).Any(m => m.Name != model) || (await ollama.TagsAsync(instance.Url, cancellationToken))?.FirstOrDefault(t => t.Name == model) is not { } tag)
        {
            return;
        }

        // One unloading at a time per GPU, with the models as they are now (another request may have unloaded some).
        var gate = _gates.GetOrAdd(instance.Key.GpuIndex, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (registry.Get(instance.Key) is { IsServing: true, MeasuredMb: { } now } current && !current.LoadedModels.Any(m => m.Name == model))
            {
                await UnloadForModelAsync(current, now, lease, model, tag.Size / (1024 * 1024), IdleModels(current).Where(m => m.Name != model).OrderByDescending(m => m.VramMb).ThenBy(m => m.Name, StringComparer.Ordinal).ToList(), caller, cancellationToken);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task UnloadForModelAsync(InstanceSnapshot instance, long measured, Lease lease, string model, long needed, List<LoadedModel> idle, string caller, CancellationToken cancellationToken)
    {
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
        // A model kept for ever (keep_alive -1) was asked to stay: never idle. One past its expiry and still loaded is
        // busy (Ollama keeps a model while a request runs, and pushes its expiry when the request ends).
        return instance.LoadedModels.Where(m => m.VramMb > 0 && !named.Contains(m.Name)
            && m.ExpiresAt is { } expires && expires > now
            && m.LastUsedAt is { } used && now - used >= idleFor);
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
