using System.Globalization;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Profiles;
using CfOrch.Core.Allocations;
using CfOrch.Core.Changes;
using CfOrch.Core.State;
using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// The sweep: leases and allocations whose TTL passed, and managed services idle for longer than their
/// idle_stop_after_s. <see cref="RunAsync"/> runs it when the next of these is due, not on a timer.
/// </summary>
public sealed partial class Sweeper(
    LeaseManager leases,
    AllocationTable allocations,
    InstanceAllocations counts,
    InstanceRegistry registry,
    InstanceStopper stopper,
    ProfileRegistry profiles,
    StateStream stream,
    TimeProvider time,
    ILogger<Sweeper> logger)
{
    /// <summary>Passes no closer together than this, however often the state changes (a lease storm wakes the loop at most this often).</summary>
    public static readonly TimeSpan MinimumGap = TimeSpan.FromMilliseconds(250);

    private readonly Wakeup _wakeup = new(time);

    /// <summary>
    /// Sweeps, then sleeps until the next TTL or idle stop is due — or, with none due, until a lease, an allocation, an
    /// instance or the profile changes — until <paramref name="stopping"/>.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        stream.Published += WakeOn;
        profiles.Changed += _wakeup.Wake;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                // Taken before the pass: a change during it wakes the next sleep at once.
                var armed = _wakeup.Arm();
                try
                {
                    await SweepAsync(stopping).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
                {
                    // One failed pass (a stop that threw) must not end the sweeps; the next pass tries again.
                    LogSweepFailed(ex);
                }

                var wait = NextDue() is { } due ? Max(due - time.GetUtcNow(), MinimumGap) : (TimeSpan?)null;
                if (await _wakeup.SleepAsync(armed, wait, stopping).ConfigureAwait(false))
                {
                    // A burst of changes costs one pass per gap.
                    await _wakeup.PauseAsync(MinimumGap, stopping).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            stream.Published -= WakeOn;
            profiles.Changed -= _wakeup.Wake;
        }
    }

    /// <summary>While <see cref="RunAsync"/> sleeps: until when (<see cref="DateTimeOffset.MaxValue"/>: until woken); null while it works.</summary>
    internal DateTimeOffset? SleepingUntil => _wakeup.SleepingUntil;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>What can bring a deadline: leases, allocations and instances (GPU readings cannot).</summary>
    private void WakeOn(StateChange change)
    {
        if (change is not GpusChanged)
        {
            _wakeup.Wake();
        }
    }

    /// <summary>When the next lease or allocation TTL runs out or the next idle service is due to stop; null when none is.</summary>
    public DateTimeOffset? NextDue()
    {
        DateTimeOffset? soonest = null;
        void Consider(DateTimeOffset? at)
        {
            if (at is { } due && (soonest is null || due < soonest))
            {
                soonest = due;
            }
        }

        foreach (var lease in leases.All)
        {
            Consider(lease.ExpiresAt);
        }

        foreach (var allocation in allocations.All)
        {
            Consider(allocation.ExpiresAt);
        }

        foreach (var instance in registry.All)
        {
            Consider(IdleStop(instance)?.At);
        }

        return soonest;
    }

    /// <summary>
    /// When an idle instance cf-orch manages is due to stop for idleness — its profile's <c>idle_stop_after_s</c> after it
    /// became idle — and the history's words for it; null when it never is (not idle, adopted, always_on, or no
    /// idle_stop_after_s). The same rule for this node's instances and those placed on other nodes.
    /// </summary>
    public (DateTimeOffset At, string Reason)? IdleStop(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return instance is { State: InstanceState.Idle, Origin: InstanceOrigin.Managed }
            && profiles.Active.Profile.Services.GetValueOrDefault(instance.Service) is { AlwaysOn: false, IdleStopAfterS: > 0 } service
            ? (instance.StateSince + TimeSpan.FromSeconds(service.IdleStopAfterS), string.Create(CultureInfo.InvariantCulture, $"idle for {service.IdleStopAfterS:0.#} s"))
            : null;
    }

    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        leases.ExpireDue();
        var now = time.GetUtcNow();
        foreach (var allocation in allocations.Expired(now))
        {
            if (allocations.Remove(allocation.AllocationId, "its TTL passed") is not null)
            {
                counts.Recount(new InstanceKey(allocation.Service, allocation.NodeId, allocation.GpuIndex));
            }
        }

        foreach (var instance in registry.All)
        {
            if (IdleStop(instance) is { } stop && stop.At <= now)
            {
                var idleSince = instance.StateSince;
                await stopper.StopAsync(instance.Key, HistoryKind.Stopped, stop.Reason, cancellationToken,
                    onlyIf: i => i.State == InstanceState.Idle && i.StateSince == idleSince);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A sweep of TTLs and idle services failed; the next one tries again")]
    private partial void LogSweepFailed(Exception ex);
}
