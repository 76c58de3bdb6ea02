using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;

namespace CfOrch.Core.Runtimes;

/// <summary>A runtime's status changed (an engine went away or came back).</summary>
public sealed record RuntimeStatusChanged(RuntimeStatus Status) : Changes.StateChange;

/// <summary>The runtimes cf-orch has, and which one runs a spec or an instance; their status goes to the state stream.</summary>
public sealed class ServiceRuntimes
{
    private readonly IReadOnlyList<IServiceRuntime> _all;

    public ServiceRuntimes(IEnumerable<IServiceRuntime> runtimes, Changes.IStatePublisher publisher)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        _all = runtimes.ToList();
        foreach (var runtime in _all)
        {
            runtime.StatusChanged += status => publisher.Publish(new RuntimeStatusChanged(status));
            publisher.Publish(new RuntimeStatusChanged(runtime.Status));
        }
    }

    public IReadOnlyList<IServiceRuntime> All => _all;

    /// <summary>The runtime that runs <paramref name="spec"/>, or null when cf-orch cannot start it.</summary>
    public IServiceRuntime? For(ManagedSpec spec) => _all.FirstOrDefault(r => r.Runs(spec));

    /// <summary>The runtime of a kind (<c>process</c>), or null.</summary>
    public IServiceRuntime? OfKind(string kind) => _all.FirstOrDefault(r => r.Kind == kind);

    /// <summary>The runtime that runs (or ran) <paramref name="key"/>, or null (an adopted or unknown instance).</summary>
    public IServiceRuntime? Of(InstanceKey key) => _all.FirstOrDefault(r => r.Has(key));

    /// <summary>The output of the instance's latest run, whatever runs it.</summary>
    public LogRing? Logs(InstanceKey key) => Of(key)?.Logs(key);

    /// <summary>
    /// A handler of <see cref="IServiceRuntime.StatusChanged"/> that calls <paramref name="action"/> only when
    /// <paramref name="runtime"/> becomes able to start services (an engine that comes back), not when it already was and
    /// only what it can start changed (an image pulled).
    /// </summary>
    public static Action<RuntimeStatus> WhenAvailableAgain(IServiceRuntime runtime, Action<RuntimeStatus> action)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(action);
        var was = runtime.Status.Available ? 1 : 0;
        return status =>
        {
            var now = status.Available ? 1 : 0;
            if (Interlocked.Exchange(ref was, now) == 0 && now == 1)
            {
                action(status);
            }
        };
    }

    /// <summary>
    /// A handler for <see cref="IServiceRuntime.StatusChanged"/> that calls <paramref name="action"/> with the images that
    /// arrived (missing before, here now: a docker pull, load or tag) while <paramref name="runtime"/> answered before and
    /// after; an engine that comes back is <see cref="WhenAvailableAgain"/>'s.
    /// </summary>
    public static Action<RuntimeStatus> WhenImagesArrive(IServiceRuntime runtime, Action<IReadOnlyList<string>> action)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(action);
        var last = runtime.Status;
        var gate = new Lock();
        return status =>
        {
            RuntimeStatus before;
            lock (gate)
            {
                before = last;
                last = status;
            }

            if (before.Available && status.Available && before.MissingImages.Except(status.MissingImages, StringComparer.Ordinal).ToList() is { Count: > 0 } arrived)
            {
                action(arrived);
            }
        };
    }

    /// <summary>A run of any runtime ended without being asked to.</summary>
    public event Action<InstanceSnapshot>? Crashed
    {
        add
        {
            foreach (var runtime in _all)
            {
                runtime.Crashed += value;
            }
        }

        remove
        {
            foreach (var runtime in _all)
            {
                runtime.Crashed -= value;
            }
        }
    }
}
