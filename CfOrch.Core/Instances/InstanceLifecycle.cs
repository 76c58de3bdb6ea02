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
