using System.Text.Json;
using System.Threading.Channels;
using CfOrch.Core.Orchestration;
using CfOrch.Core.State;
using CfOrch.Core.Supervision;
using CfOrch.Core.Changes;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Allocations;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

/// <summary>
/// Server-sent events: the live state stream (<c>GET /api/events</c>) and a live log tail. Bounded for strangers: at
/// most <c>CfOrch:Api:MaxStreams</c> streams at once (the next one gets 429), a client whose connection takes no data
/// for 30 s is dropped, and a client that stops reading is dropped after <see cref="MaxBacklog"/> unsent changes.
/// </summary>
public static partial class ServerSentEvents
{
    /// <summary>A comment is sent after this long without an event, so that proxies and clients see the stream alive.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>A write that the client has not taken after this long (it stopped reading) ends the stream.</summary>
    public static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Unsent changes after which a client that stopped reading is dropped.</summary>
    public const int MaxBacklog = 50_000;

    /// <summary>
    /// One <c>snapshot</c> event with the whole state, then one event per change, named by its kind
    /// (<c>instance</c>, <c>instance_removed</c>, <c>lease_granted</c>, <c>lease_updated</c>, <c>lease_released</c>,
    /// <c>allocation</c>, <c>allocation_released</c>, <c>gpus</c>, <c>model_unloaded</c>, <c>runtime</c>, <c>nodes</c>), and a comment every 15 s to keep proxies open.
    /// </summary>
    public static async Task StreamStateAsync(HttpContext http, Orchestrator orchestrator)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(orchestrator);
        using var slot = await EnterAsync(http);
        if (slot is null)
        {
            return;
        }

        var ct = http.RequestAborted;
        var sse = new Sender(http);
        try
        {
            Start(http);

            // A client that stops reading is dropped after this many unsent changes (its EventSource reconnects and
            // gets a fresh snapshot) rather than holding them in memory for ever.
            var subscription = orchestrator.Subscribe(ct, MaxBacklog);
            await sse.EventAsync("snapshot", Snapshot(subscription.Initial, orchestrator));
            await using var changes = subscription.Changes.GetAsyncEnumerator(ct);
            var next = changes.MoveNextAsync().AsTask();
            while (true)
            {
                if (!await sse.WaitAsync(next))
                {
                    continue;
                }

                if (!await next)
                {
                    return;
                }

                foreach (var change in changes.Current)
                {
                    var (name, data) = Describe(change, orchestrator);
                    await sse.EventAsync(name, data, flush: false);
                }

                await sse.FlushAsync();
                next = changes.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (StateStreamOverflowException ex)
        {
            await sse.EventAsync("overflow", new { detail = ex.Message });
        }
        catch (StalledException)
        {
            sse.Drop();
        }
    }

    /// <summary>The last <paramref name="tail"/> lines, then every new line as a <c>line</c> event, each as <paramref name="shown"/> shows it.</summary>
    public static async Task StreamLogAsync(HttpContext http, LogRing ring, int tail, Func<string, string> shown)
    {
        ArgumentNullException.ThrowIfNull(shown);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(ring);
        using var slot = await EnterAsync(http);
        if (slot is null)
        {
            return;
        }

        var ct = http.RequestAborted;
        var sse = new Sender(http);
        var lines = Channel.CreateBounded<LogLine>(new BoundedChannelOptions(5000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        void OnLine(LogLine line) => lines.Writer.TryWrite(line);
        ring.Appended += OnLine;
        try
        {
            Start(http);
            long last = 0;
            foreach (var line in ring.Tail(tail))
            {
                await sse.EventAsync("line", LogLineRow.From(line, shown), flush: false);
                last = line.Sequence;
            }

            await sse.FlushAsync();
            var ready = lines.Reader.WaitToReadAsync(ct).AsTask();
            while (true)
            {
                if (!await sse.WaitAsync(ready))
                {
                    continue;
                }

                if (!await ready)
                {
                    return;
                }

                while (lines.Reader.TryRead(out var line))
                {
                    if (line.Sequence > last)
                    {
                        await sse.EventAsync("line", LogLineRow.From(line, shown), flush: false);
                        last = line.Sequence;
                    }
                }

                await sse.FlushAsync();
                ready = lines.Reader.WaitToReadAsync(ct).AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (StalledException)
        {
            sse.Drop();
        }
        finally
        {
            ring.Appended -= OnLine;
        }
    }

    /// <summary>A slot among the open streams, or null after answering 429 when none may be had.</summary>
    private static async Task<IDisposable?> EnterAsync(HttpContext http)
    {
        var gate = http.RequestServices.GetRequiredService<StreamGate>();
        var canControl = http.RequestServices.GetRequiredService<Auth.AccessEvaluator>().Evaluate(http).CanControl;
        var (slot, refusal) = gate.TryEnter(http.Connection.RemoteIpAddress, canControl);
        if (slot is null)
        {
            http.Response.Headers.RetryAfter = "30";
            await ApiJson.WriteErrorAsync(http, StatusCodes.Status429TooManyRequests, refusal!);
        }

        return slot;
    }

    public static object Snapshot(EngineSnapshot s, Orchestrator o) => new
    {
        version = s.Version,
        node_id = o.NodeId,
        services = s.Instances.Select(i => ServiceRow.From(i, o)),
        leases = s.Leases.Select(LeaseRow.From),
        allocations = s.Allocations.Select(AllocationRow.From),
        gpus = s.Gpus.Gpus.Select(NodeGpuRow.From),
        accounts = s.Accounts.Select(a => new { gpu_id = a.GpuIndex, account = GpuAccountRow.From(a) }),
        runtimes = s.Runtimes.Select(RuntimeRow.From),
    };

    private static (string Name, object Data) Describe(StateChange change, Orchestrator o) => change switch
    {
        InstanceChanged c => ("instance", ServiceRow.From(c.Instance, o)),
        InstanceRemoved c => ("instance_removed", new { service = c.Key.Service, node_id = c.Key.NodeId, gpu_id = c.Key.GpuIndex }),
        LeaseGranted c => ("lease_granted", LeaseRow.From(c.Lease)),
        LeaseUpdated c => ("lease_updated", LeaseRow.From(c.Lease)),
        LeaseReleased c => ("lease_released", new { lease = LeaseRow.From(c.Lease), kind = c.Kind.ToString().ToLowerInvariant(), reason = c.Reason }),
        ModelUnloaded c => ("model_unloaded", new { service = c.Key.Service, node_id = c.Key.NodeId, gpu_id = c.Key.GpuIndex, model = c.Model, mb = c.Mb, @for = c.For, reason = c.Reason }),
        AllocationChanged c => ("allocation", AllocationRow.From(c.Allocation)),
        AllocationReleased c => ("allocation_released", new { allocation = AllocationRow.From(c.Allocation), reason = c.Reason }),
        GpusChanged c => ("gpus", new
        {
            gpus = c.Gpus.Gpus.Select(NodeGpuRow.From),
            accounts = c.Accounts.Select(a => new { gpu_id = a.GpuIndex, account = GpuAccountRow.From(a) }),
        }),
        Core.Runtimes.RuntimeStatusChanged c => ("runtime", RuntimeRow.From(c.Status)),
        Core.Nodes.NodesChanged c => ("nodes", c.Nodes.Select(n => new
        {
            node_id = n.NodeId,
            agent_url = n.AgentUrl,
            online = n.Online,
            last_heartbeat = LeaseRow.Unix(n.LastHeartbeat) ?? LeaseRow.NoExpiry,
            problem = n.Problem,
            gpus = n.Gpus.Select(g => new NodeGpuRow(g.GpuId, g.Name, g.TotalMb, g.UsedMb, g.FreeMb)),
        })),
        _ => ("unknown", new { }),
    };

    private static void Start(HttpContext http)
    {
        http.Response.Headers.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Dropped the event stream of {Remote} ({Path}): it took no data for {Stall}")]
    private static partial void LogDropped(ILogger logger, System.Net.IPAddress? remote, PathString path, TimeSpan stall);

    /// <summary>A write the client did not take within <see cref="StallTimeout"/>.</summary>
    private sealed class StalledException : Exception;

    /// <summary>Writes one stream's events: every write must be taken by the client within <see cref="StallTimeout"/>.</summary>
    private sealed class Sender(HttpContext http)
    {
        private readonly TimeProvider _time = http.RequestServices.GetRequiredService<TimeProvider>();
        private readonly CancellationToken _aborted = http.RequestAborted;
        private Task _keepAlive = Task.CompletedTask;

        /// <summary>Waits for <paramref name="next"/>; false when the keep-alive interval passed first (a comment was sent).</summary>
        public async Task<bool> WaitAsync(Task next)
        {
            if (_keepAlive.IsCompleted)
            {
                _keepAlive = Task.Delay(KeepAlive, _time, _aborted);
            }

            if (await Task.WhenAny(next, _keepAlive) == next)
            {
                return true;
            }

            _aborted.ThrowIfCancellationRequested();
            await SendAsync(": keep-alive\n\n", flush: true);
            return false;
        }

        public Task EventAsync(string name, object data, bool flush = true) =>
            SendAsync($"event: {name}\ndata: {JsonSerializer.Serialize(data, ApiJson.Options)}\n\n", flush);

        public Task FlushAsync() => SendAsync(null, flush: true);

        /// <summary>Ends the connection of a client that stopped reading, and says so in the log.</summary>
        public void Drop()
        {
            var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ServerSentEvents));
            LogDropped(logger, http.Connection.RemoteIpAddress, http.Request.Path, StallTimeout);
            http.Abort();
        }

        private async Task SendAsync(string? text, bool flush)
        {
            using var stall = new CancellationTokenSource(StallTimeout, _time);
            using var both = CancellationTokenSource.CreateLinkedTokenSource(_aborted, stall.Token);
            try
            {
                if (text is not null)
                {
                    await http.Response.WriteAsync(text, both.Token);
                }

                if (flush)
                {
                    await http.Response.Body.FlushAsync(both.Token);
                }
            }
            catch (OperationCanceledException) when (stall.IsCancellationRequested && !_aborted.IsCancellationRequested)
            {
                throw new StalledException();
            }
        }
    }
}
