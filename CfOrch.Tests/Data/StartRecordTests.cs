using System.Net;
using CfOrch.Core.Instances;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CfOrch.Tests.Data;

/// <summary>The record of a start is written before the start is reported; a start whose record fails is undone, whatever happened meanwhile.</summary>
public sealed class StartRecordTests
{
    [Fact]
    public async Task A_start_whose_record_fails_after_its_health_probe_found_it_ready_is_refused_and_its_process_stopped()
    {
        // The record's write is slow (a loaded machine, a disk filling up) and fails only once the health monitor has
        // already found the process ready: it has no record all the same, so it must not stay running.
        var port = EngineApp.FreePort();
        await using var host = ApiTestHost.Start(
            EngineApp.Profile(EngineApp.StandInService("worker", 1000, 1, port, "service --port {port}", "/health")),
            services: s => s.Replace(ServiceDescriptor.Singleton<IInstanceStore>(sp => new FailsOnceReady(sp.GetRequiredService<InstanceRegistry>()))));

        var refused = (await host.PostAsync("/api/services/worker/start", new { })).Is(HttpStatusCode.ServiceUnavailable);

        Assert.Contains("its start could not be recorded in cf-orch's database (no space left on device)", refused.Detail, StringComparison.Ordinal);
        var worker = Assert.Single(host.Orchestrator.Instances);
        Assert.Equal(InstanceState.Failed, worker.State);
        Assert.False(Core.Processes.ProcFs.IsRunning(worker.Pid!.Value));
        Assert.Empty(Core.Processes.ProcFs.ListeningPids(port));
        Assert.Empty(host.Orchestrator.Leases);
    }

    private sealed class FailsOnceReady(InstanceRegistry registry) : IInstanceStore
    {
        public Task<IReadOnlyList<ManagedInstanceRecord>> LoadAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<ManagedInstanceRecord>>([]);

        public async Task SaveAsync(ManagedInstanceRecord record, CancellationToken cancellationToken)
        {
            await registry.WaitAsync(record.Key, i => i.State == InstanceState.Running, cancellationToken);
            throw new IOException("no space left on device");
        }

        public void Remove(InstanceKey key)
        {
        }
    }
}
