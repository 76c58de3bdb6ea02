using CfOrch.Core.Changes;

namespace CfOrch.Core.Allocations;

public sealed record AllocationChanged(Allocation Allocation) : StateChange;

public sealed record AllocationReleased(Allocation Allocation, string Reason) : StateChange;
