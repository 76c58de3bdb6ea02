using CfOrch.Core.Instances;
using CfOrch.Core.Processes;
using CfOrch.Core.Runtimes;
using CfOrch.Tests.Engine;
using CfOrch.Tests.StandIns;
using CfOrch.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Orchestration;

/// <summary>
/// cf-orch killed between spawning a service and recording it (a kill -9 at that moment): what it leaves is a process
/// of the service, on its port, carrying cf-orch's marker, and no record. The next start re-attaches it — it is not
/// refused as "port in use", nor started twice.
/// </summary>
public sealed class UnrecordedProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_process_cf_orch_started_but_never_recorded_is_re_attached_as_its_service()
    {
        var port = EngineApp.FreePort();
        using var data = new TempDir();
        await using var orphan = await StartStandInAsync(port, marker: "local/worker/0", dataDir: data.Path);
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")), dataDir: data.Path);

            var worker = await app.WaitForAsync("worker", i => i.State == InstanceState.Running);
            Assert.Equal((InstanceOrigin.Managed, true, orphan.Pid), (worker.Origin, worker.Reattached, worker.Pid));
            Assert.Single(app.Orchestrator.Leases);

            // Recorded now: a further restart re-attaches it from its record.
            await app.Factory.Services.GetRequiredService<HistoryWriter>().FlushAsync(Ct);
            await using var db = await app.Factory.Services.GetRequiredService<IDbContextFactory<CfOrchDb>>().CreateDbContextAsync(Ct);
            Assert.Equal(orphan.Pid, (await db.ManagedInstances.SingleAsync(Ct)).Pid);
        }
        finally
        {
            EngineApp.KillGroup(orphan.Pid);
        }
    }

    [Fact]
    public async Task A_process_on_the_port_without_cf_orchs_marker_is_not_taken_for_the_service()
    {
        var port = EngineApp.FreePort();
        await using var stranger = await StartStandInAsync(port, marker: null);
        try
        {
            await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")));

            Assert.Empty(app.Orchestrator.Instances);
            var refused = await Assert.ThrowsAsync<Core.Orchestration.OrchestrationException>(() => app.Orchestrator.EnsureAsync("worker", null, null, Ct).WaitAsync(EngineApp.Deadline, Ct));
            Assert.Contains($"port {port} is already in use", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            EngineApp.KillGroup(stranger.Pid);
        }
    }

    [Fact]
    public async Task A_marked_process_of_another_cf_orch_on_this_machine_is_not_taken_for_the_service()
    {
        var port = EngineApp.FreePort();
        using var theirs = new TempDir();
        await using var other = await StartStandInAsync(port, marker: "local/worker/0", dataDir: theirs.Path);
        using var cleanup = new GroupKiller(other.Pid);

        await using var app = EngineApp.Start(EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")));

        // Same node id, service, executable and user — but started by the cf-orch of another data directory.
        Assert.Empty(app.Orchestrator.Instances);
        Assert.True(ProcFs.IsRunning(other.Pid));
    }

    /// <summary>Kills a stand-in's process group when the test ends, passed or not.</summary>
    private sealed class GroupKiller(int pid) : IDisposable
    {
        public void Dispose() => EngineApp.KillGroup(pid);
    }

    /// <summary>The stand-in service as cf-orch would have spawned it (own process group through setsid), with or without the marker.</summary>
    private static Task<StandInProcess> StartStandInAsync(int port, string? marker, string? dataDir = null) =>
        StandInProcess.StartAsync(
            ["service", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            Ct,
            marker is null ? null : new Dictionary<string, string?> { [LocalProcessRuntime.InstanceMarker] = marker, [LocalProcessRuntime.DataDirMarker] = dataDir },
            ownSession: true);
}
