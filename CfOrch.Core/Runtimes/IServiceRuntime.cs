using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;

namespace CfOrch.Core.Runtimes;

/// <summary>What a start asks of a runtime: this service, on this GPU (or none), under this lease, with this model.</summary>
public sealed record RuntimeStart(ServiceProfile Service, int GpuIndex, bool OnGpu, string? LeaseId, string? Model, int RestartNumber = 0);

/// <summary>
/// Whether a runtime can start services now; when not, why, in words a user can act on. A container engine that answers
/// may still lack what one service needs (its image, with <c>pull: never</c>; its <c>runtime:</c>): <see cref="WhyNot"/>
/// says so per spec.
/// </summary>
public sealed record RuntimeStatus(string Kind, bool Available, string? Problem)
{
    public static RuntimeStatus Ready(string kind) => new(kind, true, null);

    /// <summary>The profile's container images the engine does not have, as last checked (sorted).</summary>
    public IReadOnlyList<string> MissingImages { get; init; } = [];

    /// <summary>The container runtimes the engine has (<c>runc</c>, <c>nvidia</c>, sorted), or null when not known.</summary>
    public IReadOnlyList<string>? EngineRuntimes { get; init; }

    /// <summary>Why <paramref name="spec"/> cannot be started through this runtime now, or null when it can.</summary>
    public string? WhyNot(ManagedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Available)
        {
            return Problem ?? $"the {Kind} runtime cannot start services now";
        }

        return spec switch
        {
            DockerSpec { Runtime: { Length: > 0 } runtime } when EngineRuntimes is { } known && !known.Contains(runtime, StringComparer.Ordinal) => NoRuntime(runtime, known),
            DockerSpec { Pull: PullPolicy.Never } docker when MissingImages.Contains(docker.Image, StringComparer.Ordinal) => NoImage(docker.Image),
            _ => null,
        };
    }

    /// <summary>An image that is not here and may not be pulled: what to do about it.</summary>
    public static string NoImage(string image) => $"image {image} is not on this machine and pull is never — docker pull {image} or set pull: missing";

    /// <summary>A <c>runtime:</c> the engine does not have: for <c>nvidia</c>, the toolkit that brings it.</summary>
    public static string NoRuntime(string runtime, IReadOnlyList<string> known)
    {
        ArgumentNullException.ThrowIfNull(known);
        return runtime == "nvidia"
            ? "the Docker engine has no 'nvidia' runtime — install the NVIDIA Container Toolkit"
            : $"the Docker engine has no '{runtime}' runtime (it has {string.Join(", ", known)})";
    }

    public bool Equals(RuntimeStatus? other) =>
        other is not null && Kind == other.Kind && Available == other.Available && Problem == other.Problem
        && Same(MissingImages, other.MissingImages) && Same(EngineRuntimes, other.EngineRuntimes);

    private static bool Same(IReadOnlyList<string>? a, IReadOnlyList<string>? b) => a is null ? b is null : b is not null && a.SequenceEqual(b, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Kind, Available, Problem, MissingImages.Count);
}

/// <summary>
/// A run of a service found running outside cf-orch (adoption): its processes on this machine (for measurement), what
/// it is in words (<c>container ollama-1 (3f2a…)</c>), whether cf-orch itself started it (then it is re-attached as
/// managed, never adopted), and the name of its container, if it is one.
/// </summary>
public sealed record OutsideRun(IReadOnlyList<int> Processes, string? Description = null, bool StartedByCfOrch = false, string? Id = null, string? Container = null);

/// <summary>
/// Where a service runs: start, stop, attach again after a restart of cf-orch, watch exits, read output, list the
/// processes. One implementation per kind — local processes today (<see cref="LocalProcessRuntime"/>); containers and
/// remote agents plug in here — while admission, leases, health, adoption and the UI stay the same above it.
/// </summary>
public interface IServiceRuntime
{
    /// <summary>The kind of managed spec it runs (<c>process</c>; later <c>docker</c>, an agent's node).</summary>
    string Kind { get; }

    /// <summary>Whether it runs services of <paramref name="spec"/>.</summary>
    bool Runs(ManagedSpec spec);

    /// <summary>Whether a run of <paramref name="key"/> (live, or ended with its output kept) is this runtime's.</summary>
    bool Has(InstanceKey key);

    /// <summary>Registers a new run of the service as starting and launches it; returns it starting, or failed with why.</summary>
    Task<InstanceSnapshot> StartAsync(RuntimeStart start, CancellationToken cancellationToken);

    /// <summary>Whether the run <paramref name="record"/> describes (started before cf-orch restarted) is still that very run.</summary>
    bool StillRuns(ManagedInstanceRecord record);

    /// <summary>Takes back a run it started before cf-orch restarted (one that <see cref="StillRuns"/>), registered as starting again.</summary>
    Task AttachAsync(ManagedInstanceRecord record, int priority, string? leaseId, string message);

    /// <summary>Stops this run of <paramref name="instance"/>: a signal, <paramref name="grace"/> to exit, then killed. A handle of an older run is never signalled.</summary>
    Task StopAsync(InstanceSnapshot instance, TimeSpan grace, CancellationToken cancellationToken);

    /// <summary>The output of the instance's latest run (kept after it ended), or null when there is none.</summary>
    LogRing? Logs(InstanceKey key);

    /// <summary>The last <paramref name="count"/> lines of this very run's output (empty for another run or none).</summary>
    IReadOnlyList<string> LastLines(InstanceSnapshot instance, int count);

    /// <summary>The operating-system processes the instance runs as, on this machine (for measurement); empty when none are here.</summary>
    IReadOnlyList<int> ProcessesOf(InstanceSnapshot instance);

    /// <summary>A run ended without being asked to; its instance has just failed (the restart policy listens).</summary>
    event Action<InstanceSnapshot>? Crashed;

    /// <summary>Whether it can start services now (a container engine may be unreachable), and why not.</summary>
    RuntimeStatus Status { get; }

    /// <summary>Asks again whether it can start services now (an engine not asked yet, or down a moment ago) and returns the answer.</summary>
    Task<RuntimeStatus> RefreshStatusAsync(CancellationToken cancellationToken);

    /// <summary>The status changed (an engine went away or came back: its runs are recovered then).</summary>
    event Action<RuntimeStatus>? StatusChanged;

    /// <summary>
    /// Runs it started that still run and that it keeps the record of itself (containers, by their labels), as records to
    /// attach again: after a restart of cf-orch, or when its engine comes back. Local processes are recorded in cf-orch's
    /// database instead, and return none.
    /// </summary>
    Task<IReadOnlyList<ManagedInstanceRecord>> RecoverAsync(CancellationToken cancellationToken);

    /// <summary>The run of <paramref name="service"/> that answers outside cf-orch (adoption), or null when none is found here.</summary>
    Task<OutsideRun?> FindOutsideAsync(ServiceProfile service, CancellationToken cancellationToken);

    /// <summary>Follows an adopted run's output (where it can) as <paramref name="key"/>'s; never signals it.</summary>
    void TrackOutside(InstanceKey key, OutsideRun run);

    /// <summary>Watches its runs until cancelled (an engine's event stream, reconnecting); returns at once when it has nothing to watch.</summary>
    Task WatchAsync(CancellationToken cancellationToken);
}
