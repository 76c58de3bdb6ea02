using CfOrch.Core.Allocations;
using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// cf-orch's allocate, once the instance is ensured: the model picked from the caller's candidates (room made for it
/// by unloading idle models), the claim added under the instance's lock, and — when the claim is refused after this
/// allocation started the instance — the start undone, so that a refused allocation leaves no service behind, and what
/// that start evicted is started again.
/// </summary>
public sealed class Allocator(
    ServiceLocks locks,
    InstanceRegistry registry,
    AllocationTable allocations,
    InstanceAllocations allocationCounts,
    InstanceStopper stopper,
    ModelResolver models,
    IdleModelEviction idleModels,
    ServiceStarter starter,
    TimeProvider time,
    IOptions<CfOrchOptions> options)
{
    /// <summary>
    /// The claim of an allocation on an instance already ensured (on this node or, placed by the coordinator, on
    /// another: <paramref name="elsewhere"/>): the model picked from the candidates, the URL handed to the caller, the
    /// TTL. The allocation is added under the instance's lock, and only while the instance still runs the run it was
    /// ensured as — one stopped meanwhile (the undo of another allocation's start) is refused, never handed out. Refused
    /// after this allocation started the instance (an Ollama that did not run could not be asked for its models before),
    /// the start is undone — stopped, its lease released — unless another allocation holds it by then, so that a refused
    /// allocation leaves no service behind.
    /// </summary>
    public async Task<AllocationResult> AllocateOnAsync(EnsureResult ensured, IReadOnlyList<string> modelCandidates, double ttlSeconds, string caller, CancellationToken cancellationToken, IRemoteInstances? elsewhere = null)
    {
        ArgumentNullException.ThrowIfNull(ensured);
        ArgumentNullException.ThrowIfNull(modelCandidates);
        var service = ensured.Instance.Service;
        Allocation allocation;
        bool claimed;
        try
        {
            var model = await models.ResolveAsync(ensured.Instance, modelCandidates, cancellationToken);
            if (model is not null)
            {
                await idleModels.MakeRoomForModelAsync(ensured.Instance, model, string.IsNullOrWhiteSpace(caller) ? "anonymous" : caller, cancellationToken);
            }

            var now = time.GetUtcNow();
            allocation = new Allocation
            {
                AllocationId = "alloc-" + Guid.NewGuid().ToString("N")[..16],
                Service = service,
                NodeId = ensured.Instance.Key.NodeId,
                GpuIndex = ensured.Instance.Key.GpuIndex,
                Model = model ?? ensured.Instance.Model,
                Url = ClientUrl(ensured.Instance.Url, options.Value.AdvertiseHost),
                Caller = string.IsNullOrWhiteSpace(caller) ? "anonymous" : caller,
                CreatedAt = now,
                ExpiresAt = ttlSeconds > 0 ? now + TimeSpan.FromSeconds(ttlSeconds) : null,
            };
            void Claim()
            {
                allocations.Add(allocation);
                allocationCounts.Recount(ensured.Instance.Key);
            }

            claimed = elsewhere is not null
                ? await elsewhere.ClaimAsync(ensured.Instance, Claim, cancellationToken)
                : await ClaimHereAsync(ensured.Instance, Claim, cancellationToken);
        }
        catch (OrchestrationException refused) when (ensured.Started)
        {
            throw await UndoStartAsync(ensured.Instance, refused, elsewhere);
        }
        catch (OperationCanceledException) when (ensured.Started)
        {
            // The caller hung up: what it started is not left running without an allocation (with idle_stop_after_s 0,
            // nothing would ever stop it). The stop runs to its end whatever the caller's token says.
            try
            {
                if (await StopStartedAsync(ensured.Instance, "started for an allocation whose caller hung up", elsewhere) == UndoOutcome.Stopped)
                {
                    await StartDisplacedAsync(ensured.Instance, elsewhere);
                }
            }
            catch (OrchestrationException)
            {
                // Not stopped (its agent did not answer): it stays as any running service does, its lease counted.
            }

            throw;
        }

        if (!claimed)
        {
            throw new OrchestrationException(OrchestrationError.StartFailed, $"{service} on {ensured.Instance.Key.NodeId} GPU {ensured.Instance.Key.GpuIndex} stopped while this allocation was made; nothing is allocated, ask again");
        }

        var instance = allocationCounts.Recount(ensured.Instance.Key) ?? ensured.Instance;
        return new AllocationResult(allocation, instance, ensured.Started, ensured.Warm);
    }

    /// <summary>An allocation's claim on an instance of this node: under the service's lock (as its stops are), while the instance still runs that run.</summary>
    private async Task<bool> ClaimHereAsync(InstanceSnapshot ensured, Action claim, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(ensured.Key.Service, cancellationToken);
        if (registry.Get(ensured.Key) is not { IsActive: true } current || current.State == InstanceState.Stopping || current.Since != ensured.Since)
        {
            return false;
        }

        claim();
        return true;
    }

    /// <summary>Stops an instance an allocation started and then refused; the refusal, saying what became of it.</summary>
    private async Task<OrchestrationException> UndoStartAsync(InstanceSnapshot started, OrchestrationException refused, IRemoteInstances? elsewhere)
    {
        string what;
        try
        {
            var outcome = await StopStartedAsync(started, $"started for an allocation that was refused: {refused.Message}", elsewhere);
            what = outcome switch
            {
                UndoOutcome.Stopped => $"{started.Service}, started for it, is stopped again",
                UndoOutcome.Allocated => $"{started.Service} was started for it and is left running, allocated meanwhile",
                UndoOutcome.Replaced => $"{started.Service} was started for it and ended meanwhile; the one running now was started since and is left as it is",
                _ => $"{started.Service} was started for it and ended meanwhile",
            };
            if (outcome == UndoOutcome.Stopped && started.Displaced.Count > 0)
            {
                what += "; " + await StartDisplacedAsync(started, elsewhere);
            }
        }
        catch (OrchestrationException ex)
        {
            what = $"{started.Service} was started for it and could not be stopped again: {ex.Message}";
        }

        return new OrchestrationException(refused.Error, $"{refused.Message}; {what}");
    }

    /// <summary>Starts again what the undone start of <paramref name="started"/> evicted, on the node it ran on.</summary>
    private Task<string> StartDisplacedAsync(InstanceSnapshot started, IRemoteInstances? elsewhere) =>
        elsewhere is not null ? elsewhere.StartDisplacedAsync(started) : starter.StartDisplacedAsync(started);

    /// <summary>Stops an instance an allocation started, unless it is allocated meanwhile, ended meanwhile or another run by now; says which.</summary>
    private Task<UndoOutcome> StopStartedAsync(InstanceSnapshot started, string reason, IRemoteInstances? elsewhere) =>
        elsewhere is not null ? elsewhere.UndoStartAsync(started, reason) : StopStartedHereAsync(started, reason);

    private async Task<UndoOutcome> StopStartedHereAsync(InstanceSnapshot started, string reason)
    {
        var outcome = UndoOutcome.Ended;

        // Checked under the service's lock, as an allocation's claim is made (ClaimHereAsync).
        bool Unclaimed(InstanceSnapshot i)
        {
            outcome = i.Since != started.Since ? (i.IsActive ? UndoOutcome.Replaced : UndoOutcome.Ended)
                : !i.IsActive || i.State == InstanceState.Stopping ? UndoOutcome.Ended
                : allocations.Holds(i.Key.Service, i.Key.NodeId, i.Key.GpuIndex) ? UndoOutcome.Allocated
                : UndoOutcome.Stopped;
            return outcome == UndoOutcome.Stopped;
        }

        try
        {
            await stopper.StopAsync(started.Key, HistoryKind.Stopped, reason, CancellationToken.None, Unclaimed);
        }
        catch (OrchestrationException ex) when (ex.Error == OrchestrationError.NotFound)
        {
            return UndoOutcome.Ended;
        }

        return outcome;
    }

    /// <summary>The URL handed to clients: <paramref name="url"/>, with <paramref name="advertiseHost"/> in place of a loopback host.</summary>
    public static string ClientUrl(string url, string? advertiseHost)
    {
        if (string.IsNullOrWhiteSpace(advertiseHost) || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || !uri.IsLoopback)
        {
            return url;
        }

        return new UriBuilder(uri) { Host = advertiseHost }.Uri.ToString().TrimEnd('/');
    }
}
