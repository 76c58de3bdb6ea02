using CfOrch.Core.Instances;
using CfOrch.Core.Allocations;

namespace CfOrch.Core.Orchestration;

/// <summary>A serving instance, and whether this request had to start it or found it already running.</summary>
public sealed record EnsureResult(InstanceSnapshot Instance, bool Started, bool Warm);

/// <summary>A new allocation on a serving instance.</summary>
public sealed record AllocationResult(Allocation Allocation, InstanceSnapshot Instance, bool Started, bool Warm);

/// <summary>What stopping did to one instance, in words (an adopted one is only released from tracking).</summary>
public sealed record StopOutcome(InstanceSnapshot Instance, string Message)
{
    /// <summary>How long its runtime took to stop it (SIGTERM, the grace, SIGKILL when needed); null when nothing was signalled.</summary>
    public TimeSpan? StopTook { get; init; }
}

/// <summary>What undoing a start an allocation made and then refused did.</summary>
public enum UndoOutcome
{
    /// <summary>Stopped again, its lease released.</summary>
    Stopped,

    /// <summary>Left running: another allocation holds it by now.</summary>
    Allocated,

    /// <summary>Nothing to stop: it ended (or is being stopped) meanwhile, by something else.</summary>
    Ended,

    /// <summary>Nothing to stop: it ended meanwhile, and what runs now is a later start, left as it is.</summary>
    Replaced,
}
