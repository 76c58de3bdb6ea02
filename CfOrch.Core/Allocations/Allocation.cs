namespace CfOrch.Core.Allocations;

/// <summary>A caller's claim on a running instance (cf-orch's /allocate), released by the caller or by its TTL.</summary>
public sealed record Allocation
{
    public required string AllocationId { get; init; }

    public required string Service { get; init; }

    public required string NodeId { get; init; }

    public required int GpuIndex { get; init; }

    public string? Model { get; init; }

    public required string Url { get; init; }

    public required string Caller { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }
}
