using System.Globalization;
using System.Net.Sockets;
using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Processes;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Runtimes;

/// <summary>
/// The runtime of <c>type: process</c> services, on this machine: argv from args_template (never a shell), its env and
/// cwd, CUDA_VISIBLE_DEVICES, its own process group, output to log files; notices an exit at once, stops with SIGTERM,
/// grace, SIGKILL; re-attaches to its processes after a restart of cf-orch. A problem fails that instance with a clear
/// message.
/// </summary>
public sealed partial class LocalProcessRuntime(
    IProcessLauncher launcher,
    InstanceRegistry registry,
    InstanceLifecycle lifecycle,
    ManagedProcesses processes,
    IInstanceStore store,
    ProfileRegistry profiles,
    IOptions<CfOrchOptions> options,
    ILogger<LocalProcessRuntime> logger) : IServiceRuntime
{
    private static readonly TimeSpan PortCheckTimeout = TimeSpan.FromMilliseconds(300);

    /// <summary>How long a start waits for its record to be written before it gives up (and stops the process).</summary>
    public static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(30);
    private const int FailureLogLines = 20;

    /// <summary>The environment variable every process cf-orch starts carries: <c>{node}/{service}/{gpu}</c>.</summary>
    public const string InstanceMarker = "CF_ORCH_INSTANCE";

    /// <summary>
    /// With it, the data directory of the cf-orch that started the process: another cf-orch on the same machine (its
    /// own data directory) never takes it for its own.
    /// </summary>
    public const string DataDirMarker = "CF_ORCH_DATA_DIR";

    public static string Marker(InstanceKey key) => string.Create(CultureInfo.InvariantCulture, $"{key.NodeId}/{key.Service}/{key.GpuIndex}");

    public string Kind => ProcessSpec.TypeName;

    public bool Runs(ManagedSpec spec) => spec is ProcessSpec;

    public bool Has(InstanceKey key) => processes.Get(key) is not null;

    public LogRing? Logs(InstanceKey key) => processes.Get(key)?.Output;

    public RuntimeStatus Status { get; } = RuntimeStatus.Ready(ProcessSpec.TypeName);

    public Task<RuntimeStatus> RefreshStatusAsync(CancellationToken cancellationToken) => Task.FromResult(Status);

    /// <summary>Never raised: local processes can always be started.</summary>
    public event Action<RuntimeStatus>? StatusChanged
    {
        add { }
        remove { }
    }

    /// <summary>Its runs are recorded in cf-orch's database (<see cref="IInstanceStore"/>): nothing to recover here.</summary>
    public Task<IReadOnlyList<ManagedInstanceRecord>> RecoverAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<ManagedInstanceRecord>>([]);

    /// <summary>The process tree that listens on the service's port.</summary>
    public Task<OutsideRun?> FindOutsideAsync(ServiceProfile service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(service);
        var url = service.Managed?.LocalUrl ?? "";
        return Task.FromResult<OutsideRun?>(new OutsideRun(ProcFs.ServiceProcesses(null, url)));
    }

    /// <summary>A process started outside cf-orch writes its output where it likes: nothing to follow.</summary>
    public void TrackOutside(InstanceKey key, OutsideRun run)
    {
    }

    /// <summary>Each process is watched from its start (its exit task): nothing more to watch.</summary>
    public Task WatchAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public IReadOnlyList<string> LastLines(InstanceSnapshot instance, int count) =>
        processes.Of(instance)?.Output.Tail(count).Select(l => l.Text).ToList() ?? [];

    public IReadOnlyList<int> ProcessesOf(InstanceSnapshot instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return ProcFs.ServiceProcesses(instance.Pid, instance.Url);
    }

    public async Task StopAsync(InstanceSnapshot instance, TimeSpan grace, CancellationToken cancellationToken)
    {
        if (processes.Of(instance) is { } process)
        {
            await process.StopAsync(grace, cancellationToken);
        }
    }

    /// <summary>
    /// Registers the instance as starting and launches its process; returns it starting, or failed. The start's
    /// restart number (0 for a start on request) is part of the first snapshot, so a process that dies at once is still
    /// counted as that restart.
    /// </summary>
    public async Task<InstanceSnapshot> StartAsync(RuntimeStart start, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        var service = start.Service;
        var spec = service.Managed as ProcessSpec ?? throw new ArgumentException($"{service.Name} is not a process service", nameof(start));
        var (gpuIndex, onGpu, leaseId, model, restartNumber) = (start.GpuIndex, start.OnGpu, start.LeaseId, start.Model, start.RestartNumber);
        var key = new InstanceKey(service.Name, options.Value.NodeId, gpuIndex);
        var url = spec.LocalUrl;
        var registered = lifecycle.Register(key, InstanceOrigin.Managed, InstanceState.Starting, url, spec.HealthPath, service.MaxMb, service.Priority, i => i with
        {
            Model = model,
            LeaseId = leaseId,
            Message = "starting",
            RestartNumber = restartNumber,
        });

        if (spec.EffectivePort > 0 && await PortAnswersAsync(spec.Host, spec.EffectivePort, cancellationToken))
        {
            var holders = ProcFs.ListenersOf(spec.EffectivePort);
            return Fail(key, $"port {spec.EffectivePort} is already in use{(holders.Count == 0 ? "" : $" by {holders[0]}")} and it does not answer {spec.HealthPath} as {service.Name}; cf-orch will not start a second copy. Stop whatever holds the port, or set adopt: true if it is this service");
        }

        IReadOnlyList<string> arguments;
        try
        {
            arguments = ArgsTemplate.Expand(spec.ArgsTemplate, new Dictionary<string, string>
            {
                ["port"] = spec.Port.ToString(CultureInfo.InvariantCulture),
                ["gpu_id"] = gpuIndex.ToString(CultureInfo.InvariantCulture),
                ["model"] = model ?? "",
            });
        }
        catch (FormatException ex)
        {
            return Fail(key, $"args_template cannot be split into arguments: {ex.Message}");
        }

        var environment = new Dictionary<string, string>(spec.Env, StringComparer.Ordinal)
        {
            // Marks the process as this instance's, so that a cf-orch restarted before it could record the start finds it.
            [InstanceMarker] = Marker(key),
            [DataDirMarker] = options.Value.ResolvedDataDir(),
        };
        if (onGpu && !environment.ContainsKey("CUDA_VISIBLE_DEVICES"))
        {
            environment["CUDA_VISIBLE_DEVICES"] = gpuIndex.ToString(CultureInfo.InvariantCulture);
        }

        IManagedProcess process;
        try
        {
            process = launcher.Start(new ProcessLaunchSpec(spec.ExecPath, arguments, string.IsNullOrEmpty(spec.Cwd) ? null : spec.Cwd, environment, service.Name, LogPath(key)));
        }
        catch (ProcessLaunchException ex)
        {
            return Fail(key, ex.Message);
        }

        if (processes.Set(key, process) is { } previous)
        {
            await previous.DisposeAsync();
        }

        LogStarted(key, process.Pid, spec.ExecPath);
        var started = registry.Update(key, i => i with { Pid = process.Pid, Message = $"started PID {process.Pid}, waiting for {spec.HealthPath}" }) ?? registry.Get(key)!;
        Watch(key, process);

        // The record that lets a restarted cf-orch re-attach is written before the start is reported to anyone: a
        // process cf-orch could lose track of is stopped instead of orphaned.
        try
        {
            // Not the caller's token: a client that hangs up must not cost a healthy process its record.
            using var bounded = new CancellationTokenSource(RecordTimeout);
            await store.SaveAsync(new ManagedInstanceRecord(key, process.Pid, ProcFs.StartTime(process.Pid), url, spec.HealthPath, model, service.MaxMb, registered.Since), bounded.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
            var why = ex is OperationCanceledException ? $"writing it took longer than {RecordTimeout.TotalSeconds:0} s" : ex.Message;
            var message = $"its start could not be recorded in cf-orch's database ({why}); the process was stopped, so that no process runs that a restarted cf-orch could not find again";

            // Stopping first: the exit that follows is not a crash (no restart policy applies to it). A process that
            // already exited meanwhile has already ended this run. One the health monitor found ready meanwhile (its
            // probes do not wait for the record) is stopped all the same: it has no record either.
            var pid = process.Pid;
            if (lifecycle.Transition(key, InstanceState.Stopping, i => i with { Message = message }, i => i.State is InstanceState.Starting or InstanceState.Running or InstanceState.Idle or InstanceState.Unhealthy && i.Pid == pid) is null)
            {
                return registry.Get(key)!;
            }

            await process.StopAsync(TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS), CancellationToken.None);
            return Fail(key, message);
        }

        return started;
    }

    /// <summary>A managed process exited without being asked to; its instance has just failed (the restart policy listens).</summary>
    public event Action<InstanceSnapshot>? Crashed;

    /// <summary>Where an instance's output goes: <c>{DataDir}/logs/{service}-gpu{n}.out.log</c> and <c>.err.log</c>.</summary>
    public string LogPath(InstanceKey key) =>
        Path.Combine(options.Value.ResolvedDataDir(), "logs", string.Create(CultureInfo.InvariantCulture, $"{key.Service}-gpu{key.GpuIndex}"));

    /// <summary>
    /// The same process: its PID and its start time. A record without a start time is not trusted (the PID alone may
    /// since belong to another program, which cf-orch must never signal).
    /// </summary>
    public bool StillRuns(ManagedInstanceRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return ProcFs.IsRunning(record.Pid) && record.ProcessStartTime is { } startTime && ProcFs.StartTime(record.Pid) == startTime;
    }

    /// <summary>Takes back a process it started before cf-orch restarted, and follows its output and exit again.</summary>
    public async Task AttachAsync(ManagedInstanceRecord record, int priority, string? leaseId, string message)
    {
        ArgumentNullException.ThrowIfNull(record);
        var process = launcher.Attach(record.Pid, record.Key.Service, LogPath(record.Key));
        if (processes.Set(record.Key, process) is { } previous)
        {
            await previous.DisposeAsync();
        }

        lifecycle.Register(record.Key, InstanceOrigin.Managed, InstanceState.Starting, record.Url, record.HealthPath, record.BudgetMb, priority, i => i with
        {
            Pid = record.Pid,
            Reattached = true,
            Model = record.Model,
            LeaseId = leaseId,
            Message = message,
        });
        Watch(record.Key, process);
    }

    /// <summary>
    /// Follows a process cf-orch owns: when it exits without being asked to, its instance fails with the exit code, and
    /// what is left of its process group (a worker, a model runner holding VRAM) is stopped too.
    /// </summary>
    private void Watch(InstanceKey key, IManagedProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        _ = process.Exited.ContinueWith(
            exited =>
            {
                var code = exited.IsCompletedSuccessfully ? exited.Result : null;
                var instance = registry.Get(key);
                if (instance is null || instance.Pid != process.Pid || instance.State is InstanceState.Stopping or InstanceState.Stopped or InstanceState.Failed)
                {
                    return;
                }

                var lines = process.Output.Tail(FailureLogLines).Select(l => l.Text).ToList();
                var message = code is { } c
                    ? $"the process exited with code {c}{(instance.State == InstanceState.Starting ? " while starting" : "")}"
                    : "the process is gone";
                var ended = lifecycle.End(key, InstanceState.Failed, HistoryKind.Lost, message, code, lines, run: instance.Since);

                // The group outlives its leader when a child keeps running: stop it (SIGTERM, grace, SIGKILL). The stop
                // runs once per process: a later stop of this handle signals nothing.
                _ = process.StopAsync(TimeSpan.FromSeconds(profiles.Active.Profile.EvictionTimeoutS), CancellationToken.None);
                if (ended is not null)
                {
                    try
                    {
                        Crashed?.Invoke(ended);
                    }
                    catch (Exception ex)
                    {
                        LogCrashHandlerFailed(key, ex);
                    }
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private InstanceSnapshot Fail(InstanceKey key, string message)
    {
        LogLaunchFailed(key, message);
        return lifecycle.End(key, InstanceState.Failed, HistoryKind.Stopped, message) ?? registry.Get(key)!;
    }

    private static async Task<bool> PortAnswersAsync(string host, int port, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(PortCheckTimeout);
        try
        {
            await client.ConnectAsync(host, port, cts.Token);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Key}: started {ExecPath} as PID {Pid}")]
    private partial void LogStarted(InstanceKey key, int pid, string execPath);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Key} crashed, and handling the crash failed")]
    private partial void LogCrashHandlerFailed(InstanceKey key, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} cannot start: {Message}")]
    private partial void LogLaunchFailed(InstanceKey key, string message);
}
