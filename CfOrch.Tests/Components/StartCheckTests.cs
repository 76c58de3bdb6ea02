using CfOrch.Core.Gpus;
using CfOrch.Core.Profiles;
using CfOrch.Core.State;
using CfOrch.Web.Components.Controls;

namespace CfOrch.Tests.Components;

/// <summary>Why Start is disabled, for the GPU-related reasons.</summary>
public sealed class StartCheckTests
{
    /// <summary>A profile whose whisper is pinned to GPU 1 (the engine's tests use it too).</summary>
    public const string PinnedProfile = """
        schema_version: 1
        name: pinned
        services:
          whisper:
            max_mb: 1000
            priority: 2
            gpus: [1]
            managed:
              type: process
              exec_path: /usr/bin/whisper-server
              port: 9000
        """;

    private static readonly ServiceProfile Pinned = ProfileParser.Parse(PinnedProfile, "pinned.yaml").Services["whisper"];

    private static EngineSnapshot With(params GpuInfo[] gpus) =>
        new(1, [], [], [], new GpuSnapshot(DateTimeOffset.UnixEpoch, GpuSource.Nvml, gpus, null), []);

    private static GpuInfo Gpu(int index, string? error = null) => new()
    {
        Index = index,
        Name = $"GPU {index}",
        Uuid = $"GPU-{index}",
        TotalMb = 8192,
        UsedMb = 0,
        Error = error,
    };

    [Fact]
    public void A_service_pinned_to_a_gpu_the_node_lacks_says_so()
    {
        Assert.Equal("whisper is pinned to GPU 1, which this node does not have (it has 0).", StartCheck.WhyNot(Pinned, With(Gpu(0)), "whisper"));
    }

    [Fact]
    public void A_service_pinned_to_a_gpu_that_cannot_be_read_says_why_not_that_it_is_missing()
    {
        Assert.Equal(
            "whisper can only run on GPU 1, which cannot be read right now: GPU 1: NVML_ERROR_GPU_IS_LOST.",
            StartCheck.WhyNot(Pinned, With(Gpu(0), Gpu(1, "NVML_ERROR_GPU_IS_LOST")), "whisper"));
    }

    [Fact]
    public void A_gpu_whose_books_are_full_still_offers_start_when_unloading_idle_models_would_make_room_there()
    {
        var full = Gpu(1) with { UsedMb = 8192 };
        var state = With(Gpu(0), full) with
        {
            Accounts = [new() { GpuIndex = 0, TotalMb = 8192, UsedMb = 0, FreeMb = 8192, ReserveMb = 0, LeasedMb = 0, MeasuredMb = 0, HeldMb = 8192, ExternalMb = 0 },
                        new() { GpuIndex = 1, TotalMb = 8192, UsedMb = 8192, FreeMb = 0, ReserveMb = 0, LeasedMb = 8192, MeasuredMb = 8192, HeldMb = 8192, ExternalMb = 0 }],
        };
        Assert.StartsWith("No GPU has room for 1,000 MB", StartCheck.WhyNot(Pinned, state, "whisper"), StringComparison.Ordinal);
        Assert.StartsWith("No GPU has room for 1,000 MB", StartCheck.WhyNot(Pinned, state, "whisper", roomByUnloading: gpu => gpu == 0), StringComparison.Ordinal);

        // Asked only for the GPUs it may run on (its pin: GPU 1).
        var asked = new List<int>();
        Assert.Null(StartCheck.WhyNot(Pinned, state, "whisper", roomByUnloading: gpu =>
        {
            asked.Add(gpu);
            return gpu == 1;
        }));
        Assert.Equal([1], asked);
    }

    private static ServiceProfile Container(string pull) => ProfileParser.Parse($"""
        schema_version: 1
        name: containers
        services:
          stt:
            max_mb: 1000
            priority: 2
            managed:
              type: docker
              image: example/stt:1
              pull: {pull}
              port: 8080
              host_port: 8080
        """, "containers.yaml").Services["stt"];

    [Fact]
    public void A_container_whose_image_is_not_here_and_may_not_be_pulled_says_what_to_do_and_one_that_may_be_pulled_can_start()
    {
        var state = With(Gpu(0)) with { Runtimes = [new CfOrch.Core.Runtimes.RuntimeStatus("docker", true, null) { MissingImages = ["example/stt:1"] }] };

        Assert.Equal(
            "stt is a container (type: docker), and image example/stt:1 is not on this machine and pull is never — docker pull example/stt:1 or set pull: missing.",
            StartCheck.WhyNot(Container("never"), state, "stt"));
        Assert.Null(StartCheck.WhyNot(Container("missing"), state, "stt"));
        Assert.Null(StartCheck.WhyNot(Container("never"), With(Gpu(0)) with { Runtimes = [CfOrch.Core.Runtimes.RuntimeStatus.Ready("docker")] }, "stt"));
    }

    [Fact]
    public void A_container_on_an_engine_without_the_nvidia_runtime_says_to_install_the_toolkit_until_the_engine_has_it()
    {
        static EngineSnapshot Engine(params string[] runtimes) =>
            With(Gpu(0)) with { Runtimes = [CfOrch.Core.Runtimes.RuntimeStatus.Ready("docker") with { EngineRuntimes = runtimes }] };

        Assert.Equal(
            "stt is a container (type: docker), and the Docker engine has no 'nvidia' runtime — install the NVIDIA Container Toolkit.",
            StartCheck.WhyNot(Container("missing"), Engine("io.containerd.runc.v2", "runc"), "stt"));
        Assert.Null(StartCheck.WhyNot(Container("missing"), Engine("nvidia", "runc"), "stt"));
    }

    [Fact]
    public void A_pinned_service_with_room_on_its_gpu_can_start()
    {
        Assert.Null(StartCheck.WhyNot(Pinned, With(Gpu(0), Gpu(1)), "whisper"));
    }
}
