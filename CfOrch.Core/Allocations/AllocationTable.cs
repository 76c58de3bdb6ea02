using CfOrch.Core.Changes;

namespace CfOrch.Core.Allocations;

/// <summary>The live allocations, published to the state stream.</summary>
public sealed class AllocationTable(IStatePublisher stream)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Allocation> _allocations = new(StringComparer.Ordinal);

    public IReadOnlyList<Allocation> All
    {
        get
        {
            lock (_lock)
            {
                return _allocations.Values.OrderBy(a => a.CreatedAt).ToArray();
            }
        }
    }

    public Allocation? Get(string allocationId)
    {
        lock (_lock)
        {
            return _allocations.GetValueOrDefault(allocationId);
        }
    }

    /// <summary>How many allocations hold the instance of <paramref name="service"/> on that node and GPU.</summary>
    public int CountFor(string service, string nodeId, int gpuIndex)
    {
        lock (_lock)
        {
            return _allocations.Values.Count(a => a.Service == service && a.NodeId == nodeId && a.GpuIndex == gpuIndex);
        }
    }

    /// <summary>Whether an allocation holds the instance of <paramref name="service"/> on that node and GPU.</summary>
    public bool Holds(string service, string nodeId, int gpuIndex)
    {
        lock (_lock)
        {
            return _allocations.Values.Any(a => a.Service == service && a.NodeId == nodeId && a.GpuIndex == gpuIndex);
        }
    }

    public void Add(Allocation allocation)
    {
        ArgumentNullException.ThrowIfNull(allocation);
        lock (_lock)
        {
            _allocations.Add(allocation.AllocationId, allocation);
            stream.Publish(new AllocationChanged(allocation));
        }
    }

    public Allocation? Remove(string allocationId, string reason)
    {
        lock (_lock)
        {
            if (!_allocations.Remove(allocationId, out var allocation))
            {
                return null;
            }

            stream.Publish(new AllocationReleased(allocation, reason));
            return allocation;
        }
    }

    public IReadOnlyList<Allocation> RemoveFor(string service, int gpuIndex, string reason)
    {
        lock (_lock)
        {
            var gone = _allocations.Values.Where(a => a.Service == service && a.GpuIndex == gpuIndex).ToList();
            foreach (var allocation in gone)
            {
                _allocations.Remove(allocation.AllocationId);
                stream.Publish(new AllocationReleased(allocation, reason));
            }

            return gone;
        }
    }

    public IReadOnlyList<Allocation> Expired(DateTimeOffset now)
    {
        lock (_lock)
        {
            return _allocations.Values.Where(a => a.ExpiresAt is { } at && at <= now).ToList();
        }
    }
}
