using System.Diagnostics;
using System.Net;
using CfOrch.Core.Storage;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using CfOrch.Web.Data;
using Microsoft.Data.Sqlite;

namespace CfOrch.Tests.Data;

/// <summary>
/// A full disk, for real: the data directory on a small tmpfs filled to the last byte. Leases keep working, storage
/// says loudly that it fails, and once space is back the history that was acknowledged is written — nothing lost.
/// Needs root with CAP_SYS_ADMIN (CI has it) to mount the tmpfs; skipped with the reason elsewhere.
/// </summary>
public sealed class DiskFullTests : IDisposable
{
    private readonly string _mount = Path.Combine(Path.GetTempPath(), $"cf-orch-diskfull-{Guid.NewGuid():N}");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Run("umount", "-l", _mount);
        if (Directory.Exists(_mount))
        {
            Directory.Delete(_mount, recursive: true);
        }
    }

    [Fact]
    public async Task On_a_full_disk_leases_keep_working_storage_fails_loudly_and_history_is_written_once_space_is_back()
    {
        MountSmallDisk();

        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:DataDir"] = _mount });
        var lease = new { node_id = "local", gpu_id = 0, mb = 100, service = "x" };
        (await host.PostAsync("/api/leases", lease)).Is(HttpStatusCode.OK);
        await host.Get<HistoryWriter>().FlushAsync(Ct);

        // Fill the file system to the last byte.
        var filler = Path.Combine(_mount, "filler");
        Fill(filler);

        // Scheduling goes on: every grant and release is answered.
        for (var i = 0; i < 50; i++)
        {
            var granted = (await host.PostAsync("/api/leases", lease)).Is(HttpStatusCode.OK).Json;
            (await host.DeleteAsync($"/api/leases/{granted.GetProperty("lease").GetProperty("lease_id").GetString()}")).Is(HttpStatusCode.OK);
        }

        var unhealthy = await host.App.PollAsync(async () => await host.GetAsync("/healthz") is { Status: HttpStatusCode.ServiceUnavailable } answer ? answer : null, "/healthz to say storage fails");
        Assert.StartsWith("Unhealthy: the database cannot be written since", unhealthy.Body, StringComparison.Ordinal);
        var health = (await host.GetAsync("/api/health")).Is(HttpStatusCode.OK).Json.GetProperty("storage");
        Assert.False(health.GetProperty("ok").GetBoolean());
        Assert.Contains("history is not being recorded", health.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Matches(@"cf_orch_history_write_failures_total [1-9]", (await host.GetAsync("/metrics")).Body);
        using (var answer = await host.Client.GetAsync(new Uri("/api/services", UriKind.Relative), Ct))
        {
            // Every API answer says it while it lasts.
            Assert.Contains("history is not being recorded", answer.Headers.Warning.ToString(), StringComparison.Ordinal);
        }

        using (var bad = new StringContent("{\"mb\": ", System.Text.Encoding.UTF8, "application/json"))
        using (var answer = await host.Client.PostAsync(new Uri("/api/leases", UriKind.Relative), bad, Ct))
        {
            // An error answer too.
            Assert.Equal(HttpStatusCode.UnprocessableEntity, answer.StatusCode);
            Assert.Contains("history is not being recorded", answer.Headers.Warning.ToString(), StringComparison.Ordinal);
        }

        // Space is back: the writer's retry writes what waited, and storage is healthy again.
        File.Delete(filler);
        await host.App.PollAsync(async () => (await host.GetAsync("/healthz")).Status == HttpStatusCode.OK ? "healthy" : null, "storage to recover");
        var total = await host.App.PollAsync(
            async () => (await host.GetAsync("/api/leases/history?page_size=1")).Json.GetProperty("total").GetInt32() is var n and >= 101 ? (object)n : null,
            "every acknowledged grant and release to be written");
        Assert.Equal(101, total);
        using (var answer = await host.Client.GetAsync(new Uri("/api/services", UriKind.Relative), Ct))
        {
            Assert.Empty(answer.Headers.Warning);
        }

        Assert.Equal(0, host.Get<StorageHealth>().Dropped);
    }

    [Fact]
    public async Task A_start_whose_record_cannot_be_written_is_refused_and_its_process_stopped()
    {
        MountSmallDisk();

        // The service's own output goes to another file system: on the full one it would die writing its first line,
        // and this test is about the record, not the service.
        using var logs = new TempDir();
        Directory.CreateSymbolicLink(Path.Combine(_mount, "logs"), logs.Path);
        var port = EngineApp.FreePort();
        await using var host = ApiTestHost.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")), new() { ["CfOrch:DataDir"] = _mount });
        Fill(Path.Combine(_mount, "filler"));

        // Held open to the end: closing the last connection would checkpoint the WAL and free its space.
        await using var database = await UseUpWalSlackAsync(Path.Combine(_mount, DataServiceCollectionExtensions.DatabaseFileName));

        var refused = (await host.PostAsync("/api/services/worker/start", new { })).Is(HttpStatusCode.ServiceUnavailable);

        Assert.Contains("its start could not be recorded in cf-orch's database", refused.Detail, StringComparison.Ordinal);
        var worker = Assert.Single(host.Orchestrator.Instances);
        Assert.Equal(Core.Instances.InstanceState.Failed, worker.State);
        Assert.False(Core.Processes.ProcFs.IsRunning(worker.Pid!.Value));
        Assert.Empty(Core.Processes.ProcFs.ListeningPids(port));
        Assert.Empty(host.Orchestrator.Leases);
    }

    /// <summary>Fills the file system that holds <paramref name="path"/> to the last byte.</summary>
    private static void Fill(string path)
    {
        using var fill = new FileStream(path, FileMode.Create, FileAccess.Write);
        var chunk = new byte[64 * 1024];
        try
        {
            while (true)
            {
                fill.Write(chunk);
                fill.Flush();
            }
        }
        catch (IOException)
        {
            // No space left: what is written stays.
        }
    }

    /// <summary>
    /// A write of the app's that was cut short while the disk filled leaves WAL space past its last frame, which the next
    /// small transaction reuses without a new byte of disk. Tiny commits (one page each) use that space up until SQLite
    /// says the disk is full, so that any write of the app's needs space the disk no longer has.
    /// </summary>
    private static async Task<SqliteConnection> UseUpWalSlackAsync(string databasePath)
    {
        var connection = new SqliteConnection($"Data Source={databasePath};Pooling=false");
        await connection.OpenAsync(Ct);
        await using (var wait = connection.CreateCommand())
        {
            wait.CommandText = "PRAGMA busy_timeout = 10000;";
            await wait.ExecuteNonQueryAsync(Ct);
        }

        for (var version = 1; ; version++)
        {
            await using var commit = connection.CreateCommand();
            commit.CommandText = $"PRAGMA user_version = {version};";
            try
            {
                await commit.ExecuteNonQueryAsync(Ct);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == 13)
            {
                // SQLITE_FULL: no room left, not even reused.
                return connection;
            }

            Assert.True(version < 10_000, "the WAL kept taking commits on a full disk");
        }
    }

    /// <summary>Mounts a 16 MB tmpfs at the data directory to be, or skips the test (saying why) where that is refused.</summary>
    private void MountSmallDisk()
    {
        Directory.CreateDirectory(_mount);
        if (!Run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", _mount))
        {
            Assert.Skip("mounting a tmpfs needs root with CAP_SYS_ADMIN (CI has it); this machine refused");
        }
    }

    private static bool Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(start)!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
