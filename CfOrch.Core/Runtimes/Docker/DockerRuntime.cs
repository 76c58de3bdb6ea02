using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Processes;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Runtimes.Docker;

/// <summary>
/// The runtime of <c>type: docker</c> services, through the Docker Engine API: pulls the image as the profile says,
/// creates and starts <c>cf-orch-{service}-gpu{n}</c> with the GPU of its lease, follows its output, learns of its exit
/// from the engine's event stream, stops it (signal, grace, kill) and removes it (named volumes stay). The engine is the
/// record: a container labelled by this cf-orch is attached again after cf-orch or the engine restarts. Containers the
/// user runs are adopted by <c>container_name</c> or published port, and never signalled.
/// </summary>
public sealed partial class DockerRuntime(
    DockerEngine engine,
    InstanceRegistry registry,
    InstanceLifecycle lifecycle,
    GpuMonitor gpus,
    ProfileRegistry profiles,
    IOptions<CfOrchOptions> options,
    TimeProvider time,
    ILogger<DockerRuntime> logger) : IServiceRuntime, IDisposable
{
    private const int RingLines = 2000;
    private const int FailureLogLines = 20;
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromMilliseconds(250);

    /// <summary>The engine's image events that change which images it has.</summary>
    private static readonly string[] ImageEvents = ["pull", "load", "import", "tag", "untag", "delete"];
    private readonly ConcurrentDictionary<InstanceKey, ContainerRun> _runs = new();
    private readonly CancellationTokenSource _disposed = new();

    /// <summary>The label value that marks this cf-orch's containers (its node and data directory, hashed).</summary>
    public string Owner { get; } = OwnerOf(options.Value.NodeId, options.Value.ResolvedDataDir());

    public static string OwnerOf(string nodeId, string dataDir) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{nodeId}\n{dataDir}")))[..16];

    public string Kind => DockerSpec.TypeName;

    public RuntimeStatus Status => engine.Status;

    public event Action<RuntimeStatus>? StatusChanged
    {
        add => engine.StatusChanged += value;
        remove => engine.StatusChanged -= value;
    }

    public event Action<InstanceSnapshot>? Crashed;

    public async Task<RuntimeStatus> RefreshStatusAsync(CancellationToken cancellationToken)
    {
        await CheckAsync(cancellationToken);
        return engine.Status;
    }

    /// <summary>Whether the engine answers, and which images of the active profile's containers it lacks.</summary>
    private Task<bool> CheckAsync(CancellationToken cancellationToken) => engine.CheckAsync(Images(), cancellationToken);

    /// <summary>The images of the active profile's containers.</summary>
    private string[] Images() =>
        profiles.Active.Profile.Services.Values.Select(s => s.Managed).OfType<DockerSpec>().Select(d => d.Image).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>Which images are here may have changed (an image event, another profile): checked again in the background, one check at a time.</summary>
    private void CheckImagesSoon() => engine.CheckImagesSoon(Images, _disposed.Token);

    public bool Runs(ManagedSpec spec) => spec is DockerSpec;

    public bool Has(InstanceKey key) => _runs.ContainsKey(key);

    public LogRing? Logs(InstanceKey key) => _runs.TryGetValue(key, out var run) ? run.Output : null;

    public IReadOnlyList<string> LastLines(InstanceSnapshot instance, int count)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return _runs.TryGetValue(instance.Key, out var run) && run.Since == instance.Since
            ? run.Output.Tail(count).Select(l => l.Text).ToList()
            : [];
    }

    public IReadOnlyList<int> ProcessesOf(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return _runs.TryGetValue(instance.Key, out var run) && run.Pid is { } pid and > 0 ? ContainerProcesses(pid) : [];
    }

    /// <summary>
    /// The host PIDs of the container whose init is <paramref name="init"/>, the init first: its cgroup's (with those that
    /// <c>docker exec</c> started, which are not the init's descendants), else — a cgroup not readable here — the init's tree.
    /// </summary>
    private static IReadOnlyList<int> ContainerProcesses(int init) =>
        [init, .. (ProcFs.CgroupProcesses(init) ?? ProcFs.Descendants(init)).Where(p => p != init)];

    /// <summary>The container id of an instance's latest run, or null.</summary>
    public string? ContainerOf(InstanceKey key) => _runs.TryGetValue(key, out var run) ? run.Id : null;

    public async Task<InstanceSnapshot> StartAsync(RuntimeStart start, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        var service = start.Service;
        var spec = service.Managed as DockerSpec ?? throw new ArgumentException($"{service.Name} is not a container service", nameof(start));
        var key = new InstanceKey(service.Name, options.Value.NodeId, start.GpuIndex);
        var registered = lifecycle.Register(key, InstanceOrigin.Managed, InstanceState.Starting, spec.LocalUrl, spec.HealthPath, service.MaxMb, service.Priority, i => i with
        {
            Model = start.Model,
            LeaseId = start.LeaseId,
            Message = "starting",
            RestartNumber = start.RestartNumber,
        });
        var name = ContainerRequest.Name(key);
        string? id = null;
        try
        {
            if (!engine.Status.Available && !await CheckAsync(cancellationToken))
            {
                return Fail(key, registered.Since, engine.Status.Problem ?? "the Docker engine does not answer");
            }

            // Not the caller's token from here on: a client that hangs up must not leave a half-made container.
            var token = _disposed.Token;
            if (await PrepareImageAsync(key, registered.Since, spec, token) is { } imageProblem)
            {
                return Fail(key, registered.Since, imageProblem);
            }

            if (await ClearNameAsync(name, token) is { } nameProblem)
            {
                return Fail(key, registered.Since, nameProblem);
            }

            var request = ContainerRequest.Build(spec, key, start.Model, start.OnGpu ? GpuDevice(start.GpuIndex) : null, Owner, registered.Since, service.MaxMb);
            var created = await engine.Client.Containers.CreateContainerAsync(request, token);
            id = created.ID;
            var run = new ContainerRun(key, id, name, registered.Since, false, new LogRing(RingLines, time));
            Track(run);
            await engine.Client.Containers.StartContainerAsync(id, new ContainerStartParameters(), token);
            var inspected = await engine.Client.Containers.InspectContainerAsync(id, token);
            run.Pid = PidOf(inspected);
            Follow(run);
            var shortId = Short(id);
            LogStarted(key, name, shortId, spec.Image);
            return registry.Update(key, i => i with { Pid = run.Pid, Message = $"started container {name} ({shortId}), waiting for {spec.HealthPath}" }, i => i.Since == registered.Since)
                ?? registry.Get(key)!;
        }
        catch (FormatException ex)
        {
            return Fail(key, registered.Since, $"command_template cannot be split into arguments: {ex.Message}");
        }
        catch (Exception ex) when (ex is DockerApiException or DockerUnavailableException || DockerEngine.IsUnreachable(ex))
        {
            var why = ex is DockerApiException ? $"the Docker engine refused it: {DockerEngine.EngineMessage(ex)}" : engine.Describe(ex);
            if (ex is not DockerApiException)
            {
                engine.Failed(ex);
            }

            if (id is not null)
            {
                await RemoveQuietlyAsync(id);
            }

            return Fail(key, registered.Since, why);
        }
    }

    public async Task StopAsync(InstanceSnapshot instance, TimeSpan grace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        if (!_runs.TryGetValue(instance.Key, out var run) || run.Adopted || run.Since != instance.Since)
        {
            return;
        }

        run.Stopping = true;
        try
        {
            var seconds = (uint)Math.Max(1, Math.Ceiling(grace.TotalSeconds));
            await engine.Client.Containers.StopContainerAsync(run.Id, new ContainerStopParameters { WaitBeforeKillSeconds = seconds }, CancellationToken.None);
        }
        catch (DockerContainerNotFoundException)
        {
            // Gone already (removed by hand): nothing left to stop.
        }
        catch (Exception ex) when (ex is DockerApiException or DockerUnavailableException || DockerEngine.IsUnreachable(ex))
        {
            LogStopFailed(instance.Key, run.Name, ex.Message);
        }

        await RemoveQuietlyAsync(run.Id);
        run.StopFollowing();
    }

    public bool StillRuns(ManagedInstanceRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return _runs.TryGetValue(record.Key, out var run) && !run.Adopted && run.Pid == record.Pid && run.Since == record.StartedAt;
    }

    public Task AttachAsync(ManagedInstanceRecord record, int priority, string? leaseId, string message)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!_runs.TryGetValue(record.Key, out var run))
        {
            return Task.CompletedTask;
        }

        lifecycle.Register(record.Key, InstanceOrigin.Managed, InstanceState.Starting, record.Url, record.HealthPath, record.BudgetMb, priority, i => i with
        {
            Pid = record.Pid,
            Reattached = true,
            Model = record.Model,
            LeaseId = leaseId,
            Message = $"{message} (container {run.Name}, {Short(run.Id)})",
            Since = record.StartedAt,
        });
        Follow(run);
        return Task.CompletedTask;
    }

    /// <summary>
    /// This cf-orch's containers as the engine has them: running ones not tracked yet become records to attach; ones that
    /// ended while nobody watched (cf-orch or the engine was down) end their instance, or are removed.
    /// </summary>
    public async Task<IReadOnlyList<ManagedInstanceRecord>> RecoverAsync(CancellationToken cancellationToken)
    {
        if (!await CheckAsync(cancellationToken))
        {
            return [];
        }

        IList<ContainerListResponse> containers;
        try
        {
            containers = await engine.Client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{ContainerRequest.OwnerLabel}={Owner}"] = true } },
            }, cancellationToken);
        }
        catch (Exception ex) when (DockerEngine.IsUnreachable(ex))
        {
            engine.Failed(ex);
            return [];
        }

        var records = new List<ManagedInstanceRecord>();
        foreach (var container in containers)
        {
            if (ContainerRequest.KeyOf(container.Labels) is not { } key || key.NodeId != options.Value.NodeId || ContainerRequest.RunOf(container.Labels) is not { } since)
            {
                continue;
            }

            var tracked = registry.Get(key);
            var running = container.State == "running";
            if (tracked is { IsActive: true } && _runs.TryGetValue(key, out var known) && known.Id == container.ID)
            {
                // A run being started now is "created" for a moment: only one that has exited has ended.
                if (HasEnded(container.State))
                {
                    // It ended while the engine was away: its exit was never announced.
                    await EndedAsync(known, (await EndStateAsync(container.ID, cancellationToken)).ExitCode);
                }

                continue;
            }

            if (tracked is { IsActive: true } && tracked.Since == since)
            {
                // The container of a start under way (created, not tracked yet): the start takes it on.
                continue;
            }

            if (!running)
            {
                // It ended while nobody watched: nothing to take back.
                await RemoveQuietlyAsync(container.ID);
                continue;
            }

            if (tracked is { IsActive: true })
            {
                // Another run of the instance is tracked: this one is left as it is (never killed on a guess) and said.
                LogUntracked(key, container.ID);
                continue;
            }

            var inspected = await engine.Client.Containers.InspectContainerAsync(container.ID, cancellationToken);
            var run = new ContainerRun(key, container.ID, ContainerRequest.Name(key), since, false, new LogRing(RingLines, time))
            {
                Pid = PidOf(inspected),
            };
            Track(run);
            var labels = container.Labels;
            records.Add(new ManagedInstanceRecord(
                key,
                run.Pid ?? 0,
                null,
                labels.TryGetValue(ContainerRequest.UrlLabel, out var url) ? url : "",
                labels.TryGetValue(ContainerRequest.HealthLabel, out var health) ? health : ManagedSpec.DefaultHealthPath,
                labels.TryGetValue(ContainerRequest.ModelLabel, out var model) ? model : null,
                labels.TryGetValue(ContainerRequest.BudgetLabel, out var budget) && long.TryParse(budget, NumberStyles.None, CultureInfo.InvariantCulture, out var mb) ? mb : 0,
                since));
        }

        // Tracked runs whose container is gone altogether (removed while the engine was away).
        foreach (var run in _runs.Values.Where(r => !r.Adopted && containers.All(c => c.ID != r.Id)).ToList())
        {
            if (registry.Get(run.Key) is { IsActive: true } instance && instance.Since == run.Since && instance.State != InstanceState.Stopping)
            {
                await EndedAsync(run, null);
            }
        }

        return records;
    }

    /// <summary>The container that answers for <paramref name="service"/> outside cf-orch: by container_name, else the one that publishes its host port.</summary>
    public async Task<OutsideRun?> FindOutsideAsync(ServiceProfile service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (service.Managed is not DockerSpec spec || !engine.Status.Available)
        {
            return null;
        }

        try
        {
            var containers = await engine.Client.Containers.ListContainersAsync(new ContainersListParameters(), cancellationToken);
            var found = containers.FirstOrDefault(c => spec.ContainerName is { } name && c.Names.Any(n => n.TrimStart('/') == name))
                ?? containers.FirstOrDefault(c => !spec.HostNetwork && c.Ports.Any(p => p.PublicPort == spec.EffectivePort));
            if (found is null)
            {
                return null;
            }

            var ours = found.Labels?.TryGetValue(ContainerRequest.OwnerLabel, out var owner) == true && owner == Owner;
            var inspected = await engine.Client.Containers.InspectContainerAsync(found.ID, cancellationToken);
            var name = found.Names.FirstOrDefault()?.TrimStart('/');
            return new OutsideRun(PidOf(inspected) is { } pid ? ContainerProcesses(pid) : [], $"container {name} ({Short(found.ID)})", ours, found.ID, name);
        }
        catch (Exception ex) when (ex is DockerApiException || DockerEngine.IsUnreachable(ex))
        {
            return null;
        }
    }

    public void TrackOutside(InstanceKey key, OutsideRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Id is null || registry.Get(key) is not { } instance)
        {
            return;
        }

        var adopted = new ContainerRun(key, run.Id, run.Description ?? Short(run.Id), instance.Since, true, new LogRing(RingLines, time))
        {
            Pid = run.Processes.Count > 0 ? run.Processes[0] : null,
        };
        Track(adopted);
        Follow(adopted);
    }

    /// <summary>
    /// Follows the engine's events (exits of this cf-orch's containers) until cancelled; when the engine cannot be reached,
    /// says why and tries again every <c>CfOrch:Docker:RetrySeconds</c> — containers are picked up when it answers again.
    /// </summary>
    public async Task WatchAsync(CancellationToken cancellationToken)
    {
        var retry = TimeSpan.FromSeconds(options.Value.Docker.RetrySeconds);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        var token = linked.Token;
        profiles.Changed += CheckImagesSoon;
        try
        {
            await WatchEngineAsync(retry, token);
        }
        finally
        {
            profiles.Changed -= CheckImagesSoon;
        }
    }

    private async Task WatchEngineAsync(TimeSpan retry, CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (await CheckAsync(token))
                {
                    await FollowEventsAsync(token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (DockerEngine.IsUnreachable(ex) || ex is DockerApiException)
            {
                // The stream broke ("invalid chunk header" when the engine vanished mid-message): the engine itself says
                // what is wrong better than the broken stream does.
                LogStreamEnded(ex.Message);
                await CheckAsync(token);
            }

            try
            {
                await Task.Delay(retry, time, token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task FollowEventsAsync(CancellationToken cancellationToken)
    {
        var parameters = new ContainerEventsParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                // Exits of containers (only this cf-orch's runs are looked at), and whatever changes which images are here.
                ["type"] = new Dictionary<string, bool> { ["container"] = true, ["image"] = true },
                ["event"] = ImageEvents.Append("die").ToDictionary(e => e, _ => true),
            },
        };
        var progress = new SynchronousProgress<Message>(m =>
        {
            if (m.Type == "image")
            {
                CheckImagesSoon();
            }
            else if (m.Actor?.ID is { } id && m.Action == "die")
            {
                var code = m.Actor.Attributes?.TryGetValue("exitCode", out var text) == true
                    && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var c) ? c : (int?)null;
                _ = DiedAsync(id, code);
            }
        });

        // Subscribed first, then reconciled: an exit between the two is seen by one or the other.
        var events = engine.Client.System.MonitorEventsAsync(parameters, progress, cancellationToken);
        await Task.WhenAny(events, Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken));
        foreach (var run in _runs.Values.Where(r => !r.Adopted && !r.Stopping).ToList())
        {
            if (registry.Get(run.Key) is { IsActive: true } instance && instance.Since == run.Since
                && await EndStateAsync(run.Id, cancellationToken) is (true, var code))
            {
                await EndedAsync(run, code);
            }
        }

        await events;

        // The stream ended without an error: the engine went away (it is stopping).
        throw new IOException("the engine closed its event stream");
    }

    private async Task DiedAsync(string id, int? exitCode)
    {
        try
        {
            if (_runs.Values.FirstOrDefault(r => r.Id == id && !r.Adopted) is { } run)
            {
                await EndedAsync(run, exitCode);
            }
        }
        catch (Exception ex)
        {
            LogCrashHandlerFailed(id, ex);
        }
    }

    /// <summary>A run's container ended without being asked to: its instance fails with the exit code and last lines, and the container is removed.</summary>
    private async Task EndedAsync(ContainerRun run, int? exitCode)
    {
        var instance = registry.Get(run.Key);
        if (run.Stopping || instance is null || instance.Since != run.Since || instance.State is InstanceState.Stopping or InstanceState.Stopped or InstanceState.Failed)
        {
            return;
        }

        var lines = await TailAsync(run) ?? run.Output.Tail(FailureLogLines).Select(l => l.Text).ToList();
        var message = exitCode is { } c
            ? $"the container exited with code {c}{(instance.State == InstanceState.Starting ? " while starting" : "")}"
            : "the container is gone";
        var ended = lifecycle.End(run.Key, InstanceState.Failed, HistoryKind.Lost, message, exitCode, lines, run: run.Since);
        run.StopFollowing();
        await RemoveQuietlyAsync(run.Id);
        if (ended is not null)
        {
            LogExited(run.Key, run.Name, message);
            Crashed?.Invoke(ended);
        }
    }

    private async Task<IReadOnlyList<string>?> TailAsync(ContainerRun run)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            cts.CancelAfter(TimeSpan.FromSeconds(5));
            using var stream = await engine.Client.Containers.GetContainerLogsAsync(run.Id, new ContainerLogsParameters
            {
                ShowStdout = true,
                ShowStderr = true,
                Tail = FailureLogLines.ToString(CultureInfo.InvariantCulture),
            }, cts.Token);
            var (stdout, stderr) = await stream.ReadOutputToEndAsync(cts.Token);
            return (stdout + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).TakeLast(FailureLogLines).ToList();
        }
        catch (Exception ex) when (ex is DockerApiException or OperationCanceledException || DockerEngine.IsUnreachable(ex))
        {
            return null;
        }
    }

    /// <summary>The engine's state of a container that has ended (exited, dead); "created" (being started) and "restarting" have not.</summary>
    private static bool HasEnded(string? state) => state is "exited" or "dead";

    /// <summary>
    /// Whether the container has ended, and its exit code then: gone is ended (no code); one the engine cannot tell
    /// about now is not taken for ended (a crash is never declared on a guess).
    /// </summary>
    private async Task<(bool Ended, int? ExitCode)> EndStateAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            var inspected = await engine.Client.Containers.InspectContainerAsync(id, cancellationToken);
            return HasEnded(inspected.State?.Status) ? (true, (int)inspected.State!.ExitCode) : (false, null);
        }
        catch (DockerContainerNotFoundException)
        {
            return (true, null);
        }
        catch (Exception ex) when (ex is DockerApiException || DockerEngine.IsUnreachable(ex))
        {
            return (false, null);
        }
    }

    /// <summary>The container's main process on this machine (its init), or null when it has none.</summary>
    private static int? PidOf(ContainerInspectResponse inspected) => inspected.State?.Pid is > 0 ? (int)inspected.State.Pid : null;

    /// <summary>Makes the image available as the pull policy says, showing a pull's progress on the instance; returns why not, or null.</summary>
    private async Task<string?> PrepareImageAsync(InstanceKey key, DateTimeOffset since, DockerSpec spec, CancellationToken cancellationToken)
    {
        var present = await engine.HasImageAsync(spec.Image, cancellationToken);
        engine.ImageSeen(spec.Image, present);
        if (spec.Pull == PullPolicy.Never || (present && spec.Pull == PullPolicy.Missing))
        {
            return present ? null : RuntimeStatus.NoImage(spec.Image);
        }

        var (image, tag) = SplitReference(spec.Image);
        var pull = new PullProgress(spec.Image);
        var lastShown = DateTimeOffset.MinValue;
        string? error = null;
        var progress = new SynchronousProgress<JSONMessage>(m =>
        {
            if (m.Error?.Message is { Length: > 0 } message)
            {
                error = message;
                return;
            }

            pull.Apply(m);
            var now = time.GetUtcNow();

            // Nothing to count before the engine names the layers ("0 of 0 layers" says nothing).
            if (pull.Layers > 0 && now - lastShown >= ProgressEvery)
            {
                lastShown = now;
                registry.Update(key, i => i with { Message = pull.Describe() }, i => i.Since == since && i.State == InstanceState.Starting);
            }
        });
        registry.Update(key, i => i with { Message = $"pulling {spec.Image}" }, i => i.Since == since);
        try
        {
            await engine.Client.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = image, Tag = tag }, null, progress, cancellationToken);
        }
        catch (DockerApiException ex)
        {
            error = DockerEngine.EngineMessage(ex);
        }

        if (error is not null)
        {
            // With pull: always, an image already here still starts when the registry cannot be reached.
            return present ? null : $"cannot pull {spec.Image}: {error}";
        }

        engine.ImageSeen(spec.Image, true);
        LogPulled(spec.Image);
        return null;
    }

    /// <summary>A container of the same name left behind (this cf-orch's, not running) is removed; any other is a clear refusal.</summary>
    private async Task<string?> ClearNameAsync(string name, CancellationToken cancellationToken)
    {
        ContainerInspectResponse existing;
        try
        {
            existing = await engine.Client.Containers.InspectContainerAsync(name, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            return null;
        }

        var ours = existing.Config?.Labels?.TryGetValue(ContainerRequest.OwnerLabel, out var owner) == true && owner == Owner;
        if (!ours)
        {
            return $"a container named {name} already exists and this cf-orch did not start it; remove it (docker rm {name}) or adopt it with container_name: {name}";
        }

        if (existing.State?.Running == true && !_runs.Values.Any(r => r.Id == existing.ID && r.Stopping))
        {
            // This cf-orch's, still running, not being stopped: never killed to make room for a copy of itself.
            return $"its container {name} is already running (started by this cf-orch; it is taken back as soon as the engine's containers are read again)";
        }

        await RemoveQuietlyAsync(existing.ID);
        return null;
    }

    private async Task RemoveQuietlyAsync(string id)
    {
        try
        {
            await engine.Client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = false }, CancellationToken.None);
        }
        catch (DockerContainerNotFoundException)
        {
        }
        catch (Exception ex) when (ex is DockerApiException or DockerUnavailableException || DockerEngine.IsUnreachable(ex))
        {
            // Removal already in progress (409), or the engine went away: the next start of the name clears it.
            var why = DockerEngine.EngineMessage(ex);
            LogRemoveFailed(id, why);
        }
    }

    private void Track(ContainerRun run)
    {
        if (_runs.TryGetValue(run.Key, out var previous) && previous.Id != run.Id)
        {
            previous.StopFollowing();
        }

        _runs[run.Key] = run;
    }

    /// <summary>Copies the container's output into its ring until it ends or the run is let go.</summary>
    private void Follow(ContainerRun run) => run.StartFollowing(async token =>
    {
        var buffer = new byte[16 * 1024];
        var splitters = new[] { new LineSplitter(run.Output, LogStream.Stdout), new LineSplitter(run.Output, LogStream.Stderr) };
        try
        {
            using var stream = await engine.Client.Containers.GetContainerLogsAsync(run.Id, new ContainerLogsParameters
            {
                Follow = true,
                ShowStdout = true,
                ShowStderr = true,
                Tail = "200",
            }, token);
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, token);
                if (read.EOF)
                {
                    break;
                }

                splitters[read.Target == MultiplexedStream.TargetStream.StandardError ? 1 : 0].Add(buffer.AsSpan(0, read.Count));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or DockerApiException || DockerEngine.IsUnreachable(ex))
        {
            // The run was let go, the container was removed, or the engine went away.
        }

        foreach (var splitter in splitters)
        {
            splitter.Flush();
        }
    }, _disposed.Token);

    private InstanceSnapshot Fail(InstanceKey key, DateTimeOffset since, string message)
    {
        LogLaunchFailed(key, message);
        return lifecycle.End(key, InstanceState.Failed, HistoryKind.Stopped, message, run: since) ?? registry.Get(key)!;
    }

    /// <summary>The lease's GPU as the NVIDIA toolkit names it: its UUID when NVML gave one, else its index.</summary>
    private string GpuDevice(int index) =>
        gpus.Current.Gpus.FirstOrDefault(g => g.Index == index) is { Uuid: { } uuid } && uuid.StartsWith("GPU-", StringComparison.Ordinal) && !uuid.StartsWith("GPU-simulated", StringComparison.Ordinal)
            ? uuid
            : index.ToString(CultureInfo.InvariantCulture);

    /// <summary><c>repo/name:tag</c> (or <c>@digest</c>) → (repo/name, tag); no tag means latest.</summary>
    public static (string Image, string Tag) SplitReference(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at > 0)
        {
            return (reference[..at], reference[(at + 1)..]);
        }

        var colon = reference.LastIndexOf(':');
        return colon > reference.LastIndexOf('/') ? (reference[..colon], reference[(colon + 1)..]) : (reference, "latest");
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;

    /// <summary>Lets go of every run (their containers keep running: the next cf-orch attaches to them). Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeCount, 1) != 0)
        {
            return;
        }

        // Cancelled, not disposed: background reads still hold its token.
        _disposed.Cancel();
        foreach (var run in _runs.Values)
        {
            run.StopFollowing();
        }
    }

    private int _disposeCount;

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key}: started container {Name} ({Id}) from {Image}")]
    private partial void LogStarted(InstanceKey key, string name, string id, string image);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key}: container {Id} of this cf-orch runs, but another run of the instance is tracked; it is left running — stop it with docker stop if it is not wanted")]
    private partial void LogUntracked(InstanceKey key, string id);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The Docker engine's event stream ended: {Message}")]
    private partial void LogStreamEnded(string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pulled {Image}")]
    private partial void LogPulled(string image);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key}: container {Name} ended: {Message}")]
    private partial void LogExited(InstanceKey key, string name, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} cannot start: {Message}")]
    private partial void LogLaunchFailed(InstanceKey key, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key}: stopping container {Name} failed: {Message}")]
    private partial void LogStopFailed(InstanceKey key, string name, string message);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Removing container {Id} failed: {Message}")]
    private partial void LogRemoveFailed(string id, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Handling the exit of container {Id} failed")]
    private partial void LogCrashHandlerFailed(string id, Exception exception);
}
