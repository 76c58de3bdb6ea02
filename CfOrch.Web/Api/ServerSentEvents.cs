using System.Text.Json;
using System.Threading.Channels;
using CfOrch.Core.Orchestration;
using CfOrch.Core.State;
using CfOrch.Core.Supervision;

namespace CfOrch.Web.Api;

/// <summary>Server-sent events: the live state stream (<c>GET /api/events</c>) and a live log tail.</summary>
public static class ServerSentEvents
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>Unsent changes after which a client that stopped reading is dropped.</summary>
    public const int MaxBacklog = 50_000;

    /// <summary>
    /// One <c>snapshot</c> event with the whole state, then one event per change, named by its kind
    /// (<c>instance</c>, <c>instance_removed</c>, <c>lease_granted</c>, <c>lease_updated</c>, <c>lease_released</c>,
    /// <c>allocation</c>, <c>allocation_released</c>, <c>gpus</c>), and a comment every 15 s to keep proxies open.
    /// </summary>
    public static async Task StreamStateAsync(HttpContext http, Orchestrator orchestrator)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(orchestrator);
        var ct = http.RequestAborted;
        Start(http);
        // A client that stops reading is dropped after this many unsent changes (its EventSource reconnects and gets a
        // fresh snapshot) rather than holding them in memory for ever.
        var subscription = orchestrator.Subscribe(ct, MaxBacklog);
        await WriteAsync(http, "snapshot", Snapshot(subscription.Initial, orchestrator), ct);
        await using var changes = subscription.Changes.GetAsyncEnumerator(ct);
        var next = changes.MoveNextAsync().AsTask();
        var keepAlive = Task.Delay(KeepAlive, ct);
        try
        {
            while (true)
            {
                if (await Task.WhenAny(next, keepAlive) != next)
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                    keepAlive = Task.Delay(KeepAlive, ct);
                    continue;
                }

                if (!await next)
                {
                    return;
                }

                foreach (var change in changes.Current)
                {
                    var (name, data) = Describe(change, orchestrator);
                    await WriteAsync(http, name, data, ct, flush: false);
                }

                await http.Response.Body.FlushAsync(ct);
                next = changes.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (StateStreamOverflowException ex)
        {
            await WriteAsync(http, "overflow", new { detail = ex.Message }, ct);
        }
    }

    /// <summary>The last <paramref name="tail"/> lines, then every new line as a <c>line</c> event.</summary>
    public static async Task StreamLogAsync(HttpContext http, LogRing ring, int tail)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(ring);
        var ct = http.RequestAborted;
        var lines = Channel.CreateBounded<LogLine>(new BoundedChannelOptions(5000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        void OnLine(LogLine line) => lines.Writer.TryWrite(line);
        ring.Appended += OnLine;
        try
        {
            Start(http);
            long last = 0;
            foreach (var line in ring.Tail(tail))
            {
                await WriteAsync(http, "line", LogLineRow.From(line), ct, flush: false);
                last = line.Sequence;
            }

            await http.Response.Body.FlushAsync(ct);
            while (true)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(KeepAlive);
                try
                {
                    await lines.Reader.WaitToReadAsync(timeout.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                    continue;
                }

                while (lines.Reader.TryRead(out var line))
                {
                    if (line.Sequence > last)
                    {
                        await WriteAsync(http, "line", LogLineRow.From(line), ct, flush: false);
                        last = line.Sequence;
                    }
                }

                await http.Response.Body.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            ring.Appended -= OnLine;
        }
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
    };

    private static (string Name, object Data) Describe(StateChange change, Orchestrator o) => change switch
    {
        InstanceChanged c => ("instance", ServiceRow.From(c.Instance, o)),
        InstanceRemoved c => ("instance_removed", new { service = c.Key.Service, node_id = c.Key.NodeId, gpu_id = c.Key.GpuIndex }),
        LeaseGranted c => ("lease_granted", LeaseRow.From(c.Lease)),
        LeaseUpdated c => ("lease_updated", LeaseRow.From(c.Lease)),
        LeaseReleased c => ("lease_released", new { lease = LeaseRow.From(c.Lease), kind = c.Kind.ToString().ToLowerInvariant(), reason = c.Reason }),
        AllocationChanged c => ("allocation", AllocationRow.From(c.Allocation)),
        AllocationReleased c => ("allocation_released", new { allocation = AllocationRow.From(c.Allocation), reason = c.Reason }),
        GpusChanged c => ("gpus", new
        {
            gpus = c.Gpus.Gpus.Select(NodeGpuRow.From),
            accounts = c.Accounts.Select(a => new { gpu_id = a.GpuIndex, account = GpuAccountRow.From(a) }),
        }),
        _ => ("unknown", new { }),
    };

    private static void Start(HttpContext http)
    {
        http.Response.Headers.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    private static async Task WriteAsync(HttpContext http, string name, object data, CancellationToken ct, bool flush = true)
    {
        var json = JsonSerializer.Serialize(data, ApiJson.Options);
        await http.Response.WriteAsync($"event: {name}\ndata: {json}\n\n", ct);
        if (flush)
        {
            await http.Response.Body.FlushAsync(ct);
        }
    }
}
