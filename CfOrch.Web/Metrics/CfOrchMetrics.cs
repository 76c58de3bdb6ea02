using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.State;
using CfOrch.Core.Storage;
using Prometheus;

namespace CfOrch.Web.Metrics;

/// <summary>
/// cf-orch's Prometheus metrics (prometheus-net): per-GPU VRAM gauges (total, used, free, leased, committed,
/// measured, external), leases and instances by kind, allocations — read from the engine at each scrape — and
/// probe latency, process starts and failures, counted from the live state stream.
/// </summary>
public sealed class CfOrchMetrics : BackgroundService
{
    private static readonly string[] GpuLabel = ["gpu"];

    private readonly Orchestrator _orchestrator;
    private readonly Gauge _total;
    private readonly Gauge _used;
    private readonly Gauge _free;
    private readonly Gauge _leased;
    private readonly Gauge _committed;
    private readonly Gauge _measured;
    private readonly Gauge _external;
    private readonly Gauge _available;
    private readonly Gauge _leases;
    private readonly Gauge _instances;
    private readonly Gauge _allocations;
    private readonly Histogram _probeLatency;
    private readonly Counter _starts;
    private readonly Counter _failures;
    private readonly Counter _restarts;
    private readonly Counter _historyWriteFailures;
    private readonly Counter _historyDropped;
    private readonly Counter _modelUnloads;
    private readonly StorageHealth _storage;

    private readonly StateStream _stream;

    // Only the changes the counters count (an instance's, a model unloaded) reach the loop: a lease granted or released
    // (four changes per lease pair) costs the metrics nothing.
    private readonly System.Threading.Channels.Channel<Core.Changes.StateChange> _counted =
        System.Threading.Channels.Channel.CreateUnbounded<Core.Changes.StateChange>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });

    public CfOrchMetrics(Orchestrator orchestrator, StateStream stream, StorageHealth storage)
    {
        _orchestrator = orchestrator;
        _stream = stream;
        _storage = storage;

        // A registry per app (not prometheus-net's static default), with the .NET process metrics in it.
        Registry = Prometheus.Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        _total = factory.CreateGauge("cf_orch_gpu_vram_total_mb", "VRAM of the GPU, MB.", GpuLabel);
        _used = factory.CreateGauge("cf_orch_gpu_vram_used_mb", "VRAM the GPU reports in use, MB.", GpuLabel);
        _free = factory.CreateGauge("cf_orch_gpu_vram_free_mb", "VRAM the GPU reports free, MB.", GpuLabel);
        _leased = factory.CreateGauge("cf_orch_gpu_vram_leased_mb", "Sum of the lease budgets on the GPU, MB.", GpuLabel);
        _committed = factory.CreateGauge("cf_orch_gpu_vram_committed_mb", "VRAM cf-orch counts as committed (held by leases, external use, reserve), MB.", GpuLabel);
        _measured = factory.CreateGauge("cf_orch_gpu_vram_measured_mb", "VRAM lease holders measurably use, MB.", GpuLabel);
        _external = factory.CreateGauge("cf_orch_gpu_vram_external_mb", "VRAM in use by programs cf-orch does not track, MB.", GpuLabel);
        _available = factory.CreateGauge("cf_orch_gpu_vram_available_mb", "VRAM a new lease can get now, MB.", GpuLabel);
        _leases = factory.CreateGauge("cf_orch_leases", "Active leases.", "gpu", "origin");
        _instances = factory.CreateGauge("cf_orch_instances", "Service instances by state and origin.", "state", "origin");
        _allocations = factory.CreateGauge("cf_orch_allocations", "Active allocations.");
        _probeLatency = factory.CreateHistogram("cf_orch_probe_latency_seconds", "Latency of health probes.", new HistogramConfiguration
        {
            LabelNames = ["service", "ok"],
            Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14),
        });

        _starts = factory.CreateCounter("cf_orch_process_starts_total", "Processes cf-orch started for a service.", "service");
        _failures = factory.CreateCounter("cf_orch_process_failures_total", "Instances that failed (exited unexpectedly, or did not become healthy).", "service");
        _restarts = factory.CreateCounter("cf_orch_process_restarts_total", "Automatic restarts of crashed processes (restart: on-failure); each is counted in the starts too.", "service");
        _historyWriteFailures = factory.CreateCounter("cf_orch_history_write_failures_total", "Writes of history and instance records to SQLite that failed (each is retried).");
        _modelUnloads = factory.CreateCounter("cf_orch_model_unloads_total", "Idle models cf-orch asked an Ollama to unload to make room for a more important lease.", "service", "model");
        _historyDropped = factory.CreateCounter("cf_orch_history_dropped_total", "History events dropped because the queue was full while the database could not be written.");
        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Sets the gauges from the engine's state; called before every scrape.</summary>
    public void Collect()
    {
        _historyWriteFailures.IncTo(_storage.WriteFailures);
        _historyDropped.IncTo(_storage.Dropped);
        var snapshot = _orchestrator.Snapshot();
        foreach (var gpu in snapshot.Gpus.Gpus)
        {
            var label = gpu.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _total.WithLabels(label).Set(gpu.TotalMb);
            _used.WithLabels(label).Set(gpu.UsedMb);
            _free.WithLabels(label).Set(gpu.FreeMb);
        }

        foreach (var account in snapshot.Accounts)
        {
            var label = account.GpuIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _leased.WithLabels(label).Set(account.LeasedMb);
            _committed.WithLabels(label).Set(account.CommittedMb);
            _measured.WithLabels(label).Set(account.MeasuredMb);
            _external.WithLabels(label).Set(account.ExternalMb);
            _available.WithLabels(label).Set(account.AvailableMb);
        }

        foreach (var labels in _leases.GetAllLabelValues())
        {
            _leases.WithLabels(labels).Set(0);
        }

        foreach (var group in snapshot.Leases.GroupBy(l => (l.GpuIndex, l.Origin)))
        {
            _leases.WithLabels(group.Key.GpuIndex.ToString(System.Globalization.CultureInfo.InvariantCulture), group.Key.Origin.ToString().ToLowerInvariant()).Set(group.Count());
        }

        foreach (var state in Enum.GetValues<InstanceState>())
        {
            foreach (var origin in Enum.GetValues<InstanceOrigin>())
            {
                _instances.WithLabels(state.ToString().ToLowerInvariant(), origin.ToString().ToLowerInvariant())
                    .Set(snapshot.Instances.Count(i => i.State == state && i.Origin == origin));
            }
        }

        _allocations.Set(snapshot.Allocations.Count);
    }

    private void Count(Core.Changes.StateChange change)
    {
        if (change is InstanceChanged or ModelUnloaded)
        {
            _counted.Writer.TryWrite(change);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stream.Published += Count;
        var lastProbe = new Dictionary<InstanceKey, DateTimeOffset>();
        var lastRun = new Dictionary<InstanceKey, (DateTimeOffset Since, InstanceState State, int? Pid, int RestartNumber)>();
        var batch = new List<Core.Changes.StateChange>();
        try
        {
            while (await _counted.Reader.WaitToReadAsync(stoppingToken))
            {
                batch.Clear();
                while (_counted.Reader.TryRead(out var change))
                {
                    batch.Add(change);
                }

                foreach (var unloaded in batch.OfType<ModelUnloaded>())
                {
                    _modelUnloads.WithLabels(unloaded.Key.Service, unloaded.Model).Inc();
                }

                foreach (var instance in batch.OfType<InstanceChanged>().Select(c => c.Instance))
                {
                    if (instance.LastProbe is { } probe && (!lastProbe.TryGetValue(instance.Key, out var at) || at != probe.At))
                    {
                        lastProbe[instance.Key] = probe.At;
                        _probeLatency.WithLabels(instance.Service, probe.Ok ? "true" : "false").Observe(probe.LatencyMs / 1000.0);
                    }

                    lastRun.TryGetValue(instance.Key, out var before);
                    var sameRun = before.Since == instance.Since;
                    if (instance is { Origin: InstanceOrigin.Managed, Pid: not null, Reattached: false } && (!sameRun || before.Pid is null))
                    {
                        _starts.WithLabels(instance.Service).Inc();
                    }

                    if (instance.State == InstanceState.Failed && (!sameRun || before.State != InstanceState.Failed))
                    {
                        _failures.WithLabels(instance.Service).Inc();
                    }

                    if (instance.RestartNumber > 0 && !(sameRun && before.RestartNumber == instance.RestartNumber))
                    {
                        _restarts.WithLabels(instance.Service).Inc();
                    }

                    lastRun[instance.Key] = (instance.Since, instance.State, instance.Pid, instance.RestartNumber);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _stream.Published -= Count;
        }
    }
}
