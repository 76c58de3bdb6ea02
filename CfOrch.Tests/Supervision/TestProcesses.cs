using System.Diagnostics;
using System.Globalization;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Logging.Abstractions;

namespace CfOrch.Tests.Supervision;

/// <summary>Starts real processes for one test, and kills whatever is left of them (their groups too) afterwards.</summary>
internal sealed class TestProcesses : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly List<IManagedProcess> _started = [];

    public TestProcesses(TimeProvider? time = null) =>
        Launcher = new ProcessLauncher(time ?? TimeProvider.System, NullLogger<ProcessLauncher>.Instance);

    public ProcessLauncher Launcher { get; }

    public static ProcessLaunchSpec ShSpec(string script, string? cwd = null, IReadOnlyDictionary<string, string>? environment = null) =>
        new("/bin/sh", ["-c", script], cwd, environment ?? new Dictionary<string, string>(), "test-sh");

    public IManagedProcess Sh(string script, string? cwd = null, IReadOnlyDictionary<string, string>? environment = null) =>
        Start(ShSpec(script, cwd, environment));

    public IManagedProcess Start(ProcessLaunchSpec spec) => Track(Launcher.Start(spec));

    public IManagedProcess Track(IManagedProcess process)
    {
        _started.Add(process);
        return process;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _started)
        {
            await process.StopAsync(TimeSpan.Zero, TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
            await process.DisposeAsync();
        }
    }

    /// <summary>Waits for a real event that nothing announces, for at most <see cref="Deadline"/>.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what) => Eventually.TrueAsync(condition, what, Deadline);

    /// <summary>Waits until the process has printed a line that is exactly <paramref name="text"/>.</summary>
    public static Task WaitForLineAsync(IManagedProcess process, string text) =>
        WaitUntilAsync(() => process.Output.Tail(process.Output.Capacity).Any(l => l.Text == text), $"the line '{text}'");

    /// <summary>Fields 3 (state) and 5 (pgrp) of /proc/{pid}/stat; null when there is no such process.</summary>
    public static (char State, int ProcessGroup, int Session)? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }

        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (fields[0][0], int.Parse(fields[2], CultureInfo.InvariantCulture), int.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    /// <summary>Exists and is not a zombie (an orphan's zombie may linger when nothing reaps it, but it runs nothing).</summary>
    public static string? Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static bool IsRunning(int pid) => Stat(pid) is { State: not ('Z' or 'X') };

    /// <summary>The running processes of process group <paramref name="pgid"/>.</summary>
    public static IReadOnlyList<int> GroupMembers(int pgid) =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Stat(pid) is { State: not ('Z' or 'X') } stat && stat.ProcessGroup == pgid)
            .ToList();

    /// <summary>The first line of the process's stdout as a PID (the script prints $!).</summary>
    public static int FirstLineAsPid(IManagedProcess process) =>
        int.Parse(process.Output.Tail(process.Output.Capacity).First(l => l.Stream == LogStream.Stdout).Text, CultureInfo.InvariantCulture);
}
