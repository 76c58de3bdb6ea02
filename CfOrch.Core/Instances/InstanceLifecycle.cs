using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using Microsoft.Extensions.Logging;
using CfOrch.Core.Allocations;

namespace CfOrch.Core.Instances;

/// <summary>
/// The transitions that touch more than the instance: ending an instance releases its lease and allocations and
/// forgets its persisted record, in one place, so no path can leave a lease behind.
/// </summary>
public sealed partial class InstanceLifecycle(
    InstanceRegistry registry,
    LeaseManager leases,
    AllocationTable allocations,
    IInstanceStore store,
    TimeProvider time,
    ILogger<InstanceLifecycle> logger)
{
    /// <summary>
    /// The one way a new run of an instance enters the registry — a start, an adoption, a re-attachment after a restart of
    /// cf-orch: stamped now (and ready now when it is registered running), with <paramref name="more"/> filling in the rest.
    /// </summary>
    public InstanceSnapshot Register(InstanceKey key, InstanceOrigin origin, InstanceState state, string url, string healthPath, long budgetMb, int priority, Func<InstanceSnapshot, InstanceSnapshot>? more = null)
    {
        var now = time.GetUtcNow();
        var instance = new InstanceSnapshot
        {
            Key = key,
            Origin = origin,
            State = state,
            Url = url,
            HealthPath = healthPath,
            BudgetMb = budgetMb,
            Priority = priority,
            Since = now,
            StateSince = now,
            ReadyAt = state == InstanceState.Running ? now : null,
        };
        return registry.Set(more is null ? instance : more(instance));
    }

    /// <summary>Moves an instance to a new state (no-op if it is gone), stamping when it happened.</summary>
    public InstanceSnapshot? Transition(InstanceKey key, InstanceState state, Func<InstanceSnapshot, InstanceSnapshot>? more = null, Func<InstanceSnapshot, bool>? when = null) =>
        registry.Update(
            key,
            i =>
            {
                var next = i.State == state ? i : i with { State = state, StateSince = time.GetUtcNow() };
                return more is null ? next : more(next);
            },
            when);

    /// <summary>
    /// Ends an instance: Stopped or Failed, lease released with <paramref name="kind"/>, allocations dropped, the
    /// persisted record removed. Returns null when the instance was already ended or is gone, or — with
    /// <paramref name="run"/> — when the instance is a newer run than the one being ended.
    /// </summary>
    public InstanceSnapshot? End(InstanceKey key, InstanceState terminal, HistoryKind kind, string message, int? exitCode = null, IReadOnlyList<string>? lastLines = null, DateTimeOffset? run = null)
    {
        if (terminal is not (InstanceState.Stopped or InstanceState.Failed))
        {
            throw new ArgumentOutOfRangeException(nameof(terminal), terminal, "an instance ends Stopped or Failed");
        }

        string? leaseId = null;
        var ended = registry.Update(
            key,
            i =>
            {
                leaseId = i.LeaseId;
                return i with
                {
                    State = terminal,
                    StateSince = time.GetUtcNow(),
                    Message = message,
                    ExitCode = exitCode ?? i.ExitCode,
                    LastLogLines = lastLines ?? i.LastLogLines,
                    LeaseId = null,
                    MeasuredMb = null,
                    LoadedModels = [],
                    Allocations = 0,
                };
            },
            i => i.State is not (InstanceState.Stopped or InstanceState.Failed) && (run is null || i.Since == run));
        if (ended is null)
        {
            return null;
        }

        if (leaseId is not null)
        {
            leases.Release(leaseId, kind, message);
        }

        allocations.RemoveFor(key.Service, key.GpuIndex, message);
        if (ended.Origin == InstanceOrigin.Managed)
        {
            store.Remove(key);
        }

        LogEnded(key, terminal, message);
        return ended;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key} is {State}: {Message}")]
    private partial void LogEnded(InstanceKey key, InstanceState state, string message);
}
