using System.Threading.Channels;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using SQLitePCL;

namespace CfOrch.Web.Data;

/// <summary>
/// Writes lease history and managed-instance records to SQLite off the hot path: callers enqueue and return; one
/// background loop writes in batches; a clean shutdown drains the queue, so nothing is lost. A batch that cannot be
/// written (disk full, read-only, I/O error) is kept and retried with back-off while <see cref="StorageHealth"/> says
/// so; history events wait in a bounded queue (<see cref="MaxPendingEvents"/>; beyond it they are dropped and counted),
/// instance records are never dropped.
/// </summary>
public sealed partial class HistoryWriter(IDbContextFactory<CfOrchDb> dbFactory, HistoryChanges changes, StorageHealth health, TimeProvider time, ILogger<HistoryWriter> logger)
    : BackgroundService, IHistorySink, IInstanceStore, ILeaseStore
{
    private const int MaxBatch = 5000;

    /// <summary>History events waiting to be written, at most (about 50 MB); more while storage fails are dropped and counted.</summary>
    public const int MaxPendingEvents = 250_000;

    /// <summary>Retries of a failed write wait 1 s, 2 s, 4 s … at most this long.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly List<Work> _retry = [];
    private int _pendingEvents;

    /// <summary>How long the writer lets records gather before it writes them (one transaction per batch).</summary>
    private static readonly TimeSpan BatchWindow = TimeSpan.FromMilliseconds(50);
    private static readonly string[] ClientLeaseColumns = ["$lease", "$node", "$gpu", "$holder", "$mb", "$priority", "$granted", "$expires"];
    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    private long _written;
    private TaskCompletionSource _flushRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Events and records written so far (for tests and metrics).</summary>
    public long Written => Interlocked.Read(ref _written);

    public void Record(HistoryEvent historyEvent)
    {
        ArgumentNullException.ThrowIfNull(historyEvent);

        // A client's lease events are never dropped: they keep its row in client_leases, which a restart restores from.
        if (Interlocked.Increment(ref _pendingEvents) > MaxPendingEvents && historyEvent.Origin != "client")
        {
            Interlocked.Decrement(ref _pendingEvents);
            health.EventDropped();
            return;
        }

        Enqueue(new Work.Event(historyEvent));
    }

    public async Task SaveAsync(ManagedInstanceRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        // While writes fail, a start is told at once (not after the retry's back-off), with the reason.
        if (health.Problem is { } problem)
        {
            throw new IOException($"the database could not be written: {problem.Detail}");
        }

        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Work.SaveInstance(record, written)))
        {
            throw new IOException("cf-orch is stopping: nothing more is recorded");
        }

        await written.Task.WaitAsync(cancellationToken);
    }

    public void Remove(InstanceKey key) => Enqueue(new Work.RemoveInstance(key));

    public async Task<IReadOnlyList<ManagedInstanceRecord>> LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.ManagedInstances.AsNoTracking().ToListAsync(cancellationToken);
        return rows.Select(r => new ManagedInstanceRecord(
            new InstanceKey(r.Service, r.NodeId, r.GpuIndex), r.Pid, r.ProcessStartTime, r.Url, r.HealthPath, r.Model, r.BudgetMb,
            DateTimeOffset.FromUnixTimeMilliseconds(r.StartedAtUnixMs))).ToList();
    }

    public async Task<IReadOnlyList<Lease>> LoadClientLeasesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.ClientLeases.AsNoTracking().ToListAsync(cancellationToken);
        return rows.Select(r => new Lease
        {
            LeaseId = r.LeaseId,
            NodeId = r.NodeId,
            GpuIndex = r.GpuIndex,
            Holder = r.Holder,
            Mb = r.Mb,
            Priority = r.Priority,
            Origin = HolderOrigin.Client,
            GrantedAt = DateTimeOffset.FromUnixTimeMilliseconds(r.GrantedAtUnixMs),
            ExpiresAt = r.ExpiresAtUnixMs is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null,
        }).ToList();
    }

    public async Task<IReadOnlyList<OpenLease>> OpenLeasesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var granted = KindNames[(int)HistoryKind.Granted];
        var rows = await db.LeaseEvents.AsNoTracking()
            .Where(g => g.Kind == granted && g.LeaseId != null && !db.LeaseEvents.Any(c => c.LeaseId == g.LeaseId && c.Kind != granted))
            .ToListAsync(cancellationToken);
        return rows.Select(r => new OpenLease(r.LeaseId!, r.NodeId, r.GpuIndex, r.Service, r.Holder, r.Origin, r.BudgetMb, DateTimeOffset.FromUnixTimeMilliseconds(r.AtUnixMs))).ToList();
    }

    public async Task<DateTimeOffset?> LastEventAtAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        // GPU samples are taken every 15 s whatever happens: the newest of them and of the lease events is the closest
        // the history comes to the moment cf-orch stopped.
        var lastEvent = await db.LeaseEvents.AsNoTracking().MaxAsync(e => (long?)e.AtUnixMs, cancellationToken);
        var lastSample = await db.GpuSamples.AsNoTracking().MaxAsync(s => (long?)s.AtUnixMs, cancellationToken);
        var last = Math.Max(lastEvent ?? long.MinValue, lastSample ?? long.MinValue);
        return last == long.MinValue ? null : DateTimeOffset.FromUnixTimeMilliseconds(last);
    }

    public async Task<IReadOnlyList<KeptLoan>> LoadLoansAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.LeaseLoans.AsNoTracking().OrderBy(r => r.Id).ToListAsync(cancellationToken);
        return rows
            .Select(r => Enum.TryParse<HolderOrigin>(r.ForOrigin, ignoreCase: true, out var origin)
                ? new KeptLoan(r.NodeId, r.GpuIndex, r.Lender, r.ForLeaseId, r.ForHolder, r.ForService, origin, r.Mb)
                : null)
            .OfType<KeptLoan>()
            .ToList();
    }

    public void KeepLoans(IReadOnlyList<KeptLoan> loans)
    {
        ArgumentNullException.ThrowIfNull(loans);
        Enqueue(new Work.KeepLoans(loans));
    }

    /// <summary>Waits until everything queued before the call is written (tests; shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Work.Flush(done)))
        {
            return;
        }

        Volatile.Read(ref _flushRequested).TrySetResult();

        await done.Task.WaitAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<Work>(MaxBatch);
        var failures = 0;

        // Not stoppingToken: on shutdown the writer is completed and the loop drains what is left, then ends.
        while (_retry.Count > 0 || await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();

            // What could not be written last time goes first, in its order.
            batch.AddRange(_retry);
            _retry.Clear();
            Take(batch);

            // Let a burst gather (bounded by the window, cut short by a flush or shutdown) so it costs one transaction.
            var flushRequest = Volatile.Read(ref _flushRequested);
            if (batch.Count < MaxBatch && !batch.Any(w => w is Work.Flush) && !flushRequest.Task.IsCompleted && !stoppingToken.IsCancellationRequested)
            {
                await Task.WhenAny(Task.Delay(BatchWindow, CancellationToken.None), flushRequest.Task, _queue.Reader.Completion);
                Take(batch);
            }

            if (flushRequest.Task.IsCompleted)
            {
                Interlocked.Exchange(ref _flushRequested, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                Take(batch);
            }

            try
            {
                await WriteAsync(batch);
                Interlocked.Add(ref _pendingEvents, -batch.Count(w => w is Work.Event));
                failures = 0;
                if (batch.Any(w => w is not Work.Flush))
                {
                    // Only a real write proves the database writable again (a batch of flush requests writes nothing).
                    health.WriteSucceeded();
                }
                foreach (var save in batch.OfType<Work.SaveInstance>())
                {
                    save.Written.TrySetResult();
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // History must never stop cf-orch: the batch is kept and retried after a back-off, and storage reports
                // itself unhealthy meanwhile. On shutdown what cannot be written is given up, and said so.
                failures++;
                health.WriteFailed(ex.GetBaseException().Message);

                // A start waits for its record: it is told now (and stops its process) rather than retried later.
                foreach (var save in batch.OfType<Work.SaveInstance>())
                {
                    save.Written.TrySetException(new IOException($"the database could not be written: {ex.GetBaseException().Message}", ex));
                }

                batch.RemoveAll(w => w is Work.SaveInstance);
                if (failures == 1)
                {
                    LogWriteFailed(ex, batch.Count);
                }

                if (!stoppingToken.IsCancellationRequested)
                {
                    _retry.AddRange(batch.Where(w => w is not Work.Flush));
                    var delay = TimeSpan.FromSeconds(Math.Min(MaxRetryDelay.TotalSeconds, Math.Pow(2, Math.Min(failures - 1, 10))));
                    try
                    {
                        await Task.Delay(delay, time, stoppingToken);
                    }
                    catch (OperationCanceledException)
                    {
                        // Shutting down: one last try below, by the loop.
                    }
                }
                else
                {
                    LogGivenUp(batch.Count(w => w is not Work.Flush));
                }
            }
            finally
            {
                foreach (var flush in batch.OfType<Work.Flush>())
                {
                    flush.Done.TrySetResult();
                }
            }
        }
    }

    private void Take(List<Work> batch)
    {
        while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var work))
        {
            batch.Add(work);
        }
    }

    private async Task WriteAsync(List<Work> batch)
    {
        if (batch.All(w => w is Work.Flush))
        {
            return;
        }

        // Plain prepared inserts in one transaction: thousands of rows per batch cost a few milliseconds, where EF's
        // change tracking would cost the lease path its CPU.
        await using var db = await dbFactory.CreateDbContextAsync();
        var connection = (SqliteConnection)db.Database.GetDbConnection();
        await connection.OpenAsync();
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
        var events = batch.OfType<Work.Event>().ToList();
        if (events.Count > 0)
        {
            InsertEvents(connection, events);
        }

        // A client's lease is kept while it is held, in the same transaction as its history: after a crash the two agree.
        // Only each lease's last event in the batch counts (what applying them in order would leave). A lease granted and
        // released within one batch was never written (a grant is recorded once, for a new id; a lease restored at start-up
        // records none), so it costs nothing here.
        var lastOfLease = new Dictionary<string, HistoryEvent>(StringComparer.Ordinal);
        var grantedHere = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in events)
        {
            if (w.HistoryEvent is { Origin: "client", LeaseId: { } id } e)
            {
                lastOfLease[id] = e;
                if (e.Kind == HistoryKind.Granted)
                {
                    grantedHere.Add(id);
                }
            }
        }

        var clientLeases = lastOfLease.Values.Where(e => e.Kind == HistoryKind.Granted || !grantedHere.Contains(e.LeaseId!)).ToList();
        if (clientLeases.Count > 0)
        {
            await using var keep = connection.CreateCommand();
            keep.Transaction = transaction;
            keep.CommandText = """
                INSERT OR REPLACE INTO client_leases (LeaseId, NodeId, GpuIndex, Holder, Mb, Priority, GrantedAtUnixMs, ExpiresAtUnixMs)
                VALUES ($lease, $node, $gpu, $holder, $mb, $priority, $granted, $expires)
                """;
            var k = ClientLeaseColumns.Select(name => keep.Parameters.Add(new SqliteParameter { ParameterName = name })).ToArray();
            keep.Prepare();
            await using var forget = connection.CreateCommand();
            forget.Transaction = transaction;
            forget.CommandText = "DELETE FROM client_leases WHERE LeaseId = $lease";
            var f = forget.Parameters.Add(new SqliteParameter { ParameterName = "$lease" });
            forget.Prepare();
            foreach (var e in clientLeases)
            {
                if (e.Kind == HistoryKind.Granted)
                {
                    k[0].Value = e.LeaseId;
                    k[1].Value = e.NodeId;
                    k[2].Value = e.GpuIndex;
                    k[3].Value = e.Holder;
                    k[4].Value = e.BudgetMb;
                    k[5].Value = e.Priority ?? 2;
                    k[6].Value = (e.GrantedAt ?? e.At).ToUnixTimeMilliseconds();
                    k[7].Value = (object?)e.ExpiresAt?.ToUnixTimeMilliseconds() ?? DBNull.Value;
                    keep.ExecuteNonQuery();
                }
                else
                {
                    f.Value = e.LeaseId;
                    forget.ExecuteNonQuery();
                }
            }
        }

        // Only the last save or removal of each instance in the batch matters.
        var lastByKey = new Dictionary<InstanceKey, Work>();
        foreach (var work in batch)
        {
            switch (work)
            {
                case Work.SaveInstance s:
                    lastByKey[s.Record.Key] = s;
                    break;
                case Work.RemoveInstance r:
                    lastByKey[r.Key] = r;
                    break;
            }
        }

        var loans = batch.OfType<Work.KeepLoans>().LastOrDefault();
        if (lastByKey.Count > 0 || loans is not null)
        {
            await db.Database.UseTransactionAsync(transaction);
        }

        if (lastByKey.Count > 0)
        {
            foreach (var (key, work) in lastByKey)
            {
                await db.ManagedInstances.Where(x => x.Service == key.Service && x.NodeId == key.NodeId && x.GpuIndex == key.GpuIndex).ExecuteDeleteAsync();
                if (work is Work.SaveInstance save)
                {
                    db.ManagedInstances.Add(ToRow(save.Record));
                }
            }

            await db.SaveChangesAsync();
        }

        // The loans are kept whole: only the batch's last list counts.
        if (loans is not null)
        {
            await db.LeaseLoans.ExecuteDeleteAsync();
            db.LeaseLoans.AddRange(loans.Loans.Select(k => new LeaseLoanRow
            {
                NodeId = k.NodeId,
                GpuIndex = k.GpuIndex,
                Lender = k.Lender,
                ForLeaseId = k.ForLeaseId,
                ForHolder = k.ForHolder,
                ForService = k.ForService,
                ForOrigin = k.ForOrigin.ToString().ToLowerInvariant(),
                Mb = k.Mb,
            }));
            await db.SaveChangesAsync();
        }

        await transaction.CommitAsync();
        Interlocked.Add(ref _written, batch.Count(w => w is not Work.Flush));
        if (events.Count > 0)
        {
            changes.Notify();
        }
    }

    /// <summary>
    /// The batch's lease events, through SQLite's own statement API on the transaction's connection: one prepared
    /// statement, values bound by position. ADO.NET's command would look each parameter up by name, box each number and
    /// create a data reader for every row (about a third of the writer's time, measured with <c>bench --history</c>).
    /// </summary>
    private static void InsertEvents(SqliteConnection connection, List<Work.Event> events)
    {
        var db = connection.Handle!;
        Check(raw.sqlite3_prepare_v2(db, """
            INSERT INTO lease_events (AtUnixMs, Kind, LeaseId, NodeId, GpuIndex, Service, Holder, Origin, BudgetMb, MeasuredMb, Reason, GrantedAtUnixMs)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
            """, out var insert), db);
        using (insert)
        {
            foreach (var work in events)
            {
                var e = work.HistoryEvent;
                raw.sqlite3_bind_int64(insert, 1, e.At.ToUnixTimeMilliseconds());
                raw.sqlite3_bind_text(insert, 2, KindNames[(int)e.Kind]);
                BindText(insert, 3, e.LeaseId);
                raw.sqlite3_bind_text(insert, 4, e.NodeId);
                raw.sqlite3_bind_int64(insert, 5, e.GpuIndex);
                BindText(insert, 6, e.Service);
                raw.sqlite3_bind_text(insert, 7, e.Holder);
                raw.sqlite3_bind_text(insert, 8, e.Origin);
                raw.sqlite3_bind_int64(insert, 9, e.BudgetMb);
                BindInt64(insert, 10, e.MeasuredMb);
                raw.sqlite3_bind_text(insert, 11, e.Reason.Length > LeaseEventRow.MaxReasonLength ? e.Reason[..LeaseEventRow.MaxReasonLength] : e.Reason);
                BindInt64(insert, 12, e.GrantedAt?.ToUnixTimeMilliseconds());
                var rc = raw.sqlite3_step(insert);
                raw.sqlite3_reset(insert);
                if (rc != raw.SQLITE_DONE)
                {
                    Check(rc, db);
                }
            }
        }

        static void BindText(sqlite3_stmt statement, int index, string? value)
        {
            if (value is null)
            {
                raw.sqlite3_bind_null(statement, index);
            }
            else
            {
                raw.sqlite3_bind_text(statement, index, value);
            }
        }

        static void BindInt64(sqlite3_stmt statement, int index, long? value)
        {
            if (value is { } v)
            {
                raw.sqlite3_bind_int64(statement, index, v);
            }
            else
            {
                raw.sqlite3_bind_null(statement, index);
            }
        }

        // An error (a full disk, a read-only or corrupt file) as the exception Microsoft.Data.Sqlite would throw.
        static void Check(int rc, sqlite3 db) => SqliteException.ThrowExceptionForRC(rc, db);
    }

    private void Enqueue(Work work)
    {
        if (!_queue.Writer.TryWrite(work))
        {
            LogDroppedAfterShutdown();
        }
    }

    private static readonly string[] KindNames = Enum.GetValues<HistoryKind>().Select(k => k.ToString().ToLowerInvariant()).ToArray();

    private static ManagedInstanceRow ToRow(ManagedInstanceRecord r) => new()
    {
        Service = r.Key.Service,
        NodeId = r.Key.NodeId,
        GpuIndex = r.Key.GpuIndex,
        Pid = r.Pid,
        ProcessStartTime = r.ProcessStartTime,
        Url = r.Url,
        HealthPath = r.HealthPath,
        Model = r.Model,
        BudgetMb = r.BudgetMb,
        StartedAtUnixMs = r.StartedAt.ToUnixTimeMilliseconds(),
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Count} history records to SQLite failed; they are kept and retried, and cf-orch reports its storage unhealthy until a write succeeds")]
    private partial void LogWriteFailed(Exception ex, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "cf-orch is stopping and {Count} history records could not be written")]
    private partial void LogGivenUp(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A history record arrived after shutdown and was not written")]
    private partial void LogDroppedAfterShutdown();

    private abstract record Work
    {
        public sealed record Event(HistoryEvent HistoryEvent) : Work;

        public sealed record SaveInstance(ManagedInstanceRecord Record, TaskCompletionSource Written) : Work;

        public sealed record RemoveInstance(InstanceKey Key) : Work;

        public sealed record Flush(TaskCompletionSource Done) : Work;

        public sealed record KeepLoans(IReadOnlyList<KeptLoan> Loans) : Work;
    }
}
