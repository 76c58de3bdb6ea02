using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;

namespace CfOrch.Tests.StandIns;

/// <summary>
/// The stand-in (CfOrch.StandIns: a real HTTP server that answers like Ollama or like any other service) as a child
/// process of the test: started, awaited until it prints its LISTENING line, killed with its children on dispose.
/// </summary>
public sealed class StandInProcess : IAsyncDisposable
{
    /// <summary>Set to the stand-in's executable to use that one instead of the build next to the tests.</summary>
    public const string PathVariable = "CFORCH_STANDIN_PATH";

    private const string ListeningPrefix = "STANDIN LISTENING ";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(10);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _outputLock = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _disposed;

    private StandInProcess(Process process) => _process = process;

    /// <summary>
    /// The stand-in's apphost built in the test assembly's configuration:
    /// <c>{repo}/CfOrch.StandIns/bin/{Debug|Release}/net10.0/CfOrch.StandIns</c>, the repository found by walking up from
    /// the test assembly to <c>CfOrch.Web.sln</c>; or the path in <see cref="PathVariable"/> when set.
    /// </summary>
    public static string ExecutablePath
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable(PathVariable);
            if (!string.IsNullOrEmpty(overridden))
                return overridden;
            var configuration = typeof(StandInProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
            return Path.Combine(FindRepositoryRoot(), "CfOrch.StandIns", "bin", configuration, "net10.0", "CfOrch.StandIns");
        }
    }

    public int Pid => _process.Id;

    public Uri BaseAddress { get; private set; } = null!;

    public int Port => BaseAddress.Port;

    /// <summary>Everything it printed so far, stdout and stderr, line by line.</summary>
    public string Output
    {
        get
        {
            lock (_outputLock)
                return _output.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Starts <c>CfOrch.StandIns ollama --port {port} --vram-mb {vramMb} {extraArgs}</c> and waits until it listens.</summary>
    public static Task<StandInProcess> StartOllamaAsync(int port = 0, int vramMb = 3000, CancellationToken ct = default, params string[] extraArgs) =>
        StartAsync(["ollama", "--port", Invariant(port), "--vram-mb", Invariant(vramMb), .. extraArgs], ct);

    /// <summary>Starts <c>CfOrch.StandIns service --port {port} --health-path {healthPath} {extraArgs}</c> and waits until it listens.</summary>
    public static Task<StandInProcess> StartServiceAsync(int port = 0, string healthPath = "/health", CancellationToken ct = default, params string[] extraArgs) =>
        StartAsync(["service", "--port", Invariant(port), "--health-path", healthPath, .. extraArgs], ct);

    /// <summary>
    /// Starts the stand-in with these arguments and waits (30 s at most) until it listens; with
    /// <paramref name="environment"/> on top of the test's, and with <paramref name="ownSession"/> through <c>setsid</c>
    /// (its own session and process group, as cf-orch spawns a service).
    /// </summary>
    public static async Task<StandInProcess> StartAsync(IReadOnlyList<string> args, CancellationToken ct, IReadOnlyDictionary<string, string?>? environment = null, bool ownSession = false)
    {
        var path = ExecutablePath;
        if (!File.Exists(path))
            throw new FileNotFoundException($"The stand-in is not built: {path} does not exist (dotnet build CfOrch.StandIns, or set {PathVariable}).", path);
        var start = new ProcessStartInfo(ownSession ? "setsid" : path, ownSession ? [path, .. args] : args)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            start.Environment[name] = value;
        var standIn = new StandInProcess(new Process { StartInfo = start });
        standIn._process.OutputDataReceived += (_, e) => standIn.OnLine(e.Data);
        standIn._process.ErrorDataReceived += (_, e) => standIn.OnLine(e.Data);
        standIn._process.Start();
        standIn._process.BeginOutputReadLine();
        standIn._process.BeginErrorReadLine();
        try
        {
            await standIn.WaitUntilListeningAsync(ct);
            return standIn;
        }
        catch
        {
            await standIn.DisposeAsync();
            throw;
        }
    }

    /// <summary>POST /control/ps: from now on /api/ps reports <paramref name="loaded"/> sharing <paramref name="vramMb"/>.</summary>
    public async Task SetPsAsync(int vramMb, CancellationToken ct, params string[] loaded)
    {
        using var response = await Http.PostAsJsonAsync(new Uri(BaseAddress, "/control/ps"), new { vram_mb = vramMb, loaded }, ct)
            .WaitAsync(ExitTimeout, ct);
        if (response.StatusCode != HttpStatusCode.NoContent)
            throw new InvalidOperationException($"POST /control/ps answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
    }

    /// <summary>Sends SIGTERM (through <c>kill -TERM</c>), without waiting for the stand-in to react.</summary>
    public async Task SendSigtermAsync(CancellationToken ct)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", Invariant(Pid)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("kill did not start");
        await kill.WaitForExitAsync(ct).WaitAsync(ExitTimeout, ct);
        if (kill.ExitCode != 0)
            throw new InvalidOperationException($"kill -TERM {Pid} exited with {kill.ExitCode}");
    }

    /// <summary>Waits until the stand-in exits on its own and returns its exit code; throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct).WaitAsync(timeout, ct);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL to the stand-in and its descendants, then waits for it to exit.</summary>
    public async Task KillAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        await _process.WaitForExitAsync().WaitAsync(ExitTimeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        try
        {
            if (!_process.HasExited)
                await KillAsync();
        }
        finally
        {
            _process.Dispose();
        }
    }

    public override string ToString() => $"stand-in {Pid} at {BaseAddress}";

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        lock (_outputLock)
            _output.Append(line).Append('\n');
        if (line.StartsWith(ListeningPrefix, StringComparison.Ordinal))
            _listening.TrySetResult(new Uri(line[ListeningPrefix.Length..].Trim()));
    }

    private async Task WaitUntilListeningAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StartTimeout);
        // Completes once the process has exited and its output has been read to the end.
        var exited = _process.WaitForExitAsync(timeout.Token);
        try
        {
            await Task.WhenAny(_listening.Task, exited);
            if (_listening.Task.IsCompleted)
            {
                BaseAddress = await _listening.Task;
                return;
            }
            await exited;
            throw new InvalidOperationException(
                $"The stand-in exited with code {_process.ExitCode} before it listened ({string.Join(' ', _process.StartInfo.ArgumentList)}). Its output:\n{Output}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The stand-in did not listen within {StartTimeout.TotalSeconds} s. Its output:\n{Output}");
        }
        finally
        {
            await timeout.CancelAsync();
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CfOrch.Web.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException(
            $"No CfOrch.Web.sln above {AppContext.BaseDirectory}: cannot find the stand-in; set {PathVariable} to its executable.");
    }

    private static string Invariant(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
