using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace CfOrch.E2E;

/// <summary>
/// The real cf-orch (the built CfOrch.Web.dll) as a child process on a free loopback port, configured the way a
/// self-hoster configures it: with CfOrch__* environment variables.
/// </summary>
public sealed partial class AppProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private AppProcess(Process process, string dataDir)
    {
        _process = process;
        DataDir = dataDir;
    }

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    public string DataDir { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CfOrch.Web.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("CfOrch.Web.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Two simulated GPUs, as the README's example configures them.</summary>
    public static Dictionary<string, string> SimulatedGpus() => new()
    {
        ["CfOrch__Gpus__Mode"] = "simulated",
        ["CfOrch__Gpus__Simulated__0__Name"] = "NVIDIA GeForce RTX 4090",
        ["CfOrch__Gpus__Simulated__0__TotalMb"] = "24576",
        ["CfOrch__Gpus__Simulated__0__UsedMb"] = "1310",
        ["CfOrch__Gpus__Simulated__0__TemperatureC"] = "46",
        ["CfOrch__Gpus__Simulated__0__UtilizationPercent"] = "12",
        ["CfOrch__Gpus__Simulated__1__Name"] = "NVIDIA GeForce RTX 3060",
        ["CfOrch__Gpus__Simulated__1__TotalMb"] = "12288",
        ["CfOrch__Gpus__Simulated__1__UsedMb"] = "412",
        ["CfOrch__Gpus__ReserveMb"] = "512",
    };

    /// <summary>Starts the app and waits until it listens; throws with its output when it does not.</summary>
    public static async Task<AppProcess> StartAsync(IReadOnlyDictionary<string, string> environment, CancellationToken ct, int port = 0)
    {
        var app = Launch(environment, port);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(StartTimeout);
            var exited = app._process.WaitForExitAsync(timeout.Token);
            var first = await Task.WhenAny(app._listening.Task, exited).WaitAsync(timeout.Token);
            if (first != app._listening.Task)
            {
                throw new InvalidOperationException($"cf-orch exited with code {app._process.ExitCode} before listening:\n{app.Output}");
            }

            app.BaseAddress = await app._listening.Task;
            return app;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await app.DisposeAsync();
            throw new TimeoutException($"cf-orch did not listen within {StartTimeout.TotalSeconds} s:\n{app.Output}");
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs the app until it exits by itself (for configurations it must refuse) and returns its exit code.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IReadOnlyDictionary<string, string> environment, CancellationToken ct)
    {
        await using var app = Launch(environment);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StartTimeout);
        await app._process.WaitForExitAsync(timeout.Token);
        app._process.WaitForExit();
        return (app._process.ExitCode, app.Output);
    }

    private static AppProcess Launch(IReadOnlyDictionary<string, string> environment, int port = 0)
    {
        var configuration = typeof(AppProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var dll = Path.Combine(RepositoryRoot, "CfOrch.Web", "bin", configuration, "net10.0", "CfOrch.Web.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("Build CfOrch.Web first", dll);
        }

        var dataDir = Path.Combine(Path.GetTempPath(), "cf-orch-e2e", Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));
        start.Environment["CfOrch__DataDir"] = dataDir;
        start.Environment["Logging__Console__FormatterName"] = "simple";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var app = new AppProcess(process, dataDir);
        process.OutputDataReceived += (_, e) => app.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => app.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return app;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        var match = ListeningRegex().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
        }
    }

    /// <summary>The app's own process (not the services it started).</summary>
    public int Pid => _process.Id;

    /// <summary>Ends the app as the system would: SIGTERM (a graceful stop), or SIGKILL (a crash: nothing runs after it). Its services are left alone.</summary>
    public async Task<int> SignalAndWaitAsync(bool kill, CancellationToken ct)
    {
        using var signal = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { kill ? "-KILL" : "-TERM", Pid.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        await signal.WaitForExitAsync(ct);
        await _process.WaitForExitAsync(ct).WaitAsync(StartTimeout, ct);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningRegex();
}
