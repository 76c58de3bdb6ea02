using System.Collections.Concurrent;
using CfOrch.Core.Instances;
using CfOrch.Core.Supervision;

namespace CfOrch.Core.Instances;

/// <summary>The processes cf-orch owns, by instance; a failed instance keeps its handle so its log stays readable.</summary>
public sealed class ManagedProcesses
{
    private readonly ConcurrentDictionary<InstanceKey, IManagedProcess> _processes = new();

    public IManagedProcess? Get(InstanceKey key) => _processes.GetValueOrDefault(key);

    /// <summary>
    /// The process of this run of <paramref name="instance"/>, or null: a handle left from an earlier run (whose PID may
    /// since belong to another program) is never the one to signal.
    /// </summary>
    public IManagedProcess? Of(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return Get(instance.Key) is { } process && process.Pid == instance.Pid ? process : null;
    }

    /// <summary>Records the process of an instance, returning the one it replaces (to dispose).</summary>
    public IManagedProcess? Set(InstanceKey key, IManagedProcess process)
    {
        IManagedProcess? previous = null;
        _processes.AddOrUpdate(key, process, (_, old) =>
        {
            previous = old;
            return process;
        });
        return previous;
    }

    public IReadOnlyList<IManagedProcess> All => _processes.Values.ToList();
}
