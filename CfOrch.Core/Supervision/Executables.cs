using System.Runtime.InteropServices;

namespace CfOrch.Core.Supervision;

/// <summary>Finds programs and checks that this user may run them.</summary>
internal static partial class Executables
{
    private const int XOk = 1;

    /// <summary>
    /// The absolute path <paramref name="execPath"/> names: as written when absolute; relative to
    /// <paramref name="workingDirectory"/> (else the current directory) when it holds a '/'; looked up on PATH when it
    /// is a bare name (as execvp does), or null when PATH has no such program.
    /// </summary>
    public static string? Resolve(string execPath, string? workingDirectory)
    {
        if (Path.IsPathRooted(execPath))
        {
            return execPath;
        }

        if (execPath.Contains('/', StringComparison.Ordinal))
        {
            return Path.GetFullPath(execPath, string.IsNullOrEmpty(workingDirectory) ? Environment.CurrentDirectory : Path.GetFullPath(workingDirectory));
        }

        return FindOnPath(execPath);
    }

    /// <summary>The first executable file called <paramref name="name"/> in a directory of PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (Path.IsPathRooted(candidate) && File.Exists(candidate) && IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// access(path, X_OK): what the kernel will decide at exec, for this user, its groups and root (who may run any file
    /// with at least one x bit) alike.
    /// </summary>
    public static bool IsExecutable(string path) => Access(path, XOk) == 0;

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);
}
