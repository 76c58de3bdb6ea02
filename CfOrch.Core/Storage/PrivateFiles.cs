namespace CfOrch.Core.Storage;

/// <summary>
/// Files cf-orch writes — saved profiles and their backups, service logs, the database, its keys — hold secrets
/// (tokens in a profile's env, whatever a service prints): they are 0600 (only cf-orch's user reads them) in 0700
/// directories, whatever the umask of whoever started cf-orch.
/// </summary>
public static class PrivateFiles
{
    /// <summary>0600.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>0700.</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates <paramref name="path"/> (and missing parents) as 0700; an existing directory is tightened to 0700 when
    /// <paramref name="tightenExisting"/> (cf-orch's own directories, not a directory the user handed it).
    /// </summary>
    /// <returns>False when an existing directory could not be tightened (it belongs to another user): it is used as it is.</returns>
    public static bool CreateDirectory(string path, bool tightenExisting = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return true;
        }

        if (Directory.Exists(path))
        {
            return !tightenExisting || Tighten(path, DirectoryMode);
        }

        // Directory.CreateDirectory gives the mode only to the last directory: missing parents are made private too.
        if (Path.GetDirectoryName(Path.GetFullPath(path).TrimEnd('/')) is { Length: > 0 } parent && !Directory.Exists(parent))
        {
            CreateDirectory(parent, tightenExisting: false);
        }

        Directory.CreateDirectory(path, DirectoryMode);
        return true;
    }

    /// <summary>Writes <paramref name="bytes"/> to a new or truncated 0600 file.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        using var stream = OpenWrite(path);
        stream.Write(bytes);
    }

    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));

    /// <summary>Copies a file to a new 0600 file.</summary>
    public static void Copy(string source, string destination)
    {
        using var from = File.OpenRead(source);
        using var to = OpenWrite(destination);
        from.CopyTo(to);
    }

    /// <summary>Sets 0600 on an existing file (a database created before, a key file); a missing file is no error.</summary>
    /// <returns>False when the file could not be tightened (it belongs to another user).</returns>
    public static bool TightenFile(string path) => Tighten(path, FileMode);

    private static FileStream OpenWrite(string path)
    {
        var options = new FileStreamOptions { Mode = System.IO.FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        var stream = new FileStream(path, options);

        // The create mode applies to a new file only: an existing one keeps its mode unless tightened.
        if (!OperatingSystem.IsWindows() && File.GetUnixFileMode(stream.SafeFileHandle) != FileMode)
        {
            File.SetUnixFileMode(stream.SafeFileHandle, FileMode);
        }

        return stream;
    }

    private static bool Tighten(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows() || !Path.Exists(path))
        {
            return true;
        }

        try
        {
            if (File.GetUnixFileMode(path) != mode)
            {
                File.SetUnixFileMode(path, mode);
            }

            return true;
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            // Another user's directory (a mount handed to cf-orch): used as it is.
            return false;
        }
    }
}
