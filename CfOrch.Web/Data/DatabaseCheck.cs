using System.Globalization;
using Microsoft.Data.Sqlite;

namespace CfOrch.Web.Data;

/// <summary>
/// Whether the SQLite file can be used: opened read-write and checked (<c>PRAGMA quick_check</c> at start-up,
/// <c>integrity_check</c> for <c>cf-orch check-db</c>). A damaged file is moved aside with its -wal and -shm, so that
/// cf-orch starts with a fresh database instead of failing to start.
/// </summary>
public static class DatabaseCheck
{
    /// <summary>SQLite's result codes for a file whose content is damaged: SQLITE_CORRUPT and SQLITE_NOTADB.</summary>
    private static readonly int[] DamagedCodes = [11, 26];

    /// <summary>How long the check waits for a database another process holds locked before it says so.</summary>
    private const int BusySeconds = 3;

    /// <summary>
    /// What is wrong with the content of the database at <paramref name="path"/>, or null when it is fine (or does not
    /// exist yet). A database that cannot be opened for another reason (locked by another process, no permission, an
    /// I/O error) is not damaged: <see cref="DataDirectoryException"/> says so, and nothing is moved.
    /// </summary>
    public static string? Problem(string path, bool full = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            return null;
        }

        if (new FileInfo(path).Length == 0)
        {
            return "the file is empty (0 bytes)";
        }

        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = BusySeconds }.ToString());
            connection.Open();
            using var check = connection.CreateCommand();
            check.CommandText = full ? "PRAGMA integrity_check;" : "PRAGMA quick_check;";
            var findings = new List<string>();
            using (var reader = check.ExecuteReader())
            {
                while (reader.Read() && findings.Count < 10)
                {
                    findings.Add(reader.GetString(0));
                }
            }

            return findings is ["ok"] ? null : string.Join("; ", findings);
        }
        catch (SqliteException ex) when (DamagedCodes.Contains(ex.SqliteErrorCode))
        {
            // Not a database, malformed pages, a header SQLite does not recognise.
            return ex.Message.Replace("SQLite Error ", "SQLite error ", StringComparison.Ordinal);
        }
        catch (SqliteException ex)
        {
            throw new DataDirectoryException($"cf-orch cannot open its database {path} ({ex.Message}); it is not damaged, so it is left as it is: check that no other cf-orch uses this data directory and that the file is readable and writable for user {Environment.UserName}", ex);
        }
    }

    /// <summary>Moves the database and its -wal and -shm to <c>{name}.corrupt-{UTC time}</c>; returns the new path of the database.</summary>
    public static string MoveAside(string path, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(path);
        SqliteConnection.ClearAllPools();
        var stem = path + ".corrupt-" + now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var aside = stem;
        for (var n = 2; File.Exists(aside); n++)
        {
            // An earlier damaged copy of the same second is kept too.
            aside = stem + "-" + n.ToString(CultureInfo.InvariantCulture);
        }
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            if (File.Exists(path + suffix))
            {
                File.Move(path + suffix, aside + suffix);
            }
        }

        return aside;
    }
}
