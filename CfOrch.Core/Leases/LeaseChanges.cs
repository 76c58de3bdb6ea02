using CfOrch.Core.Changes;
using CfOrch.Core.Gpus;
using CfOrch.Core.History;

namespace CfOrch.Core.Leases;

public sealed record LeaseGranted(Lease Lease) : StateChange;

public sealed record LeaseUpdated(Lease Lease) : StateChange;

public sealed record LeaseReleased(Lease Lease, HistoryKind Kind, string Reason) : StateChange;

/// <summary>A new GPU reading, with the books of every GPU it changes.</summary>
public sealed record GpusChanged(GpuSnapshot Gpus, IReadOnlyList<GpuAccount> Accounts) : StateChange;
