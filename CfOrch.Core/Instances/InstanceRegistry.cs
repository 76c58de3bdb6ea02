using CfOrch.Core.Changes;

namespace CfOrch.Core.Instances;

/// <summary>
/// Every instance, keyed by (service, node, GPU). Updates are atomic per instance and published to the state
/// stream; readers get immutable snapshots.
/// </summary>
public sealed class InstanceRegistry(IStatePublisher stream)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<InstanceKey, InstanceSnapshot> _instances = [];
    private readonly List<Waiter> _waiters = [];

    public IReadOnlyList<InstanceSnapshot> All
    {
        get
        {
            lock (_lock)
            {
                return _instances.Values.OrderBy(i => i.Key.Service, StringComparer.Ordinal).ThenBy(i => i.Key.GpuIndex).ToArray();
            }
        }
    }

    public InstanceSnapshot? Get(InstanceKey key)
    {
        lock (_lock)
        {
            return _instances.GetValueOrDefault(key);
        }
    }

    public IReadOnlyList<InstanceSnapshot> ForService(string service)
    {
        lock (_lock)
        {
            return _instances.Values.Where(i => i.Key.Service == service).OrderBy(i => i.Key.GpuIndex).ToArray();
        }
    }

    /// <summary>Adds or replaces an instance.</summary>
    public InstanceSnapshot Set(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        lock (_lock)
        {
            _instances[instance.Key] = instance;
            stream.Publish(new InstanceChanged(instance));
            Notify(instance);
        }

        return instance;
    }

    /// <summary>Applies a change to an instance if it exists and <paramref name="when"/> holds; returns the new snapshot, or null.</summary>
    public InstanceSnapshot? Update(InstanceKey key, Func<InstanceSnapshot, InstanceSnapshot> change, Func<InstanceSnapshot, bool>? when = null)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            if (!_instances.TryGetValue(key, out var current) || (when is not null && !when(current)))
            {
                return null;
            }

            var next = change(current);
            if (next == current)
            {
                return current;
            }

            _instances[key] = next;
            stream.Publish(new InstanceChanged(next));
            Notify(next);
            return next;
        }
    }

    /// <summary>Completes when the instance satisfies <paramref name="condition"/> (at once if it already does).</summary>
    public async Task<InstanceSnapshot> WaitAsync(InstanceKey key, Func<InstanceSnapshot, bool> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var waiter = new Waiter(key, condition, new TaskCompletionSource<InstanceSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_lock)
        {
            if (_instances.TryGetValue(key, out var current) && condition(current))
            {
                return current;
            }

            _waiters.Add(waiter);
        }

        try
        {
            return await waiter.Completion.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (_lock)
            {
                _waiters.Remove(waiter);
            }
        }
    }

    public bool Remove(InstanceKey key)
    {
        lock (_lock)
        {
            if (!_instances.Remove(key))
            {
                return false;
            }

            stream.Publish(new InstanceRemoved(key));
            Changed?.Invoke();
            return true;
        }
    }

    /// <summary>Raised after any instance was added, changed or removed (outside the registry's lock is not promised: keep it short).</summary>
    public event Action? Changed;

    private void Notify(InstanceSnapshot instance)
    {
        Changed?.Invoke();
        foreach (var waiter in _waiters)
        {
            if (waiter.Key == instance.Key && waiter.Condition(instance))
            {
                waiter.Completion.TrySetResult(instance);
            }
        }
    }

    private sealed record Waiter(InstanceKey Key, Func<InstanceSnapshot, bool> Condition, TaskCompletionSource<InstanceSnapshot> Completion);
}
