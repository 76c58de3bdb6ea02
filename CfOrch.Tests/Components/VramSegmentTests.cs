using CfOrch.Core.Gpus;
using CfOrch.Web.Components.Controls;

namespace CfOrch.Tests.Components;

public sealed class VramSegmentTests
{
    [Fact]
    public void Segments_always_add_up_to_the_total()
    {
        var gpu = new GpuInfo { Index = 0, Name = "g", TotalMb = 8192, UsedMb = 5000, Processes = [new GpuProcess(1, 3000, "a"), new GpuProcess(2, 4000, "b")] };

        var segments = VramSegment.ForGpu(gpu, null, [], reserveMb: 512);

        Assert.Equal(8192, segments.Sum(s => s.Mb));
        // The second process is clipped to what the driver says is used, so the bar never overflows.
        Assert.Equal([3000L, 2000L, 512L, 2680L], segments.Select(s => s.Mb));
    }

    [Fact]
    public void The_reserve_is_never_larger_than_what_is_free()
    {
        var gpu = new GpuInfo { Index = 0, Name = "g", TotalMb = 4096, UsedMb = 4000 };

        var segments = VramSegment.ForGpu(gpu, null, [], reserveMb: 1024);

        Assert.Equal([(VramSegmentKind.Unattributed, 4000L), (VramSegmentKind.Reserve, 96L)], segments.Select(s => (s.Kind, s.Mb)));
    }

    [Fact]
    public void A_holder_keeps_its_colour()
    {
        Assert.Equal(VramSegment.ColorFor("ollama"), VramSegment.ColorFor("ollama"));
        Assert.StartsWith("#", VramSegment.ColorFor("comfyui"), StringComparison.Ordinal);
    }
}
