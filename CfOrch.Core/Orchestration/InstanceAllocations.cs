using CfOrch.Core.Instances;
using CfOrch.Core.Allocations;

namespace CfOrch.Core.Orchestration;

/// <summary>Keeps an instance's allocation count and its running/idle state in step with the allocation table.</summary>
public sealed class InstanceAllocations(AllocationTable allocations, InstanceRegistry registry, InstanceLifecycle lifecycle)
{
    /// <summary>Counts the instance's allocations again: the first makes an idle instance running, the last a running one idle.</summary>
    public InstanceSnapshot? Recount(InstanceKey key)
    {
        var count = allocations.CountFor(key.Service, key.NodeId, key.GpuIndex);
        return registry.Get(key)?.State switch
        {
            InstanceState.Idle when count > 0 => lifecycle.Transition(key, InstanceState.Running, i => i with { Allocations = count }),
            InstanceState.Running when count == 0 => lifecycle.Transition(key, InstanceState.Idle, i => i with { Allocations = 0 }),
            _ => registry.Update(key, i => i.Allocations == count ? i : i with { Allocations = count }),
        };
    }
}
