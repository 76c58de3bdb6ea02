using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// After memory was freed for a request (services evicted, idle models unloaded): its lease as soon as the GPU's books
/// and its reported free memory have the room. The same wait for this node's GPUs and, through their agents, for
/// other nodes'.
/// </summary>
public sealed class RoomWaiter(LeaseManager leases, ProfileRegistry profiles, TimeProvider time)
{
    /// <summary>How often this node's GPU (and what its services measure) is read again while the memory comes back.</summary>
    public static readonly TimeSpan LocalPoll = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The lease granted to <paramref name="request"/>, reading the GPU again (<paramref name="refresh"/>) every
    /// <paramref name="poll"/>; refused after the profile's <c>eviction_timeout_s</c> + 10 s, saying what was freed
    /// (<paramref name="freed"/>: "evicted comfyui") and what still holds the GPU.
    /// </summary>
    public async Task<Lease> LeaseOnceFreedAsync(LeaseRequest request, string freed, string gpuName, Func<CancellationToken, Task> refresh, TimeSpan poll, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(refresh);
        var deadline = time.GetUtcNow() + TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS + 10);
        while (true)
        {
            await refresh(cancellationToken);
            var admission = leases.Request(request);
            if (admission is Admission.Granted granted)
            {
                return granted.Lease;
            }

            if (time.GetUtcNow() >= deadline)
            {
                var why = admission is Admission.Refused r ? r.Reason : ((Admission.NeedsEviction)admission).Reason;
                throw new OrchestrationException(OrchestrationError.NoCapacity, $"{freed} but {gpuName} still does not have room: {why}");
            }

            await Task.Delay(poll, time, cancellationToken);
        }
    }

    /// <summary>"evicted comfyui, whisper" for the refusal of <see cref="LeaseOnceFreedAsync"/>.</summary>
    public static string Evicted(IEnumerable<Lease> victims) => $"evicted {string.Join(", ", victims.Select(v => v.Holder))}";
}
