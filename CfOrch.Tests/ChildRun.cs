using System.Diagnostics;

namespace CfOrch.Tests;

/// <summary>A program run to its end, as a user runs it from a shell: its exit code and what it printed.</summary>
public static class ChildRun
{
    /// <summary>
    /// Runs <paramref name="start"/> (its output redirected here) until it exits, <paramref name="timeout"/> at most —
    /// then it is killed, its whole tree, and the test fails — and returns its exit code, stdout and stderr.
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> ToExitAsync(ProcessStartInfo start, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(start);
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).WaitAsync(timeout, ct);
            return (process.ExitCode, await stdout.WaitAsync(timeout, ct), await stderr.WaitAsync(timeout, ct));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
