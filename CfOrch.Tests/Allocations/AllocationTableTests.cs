using CfOrch.Core.Allocations;
using CfOrch.Core.State;

namespace CfOrch.Tests.Allocations;

public sealed class AllocationTableTests
{
    private static Allocation On(string id, string service, string node, int gpu) => new()
    {
        AllocationId = id,
        Service = service,
        NodeId = node,
        GpuIndex = gpu,
        Url = "http://127.0.0.1:1",
        Caller = "t",
        CreatedAt = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public void An_instance_is_held_only_by_allocations_on_its_own_node_and_gpu()
    {
        var table = new AllocationTable(new StateStream());
        table.Add(On("a1", "ollama", "local", 0));
        table.Add(On("a2", "ollama", "heimdall", 0));
        table.Add(On("a3", "ollama", "heimdall", 0));
        table.Add(On("a4", "ollama", "local", 1));

        Assert.Equal(1, table.CountFor("ollama", "local", 0));
        Assert.Equal(2, table.CountFor("ollama", "heimdall", 0));
        Assert.Equal(0, table.CountFor("vllm", "local", 0));
        Assert.True(table.Holds("ollama", "local", 1));
        Assert.False(table.Holds("ollama", "heimdall", 1));
    }
}
