using System.Net;
using CfOrch.Tests.Api;
using CfOrch.Core.History;
using CfOrch.Tests.Engine;
using CfOrch.Web.Data;
using Microsoft.Data.Sqlite;

namespace CfOrch.Tests.Data;

/// <summary>What survives a restart of cf-orch: clients' leases (same ids), and a history that replays to what was live.</summary>
public sealed class RestartTests : IDisposable
{
    private readonly TempDir _data = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Dictionary<string, string?> Settings => new() { ["CfOrch:DataDir"] = _data.Path };

    private string DatabasePath => Path.Combine(_data.Path, DataServiceCollectionExtensions.DatabaseFileName);

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_clients_lease_is_held_again_after_a_restart_with_the_same_id_and_can_be_released()
    {
        string leaseId;
        await using (var first = ApiTestHost.Start(EngineApp.Profile(), Settings))
        {
            var granted = (await first.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 1500, service = "comfy-client", priority = 3, ttl_s = 3600 })).Is(HttpStatusCode.OK).Json;
            leaseId = granted.GetProperty("lease").GetProperty("lease_id").GetString()!;
        }

        await using var second = ApiTestHost.Start(EngineApp.Profile(), Settings);

        var lease = Assert.Single((await second.GetAsync("/api/leases")).Is(HttpStatusCode.OK).Json.GetProperty("leases").EnumerateArray());
        Assert.Equal((leaseId, "comfy-client", 1500L, 3), (lease.GetProperty("lease_id").GetString(), lease.GetProperty("holder_service").GetString(), lease.GetProperty("mb_granted").GetInt64(), lease.GetProperty("priority").GetInt32()));
        Assert.True(lease.GetProperty("expires_at").GetDouble() > DateTimeOffset.UtcNow.AddMinutes(55).ToUnixTimeSeconds());

        (await second.DeleteAsync($"/api/leases/{leaseId}")).Is(HttpStatusCode.OK);
        await second.Get<HistoryWriter>().FlushAsync(Ct);
        var kinds = (await second.GetAsync($"/api/leases/history?page_size=50")).Json.GetProperty("events").EnumerateArray()
            .Where(e => e.GetProperty("lease_id").GetString() == leaseId).Select(e => e.GetProperty("kind").GetString()).Order(StringComparer.Ordinal);
        Assert.Equal(["granted", "released"], kinds);
    }

    [Fact]
    public async Task A_clients_lease_whose_ttl_ran_out_while_cf_orch_was_down_ends_at_start_up_with_its_reason()
    {
        string leaseId;
        await using (var first = ApiTestHost.Start(EngineApp.Profile(), Settings))
        {
            leaseId = (await first.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 1500, service = "batch", ttl_s = 3600 })).Is(HttpStatusCode.OK)
                .Json.GetProperty("lease").GetProperty("lease_id").GetString()!;
        }

        // An hour passes while cf-orch is down.
        var expiredAt = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds();
        await ExecuteAsync("UPDATE client_leases SET ExpiresAtUnixMs = $past", ("$past", expiredAt));

        await using var second = ApiTestHost.Start(EngineApp.Profile(), Settings);

        Assert.Empty(second.Orchestrator.Leases);
        await second.Get<HistoryWriter>().FlushAsync(Ct);
        var events = (await second.GetAsync("/api/leases/history?page_size=50")).Json.GetProperty("events").EnumerateArray()
            .Where(e => e.GetProperty("lease_id").GetString() == leaseId).ToList();
        // Granted, then ended once — when its TTL ran out, not when cf-orch came back (and not closed again as 'lost').
        Assert.Equal(["expired", "granted"], events.Select(e => e.GetProperty("kind").GetString()).Order(StringComparer.Ordinal));
        var expired = events.Single(e => e.GetProperty("kind").GetString() == "expired");
        Assert.Equal("its TTL passed while cf-orch was not running", expired.GetProperty("reason").GetString());
        Assert.Equal(expiredAt / 1000.0, expired.GetProperty("at").GetDouble(), 3);
        Assert.Equal(0L, await ScalarAsync("SELECT COUNT(*) FROM client_leases"));
    }

    [Fact]
    public async Task A_lease_left_open_by_a_crash_is_closed_at_start_up_so_the_history_shows_nothing_that_was_not_there()
    {
        await using (ApiTestHost.Start(EngineApp.Profile(), Settings))
        {
        }

        // What a kill -9 leaves: a service's lease granted, and no line that ends it.
        var crashedAt = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeMilliseconds();
        await ExecuteAsync(
            "INSERT INTO lease_events (AtUnixMs, Kind, LeaseId, NodeId, GpuIndex, Service, Holder, Origin, BudgetMb, Reason) VALUES ($at, 'granted', 'lease-crashed', 'local', 0, 'vllm', 'vllm', 'managed', 4000, 'granted')",
            ("$at", crashedAt - 60_000));
        await ExecuteAsync(
            "INSERT INTO lease_events (AtUnixMs, Kind, LeaseId, NodeId, GpuIndex, Holder, Origin, BudgetMb, Reason) VALUES ($at, 'released', 'lease-other', 'local', 0, 'x', 'client', 1, 'released')",
            ("$at", crashedAt));

        await using var second = ApiTestHost.Start(EngineApp.Profile(), Settings);
        await second.Get<HistoryWriter>().FlushAsync(Ct);

        var closing = (await second.GetAsync("/api/leases/history?kind=lost")).Json.GetProperty("events").EnumerateArray().Single(e => e.GetProperty("lease_id").GetString() == "lease-crashed");
        Assert.Equal("cf-orch stopped while it was held; it ended then", closing.GetProperty("reason").GetString());
        Assert.Equal(crashedAt / 1000.0, closing.GetProperty("at").GetDouble(), 3);
        Assert.Equal(0L, await ScalarAsync("SELECT COUNT(*) FROM lease_events g WHERE g.Kind = 'granted' AND NOT EXISTS (SELECT 1 FROM lease_events c WHERE c.LeaseId = g.LeaseId AND c.Kind <> 'granted')"));
    }

    [Fact]
    public async Task Clients_leases_kept_on_disk_are_what_their_events_leave_however_a_batch_mixes_them()
    {
        await using (var host = ApiTestHost.Start(EngineApp.Profile(), Settings))
        {
            var writer = host.Get<HistoryWriter>();
            var at = DateTimeOffset.UtcNow;
            HistoryEvent Event(HistoryKind kind, string id) =>
                new() { At = at, Kind = kind, LeaseId = id, NodeId = "local", GpuIndex = 0, Holder = "client-" + id, Origin = "client", BudgetMb = 100, Priority = 2, Reason = kind.ToString() };

            // A granted in an earlier batch; released in the next one, beside B (granted and released there) and C
            // (granted there): only C is left, and all seven events are history.
            writer.Record(Event(HistoryKind.Granted, "lease-a"));
            await writer.FlushAsync(Ct);
            writer.Record(Event(HistoryKind.Granted, "lease-b"));
            writer.Record(Event(HistoryKind.Released, "lease-a"));
            writer.Record(Event(HistoryKind.Granted, "lease-c"));
            writer.Record(Event(HistoryKind.Released, "lease-b"));
            writer.Record(Event(HistoryKind.Expired, "lease-d"));
            writer.Record(Event(HistoryKind.Granted, "lease-d"));
            await writer.FlushAsync(Ct);
        }

        Assert.Equal(2L, await ScalarAsync("SELECT COUNT(*) FROM client_leases WHERE LeaseId IN ('lease-c', 'lease-d')"));
        Assert.Equal(2L, await ScalarAsync("SELECT COUNT(*) FROM client_leases"));
        Assert.Equal(7L, await ScalarAsync("SELECT COUNT(*) FROM lease_events WHERE LeaseId LIKE 'lease-_'"));
        Assert.Equal(1L, await ScalarAsync("SELECT COUNT(*) FROM lease_events WHERE LeaseId = 'lease-d' AND Kind = 'expired' AND Holder = 'client-lease-d' AND BudgetMb = 100 AND Reason = 'Expired' AND MeasuredMb IS NULL AND Service IS NULL"));
    }

    private async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>The database file, opened beside the app (no pooled connection of the app's is reused).</summary>
    private async Task<SqliteConnection> OpenAsync()
    {
        SqliteConnection.ClearAllPools();
        var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=false");
        await connection.OpenAsync(Ct);
        return connection;
    }
}
