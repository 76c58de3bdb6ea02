using CfOrch.Core.Storage;
using CfOrch.Core.Configuration;
using CfOrch.Core.History;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;

namespace CfOrch.Web.Data;

public static partial class DataServiceCollectionExtensions
{
    public const string DatabaseFileName = "cf-orch.db";

    public static IServiceCollection AddCfOrchData(this IServiceCollection services)
    {
        services.AddDbContextFactory<CfOrchDb>((sp, o) => o
            .UseSqlite(ConnectionString(sp.GetRequiredService<IOptions<CfOrchOptions>>().Value))
            .AddInterceptors(SqlitePragmas.Instance));

        // One writer for lease history and managed-instance records, off the hot path; it replaces Core's in-memory defaults.
        services.AddSingleton<HistoryChanges>();
        services.AddSingleton<StorageNotices>();
        services.AddSingleton<StorageHealth>();
        services.AddSingleton<IHistoryReader, HistoryQueries>();
        services.AddSingleton<HistoryWriter>();
        services.Replace(ServiceDescriptor.Singleton<IHistorySink>(sp => sp.GetRequiredService<HistoryWriter>()));
        services.Replace(ServiceDescriptor.Singleton<IInstanceStore>(sp => sp.GetRequiredService<HistoryWriter>()));
        services.Replace(ServiceDescriptor.Singleton<ILeaseStore>(sp => sp.GetRequiredService<HistoryWriter>()));
        services.AddHostedService(sp => sp.GetRequiredService<HistoryWriter>());
        return services;
    }

    public static string DatabasePath(CfOrchOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Path.Combine(options.ResolvedDataDir(), DatabaseFileName);
    }

    /// <summary>Creates the data directory and brings the database schema up to date (creating the file on first start).</summary>
    public static async Task MigrateDatabaseAsync(this IServiceProvider services, CancellationToken ct)
    {
        var options = services.GetRequiredService<IOptions<CfOrchOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger<CfOrchDb>();
        var dataDir = options.ResolvedDataDir();
        EnsureWritable(dataDir);
        if (!PrivateFiles.CreateDirectory(dataDir))
        {
            LogNotPrivate(logger, dataDir);
        }

        // A damaged database never stops cf-orch: it is set aside, cf-orch starts with a fresh one and says so.
        var path = DatabasePath(options);
        if (DatabaseCheck.Problem(path) is { } problem)
        {
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            var aside = DatabaseCheck.MoveAside(path, now);
            LogSetAside(logger, path, problem, aside);
            services.GetRequiredService<StorageNotices>().Add(new StorageNotice("database-" + now.ToUnixTimeMilliseconds(), now,
                $"The database {path} was damaged ({problem}). It was moved to {aside}, and cf-orch started with a fresh one: the lease history before now is in that file, and services cf-orch had started were not re-attached."));
        }

        // SQLite gives its -wal and -shm files the database file's mode: a new database starts as an empty 0600 file.
        if (!File.Exists(path))
        {
            // Made a database (in WAL mode, as every connection wants it) before EF Core looks: its existence check
            // opens the file read-only.
            PrivateFiles.WriteAllBytes(path, []);
            await using var create = new SqliteConnection(ConnectionString(options));
            await create.OpenAsync(ct);
            await using var wal = create.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode = WAL;";
            await wal.ExecuteNonQueryAsync(ct);
        }

        foreach (var file in new[] { path, path + "-wal", path + "-shm" }.Where(f => !PrivateFiles.TightenFile(f)))
        {
            LogNotPrivate(logger, file);
        }

        var factory = services.GetRequiredService<IDbContextFactory<CfOrchDb>>();
        await using var db = await factory.CreateDbContextAsync(ct);
        var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
        await db.Database.MigrateAsync(ct);
        LogMigrated(logger, path, pending.Count);
    }

    /// <summary>Creates the data directory if needed and proves it writable; throws <see cref="DataDirectoryException"/> with the fix.</summary>
    private static void EnsureWritable(string dataDir)
    {
        var probe = Path.Combine(dataDir, $".write-test-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(dataDir);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DataDirectoryException(
                $"cf-orch cannot write its data directory {dataDir} ({ex.Message}): make it a writable directory for user {Environment.UserName}, or set CfOrch:DataDir to one", ex);
        }
    }

    private static string ConnectionString(CfOrchOptions options) =>
        new SqliteConnectionStringBuilder { DataSource = DatabasePath(options) }.ToString();

    [LoggerMessage(Level = LogLevel.Error, Message = "The database {Path} is damaged ({Problem}); it was moved to {Aside} and cf-orch starts with a fresh one")]
    private static partial void LogSetAside(ILogger logger, string path, string problem, string aside);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Path} belongs to another user and could not be made private (0700/0600): other users of this machine may read it")]
    private static partial void LogNotPrivate(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Database {Path} is up to date ({Applied} migrations applied now)")]
    private static partial void LogMigrated(ILogger logger, string path, int applied);
}
