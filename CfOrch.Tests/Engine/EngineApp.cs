using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CfOrch.Core.Instances;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Supervision;
using CfOrch.Tests.StandIns;
using CfOrch.Tests.Web;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Engine;

/// <summary>
/// The whole app in process (real Quartz jobs, real SQLite, real child processes) with a profile written for the test,
/// on one simulated 8 GB GPU. Disposing stops every service the app started, so no process outlives the test.
/// </summary>
public sealed class EngineApp : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private EngineApp(CfOrchAppFactory factory, string profilePath, string? dataDir)
    {
        Factory = factory;
        ProfilePath = profilePath;
        DataDir = dataDir ?? factory.DataDir.Path;
    }

    public CfOrchAppFactory Factory { get; }

    public string ProfilePath { get; }

    public Orchestrator Orchestrator => Factory.Services.GetRequiredService<Orchestrator>();

    public string DataDir { get; }

    /// <summary>Starts the app (its start-up adoption included) with this profile; extra settings override the defaults.</summary>
    public static EngineApp Start(string profileYaml, Dictionary<string, string?>? settings = null, string? dataDir = null, Action<IServiceCollection>? services = null)
    {
        var profileDir = Path.Combine(Path.GetTempPath(), "cf-orch-tests", "profiles-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profileDir);
        var profilePath = Path.Combine(profileDir, "test.yaml");
        File.WriteAllText(profilePath, profileYaml);
        var values = new Dictionary<string, string?>
        {
            ["CfOrch:Profile"] = profilePath,
            ["CfOrch:Gpus:Simulated:0:Name"] = "Simulated RTX 3070",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "8192",
            ["CfOrch:Gpus:Simulated:1:Name"] = null,
            ["CfOrch:Gpus:Simulated:1:TotalMb"] = null,

            // A stand-in's first answer can take seconds on a loaded machine (its JIT): the start-up adoption check
            // waits for it rather than giving up after the default 1 s. A refused connection still fails at once.
            ["CfOrch:Adoption:TimeoutSeconds"] = "10",
        };
        if (dataDir is not null)
        {
            values["CfOrch:DataDir"] = dataDir;
        }

        foreach (var (key, value) in settings ?? [])
        {
            values[key] = value;
        }

        var app = new EngineApp(new CfOrchAppFactory(values, services), profilePath, dataDir);
        _ = app.Factory.Services; // starts the host: migrations, re-attachment and start-up adoption run now
        return app;
    }

    /// <summary>A port nothing listens on right now.</summary>
    public static int FreePort() => Testing.FreePorts.Next();

    /// <summary>A profile service block that runs the stand-in (args_template without a shell).</summary>
    public static string StandInService(string name, int maxMb, int priority, int port, string args, string healthPath, bool adopt = false, bool alwaysOn = false, string restart = "never", int maxRestarts = 3) => string.Create(CultureInfo.InvariantCulture, $"""
          {name}:
            max_mb: {maxMb}
            priority: {priority}
            always_on: {(alwaysOn ? "true" : "false")}
            managed:
              type: process
              adopt: {(adopt ? "true" : "false")}
              exec_path: {StandInProcess.ExecutablePath}
              args_template: {args}
              port: {port}
              host_port: {port}
              health_path: {healthPath}
              restart: {restart}
              max_restarts: {maxRestarts}

        """);

    /// <summary>
    /// Makes a running stand-in exit with <paramref name="exitCode"/> now (<c>POST /control/exit</c>): a crash on the
    /// test's cue, never a timer racing the service's start-up. Returns once the process is gone.
    /// </summary>
    public async Task<InstanceSnapshot> CrashAsync(InstanceSnapshot running, int exitCode)
    {
        Assert.Equal(InstanceState.Running, running.State);
        var pid = running.Pid!.Value;
        using (var response = await ControlHttp.PostAsync(new Uri(new Uri(running.Url), $"/control/exit?code={exitCode}"), null, TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        return await WaitForAsync(running.Service, i => i.Pid == pid && i.State == InstanceState.Failed);
    }

    private static readonly HttpClient ControlHttp = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static string Profile(params string[] services) => "schema_version: 1\nname: engine-test\nvram_total_mb: 8192\neviction_timeout_s: 3\nservices:\n" + string.Concat(services);

    /// <summary>Waits until <paramref name="service"/> is adopted and running (at start-up or by the periodic check).</summary>
    public Task<InstanceSnapshot> WaitForAdoptedAsync(string service) =>
        WaitForAsync(service, i => i is { Origin: InstanceOrigin.Adopted, State: InstanceState.Running });

    public Task<InstanceSnapshot> WaitForAsync(string service, Func<InstanceSnapshot, bool> condition) =>
        PollAsync(() => Orchestrator.Instances.FirstOrDefault(i => i.Service == service && condition(i)), $"{service} to reach the expected state");

    /// <summary>Polls (every 50 ms, up to <see cref="Deadline"/>) for something the app does in the background.</summary>
    public Task<T> PollAsync<T>(Func<T?> probe, string what)
        where T : class => PollAsync(() => Task.FromResult(probe()), what);

    /// <summary>Polls (every 50 ms, up to <see cref="Deadline"/>) with an asynchronous probe (an HTTP request).</summary>
    public async Task<T> PollAsync<T>(Func<Task<T?>> probe, string what)
        where T : class
    {
        var until = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (await probe() is { } found)
            {
                return found;
            }

            if (DateTime.UtcNow > until)
            {
                var state = string.Join("; ", Orchestrator.Instances.Select(i => $"{i.Key} {i.State} {i.Message}"));
                throw new TimeoutException($"waited {Deadline.TotalSeconds} s for {what}; instances: {state}");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Waiting restarts too: one firing during the host's shutdown would leave its process behind.
        foreach (var instance in Orchestrator.Instances.Where(i => i.Origin == InstanceOrigin.Managed && (i.IsActive || i.PendingRestart is not null)))
        {
            await Orchestrator.StopAsync(instance.Service, instance.Key.GpuIndex, CancellationToken.None);
        }

        await Factory.DisposeAsync();
        try
        {
            Directory.Delete(Path.GetDirectoryName(ProfilePath)!, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Kills a process group left behind by a failing test (never cf-orch's own).</summary>
    public static void KillGroup(int pid) => Signals.SendToGroup(pid, Signals.SigKill);
}
