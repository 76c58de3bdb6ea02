using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;

namespace CfOrch.Core.Runtimes;

/// <summary>The runtimes cf-orch has, and which one runs a spec or an instance.</summary>
public sealed class ServiceRuntimes(IEnumerable<IServiceRuntime> runtimes)
{
    private readonly IReadOnlyList<IServiceRuntime> _all = runtimes.ToList();

    public IReadOnlyList<IServiceRuntime> All => _all;

    /// <summary>The runtime that runs <paramref name="spec"/>, or null when cf-orch cannot start it.</summary>
    public IServiceRuntime? For(ManagedSpec spec) => _all.FirstOrDefault(r => r.Runs(spec));

    /// <summary>The runtime of a kind (<c>process</c>), or null.</summary>
    public IServiceRuntime? OfKind(string kind) => _all.FirstOrDefault(r => r.Kind == kind);

    /// <summary>The runtime that runs (or ran) <paramref name="key"/>, or null (an adopted or unknown instance).</summary>
    public IServiceRuntime? Of(InstanceKey key) => _all.FirstOrDefault(r => r.Has(key));

    /// <summary>The output of the instance's latest run, whatever runs it.</summary>
    public LogRing? Logs(InstanceKey key) => Of(key)?.Logs(key);

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
