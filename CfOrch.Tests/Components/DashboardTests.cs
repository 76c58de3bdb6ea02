using Bunit;
using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Nodes;
using CfOrch.Web.Components.Pages;

namespace CfOrch.Tests.Components;

/// <summary>What the dashboard shows for the state it is given (what the engine says itself: <see cref="DashboardEngineTests"/>).</summary>
public sealed class DashboardTests : StateBunitContext
{
    [Fact]
    public void Other_nodes_are_shown_with_their_state_heartbeat_and_gpus_and_an_offline_one_is_greyed_with_why()
    {
        UseProfile();
        SetGpus(Gpu("RTX 4090", 24576));
        var page = RenderAs<Dashboard>();
        Assert.Empty(page.FindAll("[data-testid=node-card]"));

        Publish(new NodesChanged(
        [
            new("heimdall", "http://10.0.0.7:7701", true, Time.GetUtcNow().AddSeconds(-4), null, [new(0, "RTX 3090", 24576, 6144, 18432)]),
            new("loki", "http://10.0.0.8:7701", false, null, "Connection refused (10.0.0.8:7701)", []),
        ]));

        Assert.Equal(2, page.FindAll("[data-testid=node-card]").Count);
        var heimdall = page.Find("[data-node=heimdall]");
        Assert.Equal("online", heimdall.QuerySelector("[data-testid=node-state]")!.TextContent.Trim());
        Assert.Equal("4 s ago", heimdall.QuerySelector("[data-testid=node-seen]")!.TextContent);
        Assert.Contains("GPU 0 · RTX 3090", heimdall.QuerySelector("[data-testid=node-gpu]")!.TextContent, StringComparison.Ordinal);
        Assert.Contains("6,144 MB of 24,576 MB used", heimdall.QuerySelector("[data-testid=node-gpu]")!.TextContent, StringComparison.Ordinal);
        Assert.DoesNotContain("cf-offline", heimdall.ClassName, StringComparison.Ordinal);
        var loki = page.Find("[data-node=loki]");
        Assert.Contains("cf-offline", loki.ClassName, StringComparison.Ordinal);
        Assert.Equal("offline", loki.QuerySelector("[data-testid=node-state]")!.TextContent.Trim());
        Assert.Equal("never answered", loki.QuerySelector("[data-testid=node-seen]")!.TextContent);
        Assert.Equal("Connection refused (10.0.0.8:7701)", loki.QuerySelector("[data-testid=node-problem]")!.TextContent);
    }

    [Fact]
    public void Each_service_chip_links_to_its_row_on_the_services_page()
    {
        UseProfile();

        var page = RenderAs<Dashboard>();

        var link = page.Find("[data-testid=service-strip] [data-service=whisper] a");
        Assert.Equal("services?focus=whisper", link.GetAttribute("href"));
    }

    [Fact]
    public void A_new_gpu_reading_is_pushed_to_the_open_page()
    {
        UseProfile();
        SetGpus(Gpu("RTX 4090", 24576));
        var page = RenderAs<Dashboard>();
        Assert.Contains("0 MB of 24,576 MB used", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal);

        SetGpus(Gpu("RTX 4090", 24576, processes: new GpuProcess(999, 12288, "vllm")));

        Assert.Contains("12,288 MB of 24,576 MB used (50%)", page.Find("[data-testid=vram-used]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void The_service_strip_shows_every_service_of_the_profile_in_the_state_of_its_instance()
    {
        UseProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);
        AddInstance("whisper", InstanceState.Failed, with: i => i with { Message = "exited with code 3" });

        var page = RenderAs<Dashboard>();

        var chips = page.FindAll("[data-testid=service-strip] [data-service]")
            .Select(e => (e.GetAttribute("data-service"), e.QuerySelector(".cf-state-chip")!.GetAttribute("data-state")))
            .ToList();
        Assert.Equal([("embeddings", "not running"), ("ollama", "running"), ("vllm", "not running"), ("whisper", "failed")], chips);
        Assert.Equal("ollama on GPU 0: running (running outside cf-orch)", page.Find("[data-service=ollama]").GetAttribute("title"));
        Assert.Equal("whisper on GPU 0: failed — exited with code 3", page.Find("[data-service=whisper]").GetAttribute("title"));
        Assert.Contains("mud-chip-color-error", page.Find("[data-service=whisper] .mud-chip").ClassName, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lease_is_a_segment_of_the_vram_bar_with_its_holder_budget_and_measured_use()
    {
        UseProfile();
        var gpu = Gpu();
        SetGpus([gpu], [Books(gpu, leasedMb: 4096, measuredMb: 1500, heldMb: 4096)]);
        AddLease("ollama", 4096, origin: HolderOrigin.Adopted, measuredMb: 1500);

        var page = RenderAs<Dashboard>();

        var segment = page.Find("[data-testid=vram-bar] [data-kind=Lease]");
        Assert.Equal("ollama (adopted, running outside cf-orch): budget 4,096 MB, measured 1,500 MB", segment.GetAttribute("title"));
        Assert.Equal("4096", segment.GetAttribute("data-mb"));
        Assert.Contains("width:36.621%", segment.QuerySelector(".cf-vram-measured")!.GetAttribute("style"), StringComparison.Ordinal);
        Assert.Contains("ollama 1,500 MB of 4,096 MB · adopted", page.Find("[data-testid=lease-legend]").TextContent, StringComparison.Ordinal);
        Assert.Contains("4,096 MB available to new leases", page.Find("[data-testid=available]").TextContent, StringComparison.Ordinal);
        Assert.Empty(page.FindAll("[data-testid=overcommitted]"));
    }

    [Fact]
    public void An_over_committed_gpu_is_red_and_says_by_how_much()
    {
        UseProfile();

        // A program cf-orch does not track takes 4 GB after whisper's lease of 6,000 MB was granted.
        var gpu = Gpu(processes: new GpuProcess(31337, 4000, "blender"));
        SetGpus([gpu], [Books(gpu, leasedMb: 6000, heldMb: 6000, externalMb: 4000)]);
        AddLease("whisper", 6000, priority: 2);
        var page = RenderAs<Dashboard>();

        var card = page.Find("[data-testid=gpu-card]");
        Assert.Contains("cf-gpu-overcommitted", card.ClassName, StringComparison.Ordinal);
        Assert.Equal("Over-committed: 10,000 MB committed on a 8,192 MB card.", page.Find("[data-testid=overcommitted]").TextContent.Trim());
        Assert.Contains("cf-vram-over", page.Find("[data-testid=vram-bar]").ClassName, StringComparison.Ordinal);
        Assert.Contains("blender (PID 31337, not tracked by cf-orch): 4,000 MB", page.Find("[data-kind=External]").GetAttribute("title"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_processes_of_a_tracked_instance_are_named_by_its_service_not_counted_as_outside_use()
    {
        UseProfile();
        var pid = Environment.ProcessId;
        AddInstance("whisper", InstanceState.Running, with: i => i with { Pid = pid });
        SetGpus(Gpu(processes: new GpuProcess(pid, 2500, "whisper-server")));

        var page = RenderAs<Dashboard>();

        var row = page.FindAll(".cf-process-table tbody tr").Single();
        Assert.Equal($"whisper-server | {pid} | whisper | 2,500 MB", string.Join(" | ", row.QuerySelectorAll("td").Select(td => td.TextContent.Trim())));
        Assert.Empty(page.FindAll("[data-kind=External]"));
    }
}
