using System.Net;
using CfOrch.Core.Storage;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using CfOrch.Web.Data;
using CfOrch.Web.Hosting;
using Microsoft.Data.Sqlite;

namespace CfOrch.Tests.Data;

/// <summary>A damaged database never stops cf-orch: it is set aside, a fresh one is made, and the user is told.</summary>
public sealed class DatabaseFaultTests : IDisposable
{
    private readonly TempDir _data = new();

    private string DatabasePath => Path.Combine(_data.Path, DataServiceCollectionExtensions.DatabaseFileName);

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_database_with_a_corrupt_header_is_set_aside_and_cf_orch_starts_with_a_fresh_one()
    {
        await MakeDatabaseAsync(rows: 0);
        await using (var file = File.OpenWrite(DatabasePath))
        {
            await file.WriteAsync("garbage garbage!"u8.ToArray(), TestContext.Current.CancellationToken);
        }

        await AssertSetAsideAndFreshAsync("file is not a database");
    }

    [Fact]
    public async Task A_database_with_corrupt_pages_is_set_aside_and_cf_orch_starts_with_a_fresh_one()
    {
        await MakeDatabaseAsync(rows: 3000);
        await using (var file = File.OpenWrite(DatabasePath))
        {
            file.Seek(4096 * 5, SeekOrigin.Begin);
            var noise = new byte[4096 * 3];
            new Random(7).NextBytes(noise);
            await file.WriteAsync(noise, TestContext.Current.CancellationToken);
        }

        Assert.Equal(1, Commands.Run(["check-db", DatabasePath]));
        await AssertSetAsideAndFreshAsync("malformed");
    }

    [Fact]
    public async Task A_zero_length_database_is_set_aside_and_cf_orch_starts_with_a_fresh_one()
    {
        await File.WriteAllBytesAsync(DatabasePath, [], TestContext.Current.CancellationToken);

        await AssertSetAsideAndFreshAsync("the file is empty (0 bytes)");
    }

    [Fact]
    public async Task A_database_another_process_holds_locked_is_not_damaged_and_is_left_where_it_is()
    {
        await MakeDatabaseAsync(rows: 10);
        await using var holder = new SqliteConnection($"Data Source={DatabasePath};Pooling=false");
        await holder.OpenAsync(TestContext.Current.CancellationToken);
        await using (var take = holder.CreateCommand())
        {
            // What a second cf-orch on the same data directory would do: hold the file.
            take.CommandText = "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;";
            await take.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var refused = Assert.Throws<DataDirectoryException>(() => DatabaseCheck.Problem(DatabasePath));

        Assert.Contains("it is not damaged, so it is left as it is", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, Commands.Run(["check-db", DatabasePath]));
        Assert.True(File.Exists(DatabasePath));
        Assert.Empty(Directory.GetFiles(_data.Path, "*.corrupt-*"));
    }

    [Fact]
    public async Task A_sound_database_is_kept_and_check_db_says_ok()
    {
        await MakeDatabaseAsync(rows: 10);

        Assert.Equal(0, Commands.Run(["check-db", DatabasePath]));
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:DataDir"] = _data.Path });
        Assert.Empty(host.Get<StorageNotices>().All);
        Assert.Empty(Directory.GetFiles(_data.Path, "*.corrupt-*"));
        Assert.Equal(10, (await host.GetAsync("/api/leases/history?page_size=500")).Is(HttpStatusCode.OK).Json.GetProperty("total").GetInt32());
    }

    private async Task AssertSetAsideAndFreshAsync(string cause)
    {
        var damaged = await File.ReadAllBytesAsync(DatabasePath, TestContext.Current.CancellationToken);

        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:DataDir"] = _data.Path });

        (await host.GetAsync("/api/health")).Is(HttpStatusCode.OK);
        var notice = Assert.Single(host.Get<StorageNotices>().All);
        Assert.Contains(cause, notice.Text, StringComparison.Ordinal);
        var aside = Assert.Single(Directory.GetFiles(_data.Path, "cf-orch.db.corrupt-*"), f => !f.EndsWith("-wal", StringComparison.Ordinal) && !f.EndsWith("-shm", StringComparison.Ordinal));
        Assert.Contains(aside, notice.Text, StringComparison.Ordinal);
        Assert.Equal(damaged, await File.ReadAllBytesAsync(aside, TestContext.Current.CancellationToken));

        // The fresh database works: a lease is recorded and read back.
        (await host.PostAsync("/api/leases", new { node_id = "local", gpu_id = 0, mb = 100, service = "after" })).Is(HttpStatusCode.OK);
        await host.App.PollAsync(async () => (await host.GetAsync("/api/leases/history")).Json.GetProperty("total").GetInt32() == 1 ? "written" : null, "the grant to reach the fresh database");
    }

    /// <summary>A real cf-orch database (the app's migrations) with <paramref name="rows"/> lease events in it.</summary>
    private async Task MakeDatabaseAsync(int rows)
    {
        await using (ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:DataDir"] = _data.Path }))
        {
        }

        SqliteConnection.ClearAllPools();
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=false");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        for (var i = 0; i < rows; i++)
        {
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO lease_events (AtUnixMs, Kind, NodeId, GpuIndex, Holder, Origin, BudgetMb, Reason) VALUES ($at, 'granted', 'local', 0, $holder, 'client', 100, $reason)";
            insert.Parameters.AddWithValue("$at", 1_700_000_000_000L + i);
            insert.Parameters.AddWithValue("$holder", $"holder-{i}");
            insert.Parameters.AddWithValue("$reason", new string('r', 200));
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        await transaction.CommitAsync(TestContext.Current.CancellationToken);
        await using var checkpoint = connection.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        await checkpoint.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }
}
