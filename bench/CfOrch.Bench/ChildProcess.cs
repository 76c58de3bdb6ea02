using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;

namespace CfOrch.Bench;

/// <summary>A child process (the app, the stand-in) started and awaited until it prints the line that says it listens.</summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process) => _process = process;

    public Uri Url { get; private set; } = null!;

    public int Pid => _process.Id;

    private long _outputBytes;
    private long _outputLines;

    /// <summary>Bytes the child has written to stdout and stderr so far (each line with its newline).</summary>
    public long OutputBytes => Interlocked.Read(ref _outputBytes);

    /// <summary>Lines the child has written to stdout and stderr so far.</summary>
    public long OutputLines => Interlocked.Read(ref _outputLines);

    public static async Task<ChildProcess> StartAsync(string fileName, IEnumerable<string> arguments, IDictionary<string, string> environment, Regex listening)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var child = new ChildProcess(new Process { StartInfo = start });
        child._process.OutputDataReceived += (_, e) => child.OnLine(e.Data, listening);
        child._process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, listening);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        try
        {
            child.Url = await child._listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return child;
        }
        catch
        {
            // Not listening in time: not left running behind the benchmark.
            await child.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the Release (or this build's) <c>CfOrch.Web.dll</c> of <paramref name="root"/> on a free loopback port.</summary>
    /// <summary>
    /// Starts the app: the build output, or the <c>CfOrch.Web.dll</c> that <see cref="AppVariable"/> names (in the
    /// environment given, else this process's) — a published folder, to measure what the Docker image runs.
    /// </summary>
    public static Task<ChildProcess> StartAppAsync(string root, IDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var app = environment.TryGetValue(AppVariable, out var named) ? named : Environment.GetEnvironmentVariable(AppVariable);
        var settings = new Dictionary<string, string>(environment);
        settings.Remove(AppVariable);
        return StartAsync(
            "dotnet",
            [string.IsNullOrEmpty(app) ? Path.Combine(root, "CfOrch.Web", "bin", Configuration, "net10.0", "CfOrch.Web.dll") : app, "--urls", "http://127.0.0.1:0"],
            settings,
            AppRegex());
    }

    /// <summary>Names the <c>CfOrch.Web.dll</c> to run instead of the build output.</summary>
    public const string AppVariable = "CFORCH_BENCH_APP";

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The build configuration of this benchmark, and so of the app and stand-ins it runs.</summary>
    public static string Configuration =>
        typeof(ChildProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    public static Regex StandInListening() => StandInRegex();

    private void OnLine(string? line, Regex listening)
    {
        if (line is not null)
        {
            Interlocked.Add(ref _outputBytes, System.Text.Encoding.UTF8.GetByteCount(line) + 1);
            Interlocked.Increment(ref _outputLines);
        }

        if (line is not null && listening.Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex AppRegex();

    [GeneratedRegex(@"STANDIN LISTENING (http://127\.0\.0\.1:\d+)")]
    private static partial Regex StandInRegex();
}
