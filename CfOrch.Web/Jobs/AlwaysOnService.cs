using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;

namespace CfOrch.Web.Jobs;

/// <summary>
/// Starts the profile's <c>always_on</c> services once cf-orch is up (after re-attachment and adoption, without holding
/// up the server), a service that becomes <c>always_on</c> when a profile is applied, those of an engine that answers
/// again, and a <c>pull: never</c> container whose image arrives (that one only). A service the user stops later stays
/// stopped: this is a start at boot, not a restart policy.
/// </summary>
public sealed partial class AlwaysOnService(Orchestrator orchestrator, ProfileRegistry profiles, CfOrch.Core.Runtimes.ServiceRuntimes runtimes, ILogger<AlwaysOnService> logger) : BackgroundService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private HashSet<string> _alwaysOn = [];
    private CancellationToken _stopping;
    private readonly List<(CfOrch.Core.Runtimes.IServiceRuntime Runtime, Action<CfOrch.Core.Runtimes.RuntimeStatus> Handler)> _handlers = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        _alwaysOn = AlwaysOnNow();
        profiles.Changed += OnProfilesChanged;
        foreach (var runtime in runtimes.All)
        {
            foreach (var handler in new[]
            {
                CfOrch.Core.Runtimes.ServiceRuntimes.WhenAvailableAgain(runtime, OnRuntimeAvailable),
                CfOrch.Core.Runtimes.ServiceRuntimes.WhenImagesArrive(runtime, OnImagesArrived),
            })
            {
                lock (_handlers)
                {
                    _handlers.Add((runtime, handler));
                }

                runtime.StatusChanged += handler;
            }
        }

        await StartAsync(null);
    }

    public override void Dispose()
    {
        // The gate is not disposed: a start triggered by a profile change may still be waiting on it.
        profiles.Changed -= OnProfilesChanged;
        lock (_handlers)
        {
            foreach (var (runtime, handler) in _handlers)
            {
                runtime.StatusChanged -= handler;
            }

            _handlers.Clear();
        }

        base.Dispose();
    }

    private HashSet<string> AlwaysOnNow() =>
        profiles.Active.Profile.Services.Values.Where(s => s.AlwaysOn).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

    private void OnProfilesChanged()
    {
        var now = AlwaysOnNow();
        var added = now.Except(Interlocked.Exchange(ref _alwaysOn, now), StringComparer.Ordinal).ToList();
        if (added.Count > 0 && !_stopping.IsCancellationRequested)
        {
            _ = Task.Run(() => StartAsync(added));
        }
    }

    /// <summary>An engine that answers again: always_on services it could not start are started now.</summary>
    private void OnRuntimeAvailable(CfOrch.Core.Runtimes.RuntimeStatus status)
    {
        if (!_stopping.IsCancellationRequested)
        {
            _ = Task.Run(() => StartAsync(null));
        }
    }

    /// <summary>
    /// Images arrived (a docker pull or load): the always_on containers with <c>pull: never</c> that lacked one of them
    /// could not start until now, and are started; no other service is.
    /// </summary>
    private void OnImagesArrived(IReadOnlyList<string> images)
    {
        var waiting = profiles.Active.Profile.Services.Values
            .Where(s => s.AlwaysOn && s.Managed is DockerSpec { Pull: PullPolicy.Never } d && images.Contains(d.Image, StringComparer.Ordinal))
            .Select(s => s.Name)
            .ToList();
        if (waiting.Count > 0 && !_stopping.IsCancellationRequested)
        {
            _ = Task.Run(() => StartAsync(waiting));
        }
    }

    /// <summary>One start pass at a time; cf-orch stopping ends a pass quietly.</summary>
    private async Task StartAsync(IReadOnlyCollection<string>? services)
    {
        try
        {
            await _gate.WaitAsync(_stopping);
            try
            {
                foreach (var outcome in await orchestrator.StartAlwaysOnAsync(services, _stopping))
                {
                    LogOutcome(outcome);
                }
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "always_on: {Outcome}")]
    private partial void LogOutcome(string outcome);
}
