using CfOrch.Core.Leases;
using CfOrch.Core.Nodes;
using CfOrch.Tests.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CfOrch.Tests.Leases;

/// <summary>Leases on the GPUs of other nodes: the same admission rule, against what their agents last reported, in books of their own.</summary>
public sealed class RemoteLeaseTests : IDisposable
{
    private readonly Nodes _nodes = new();
    private readonly EngineHarness _engine;

    public RemoteLeaseTests() =>
        _engine = new EngineHarness(configure: s => s.Replace(ServiceDescriptor.Singleton<IRemoteNodes>(_nodes)));

    public void Dispose() => _engine.Dispose();

    private LeaseManager Leases => _engine.Get<LeaseManager>();

    [Fact]
    public void A_lease_on_another_nodes_gpu_counts_there_and_not_on_this_nodes_gpu_of_the_same_index()
    {
        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", true, DateTimeOffset.UnixEpoch, null, [new RemoteGpu(0, "RTX 4090", 24576, 0, 24576)]));
        var localBefore = Leases.Account(0)!.AvailableMb;

        var lease = Assert.IsType<Admission.Granted>(Leases.Request(Client("batch", 20000) with { NodeId = "heimdall" })).Lease;

        Assert.Equal(("heimdall", 0), (lease.NodeId, lease.GpuIndex));
        Assert.Equal(localBefore, Leases.Account(0)!.AvailableMb);
        Assert.Equal(4576, Leases.Accounts("heimdall").Single().AvailableMb);
        var refused = Assert.IsType<Admission.Refused>(Leases.Request(Client("other", 5000) with { NodeId = "heimdall" }));
        Assert.Equal(RefusalKind.NoCapacity, refused.Why);
        Assert.StartsWith("Insufficient VRAM on GPU 0 of heimdall (RTX 4090): cannot fit 5000 MB for other", refused.Reason, StringComparison.Ordinal);
        Assert.IsType<Admission.Granted>(Leases.Request(Client("local", 5000)));
    }

    [Fact]
    public void Memory_the_agent_reports_in_use_by_what_holds_a_lease_there_is_not_counted_twice()
    {
        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", true, DateTimeOffset.UnixEpoch, null, [new RemoteGpu(0, "RTX 4090", 24576, 0, 24576)]));
        Assert.IsType<Admission.Granted>(Leases.Request(new LeaseRequest("llm", "llm", 0, 16000, 2, HolderOrigin.Managed) { NodeId = "heimdall" }));

        // The service loaded its model: the agent now reports 15 GB in use, which is the lease's, not a stranger's.
        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", true, DateTimeOffset.UnixEpoch, null, [new RemoteGpu(0, "RTX 4090", 24576, 15000, 9576)]));
        var account = Leases.Accounts("heimdall").Single();
        Assert.Equal((0L, 8576L), (account.ExternalMb, account.AvailableMb));

        // A program the coordinator knows nothing of takes 4 GB more: that is external, and admission sees it.
        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", true, DateTimeOffset.UnixEpoch, null, [new RemoteGpu(0, "RTX 4090", 24576, 20000, 4576)]));
        Assert.Equal((4000L, 4576L), (Leases.Accounts("heimdall").Single().ExternalMb, Leases.Accounts("heimdall").Single().AvailableMb));
        Assert.IsType<Admission.Refused>(Leases.Request(Client("batch", 5000) with { NodeId = "heimdall" }));
    }

    [Fact]
    public void An_unknown_node_an_offline_node_and_a_gpu_the_node_lacks_are_refused_with_why()
    {
        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", false, DateTimeOffset.UnixEpoch, "Connection refused", [new RemoteGpu(0, "RTX 4090", 24576, 0, 24576)]));

        var unknown = Assert.IsType<Admission.Refused>(Leases.Request(Client("batch", 100) with { NodeId = "nas" }));
        Assert.Equal(RefusalKind.UnknownNode, unknown.Why);
        Assert.Contains("unknown node_id 'nas'", unknown.Reason, StringComparison.Ordinal);
        Assert.Contains("knows heimdall", unknown.Reason, StringComparison.Ordinal);

        var offline = Assert.IsType<Admission.Refused>(Leases.Request(Client("batch", 100) with { NodeId = "heimdall" }));
        Assert.Equal(RefusalKind.NodeOffline, offline.Why);
        Assert.Contains("node 'heimdall' is offline (Connection refused)", offline.Reason, StringComparison.Ordinal);

        _nodes.Set(new RemoteNodeState("heimdall", "http://10.0.0.2:7701", true, DateTimeOffset.UnixEpoch, null, [new RemoteGpu(0, "RTX 4090", 24576, 0, 24576)]));
        var noGpu = Assert.IsType<Admission.Refused>(Leases.Request(new LeaseRequest("batch", null, 3, 100, 2, HolderOrigin.Client) { NodeId = "heimdall" }));
        Assert.Equal((RefusalKind.UnknownGpu, "node 'heimdall' has no GPU 3 (it has 0)"), (noGpu.Why, noGpu.Reason));
        Assert.Empty(Leases.All);
    }

    private static LeaseRequest Client(string holder, long mb) => new(holder, null, 0, mb, 2, HolderOrigin.Client);

    private sealed class Nodes : IRemoteNodes
    {
        private RemoteNodeState? _node;

        public IReadOnlyList<RemoteNodeState> All => _node is null ? [] : [_node];

        public void Set(RemoteNodeState node) => _node = node;

        public RemoteNodeState? Find(string nodeId) => _node?.NodeId == nodeId ? _node : null;
    }
}
