namespace CfOrch.Core.Processes;

/// <summary>Small reads of /proc. Best effort: a process that is gone, or in another PID namespace, has no name.</summary>
public static class ProcFs
{
    public static string? ProcessName(int pid)
    {
        try
        {
            var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            return comm.Length == 0 ? null : comm;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
