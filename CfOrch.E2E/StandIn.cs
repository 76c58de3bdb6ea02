using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace CfOrch.E2E;

/// <summary>The stand-in Ollama or service (CfOrch.StandIns) as a child process of the test, for the browser tests.</summary>
public sealed class StandIn : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines;

    private StandIn(Process process, int port, System.Collections.Concurrent.ConcurrentQueue<string> lines)
    {
        _process = process;
        Port = port;
        _lines = lines;
    }

    public int Port { get; }

    /// <summary>What it wrote to stdout so far (its STANDIN lines: requests, signals received).</summary>
    public string Output => string.Join('\n', _lines);

    public int Pid => _process.Id;

    public static string ExecutablePath
    {
        get
        {
            var configuration = typeof(StandIn).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
            return Path.Combine(AppProcess.RepositoryRoot, "CfOrch.StandIns", "bin", configuration, "net10.0", "CfOrch.StandIns");
        }
    }

    public static int FreePort() => Testing.FreePorts.Next();

    public static async Task<StandIn> StartAsync(int port, CancellationToken ct, params string[] args)
    {
        var start = new ProcessStartInfo(ExecutablePath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add("--port");
        start.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var process = Process.Start(start)!;
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lines.Enqueue(e.Data);
            }

            if (e.Data?.StartsWith("STANDIN LISTENING", StringComparison.Ordinal) == true)
            {
                listening.TrySetResult();
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        return new StandIn(process, port, lines);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
    }
}
