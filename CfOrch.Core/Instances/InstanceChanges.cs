using CfOrch.Core.Changes;

namespace CfOrch.Core.Instances;

public sealed record InstanceChanged(InstanceSnapshot Instance) : StateChange;

public sealed record InstanceRemoved(InstanceKey Key) : StateChange;
