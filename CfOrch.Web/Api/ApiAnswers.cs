using CfOrch.Core.Instances;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

// The answers of cf-orch's API as named records (snake_case on the wire), so that the OpenAPI document describes them.

public sealed record ServicesAnswer(IReadOnlyList<ServiceRow> Services);

public sealed record ServiceStatusAnswer(string Service, IReadOnlyList<ServiceRow> Instances, IReadOnlyList<AllocationRow> Allocations);

public sealed record EnsureAnswer(string Service, string NodeId, int GpuId, string? Model, string Url, bool Running, bool Started, bool Warm);

public sealed record AllocateAnswer(string AllocationId, string Service, string NodeId, int GpuId, string? Model, string Url, bool Started, bool Warm);

public sealed record AllocationReleasedAnswer(bool Released, string AllocationId);

public sealed record ServiceDeletedAnswer(string Service, string NodeId, bool Stopped, string Detail);

public sealed record StartAnswer(bool Started, bool Warm, ServiceRow Instance);

public sealed record RestartAnswer(bool Started, ServiceRow Instance);

public sealed record StoppedInstance(ServiceRow Instance, string Message);

public sealed record StopAnswer(string Service, IReadOnlyList<StoppedInstance> Stopped, string Detail);

public sealed record LogsAnswer(string Service, int GpuId, IReadOnlyList<LogLineRow> Lines);

public sealed record LeasesAnswer(IReadOnlyList<LeaseRow> Leases);

public sealed record LeaseAnswer(LeaseRow Lease);

public sealed record LeaseReleasedAnswer(bool Released, string LeaseId);

public sealed record HistoryEventRow(
    double At, string Kind, string? LeaseId, string NodeId, int GpuId, string? Service, string Holder, string Origin, long BudgetMb,
    long? MeasuredMb, string Reason, double? GrantedAt);

public sealed record HistoryAnswer(int Total, int Page, int PageSize, IReadOnlyList<HistoryEventRow> Events);

public sealed record ResidentRow(string Service, string NodeId, int GpuId, string? ModelName, double FirstSeen, InstanceOrigin Origin);

public sealed record ResidentsAnswer(IReadOnlyList<ResidentRow> Residents);

public sealed record GpusAnswer(
    string NodeId, string Source, string? Detail, double? ReadAt, string? ReadError, double? ReadFailedAt, IReadOnlyList<GpuRow> Gpus);

/// <summary>A node as <c>/api/nodes</c> lists it: the original's fields (<c>last_heartbeat</c> 0.0 when never seen), and <c>online</c>, <c>last_heartbeat_age_s</c>, <c>problem</c>.</summary>
public sealed record NodeRow(string NodeId, string AgentUrl, double LastHeartbeat, bool Online, bool Local, IReadOnlyList<NodeGpuRow> Gpus, double? LastHeartbeatAgeS, string? Problem);

public sealed record NodesAnswer(IReadOnlyList<NodeRow> Nodes);

public sealed record NodeRegisteredAnswer(bool Registered, string NodeId);
