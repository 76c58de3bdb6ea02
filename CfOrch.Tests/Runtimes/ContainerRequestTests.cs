using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes.Docker;
using Docker.DotNet.Models;

namespace CfOrch.Tests.Runtimes;

/// <summary>What cf-orch asks the engine for, and how it reads a pull's progress — without an engine.</summary>
public sealed class ContainerRequestTests
{
    private static readonly DateTimeOffset Run = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_request_carries_the_profile_and_exactly_the_leased_gpu()
    {
        var spec = new DockerSpec
        {
            Image = "vllm/vllm-openai:latest",
            Port = 8000,
            HostPort = 18000,
            CommandTemplate = "--model {model} --port {port} --device cuda:{gpu_id}",
            Volumes = ["hf:/root/.cache/huggingface", "/srv/models:/models:ro"],
            Env = new Dictionary<string, string> { ["HF_HOME"] = "/root/.cache/huggingface" },
            ShmSizeBytes = 1L << 30,
            User = "1000",
            Init = true,
        };

        var request = ContainerRequest.Build(spec, new InstanceKey("vllm", "box", 1), "qwen", "GPU-8f1c", "owner1", Run, 20480);

        Assert.Equal("cf-orch-vllm-gpu1", request.Name);
        Assert.Equal(["--model", "qwen", "--port", "8000", "--device", "cuda:1"], request.Cmd);
        Assert.Equal(["HF_HOME=/root/.cache/huggingface"], request.Env);
        var host = request.HostConfig!;
        Assert.Equal(["hf:/root/.cache/huggingface", "/srv/models:/models:ro"], host.Binds);
        var gpu = Assert.Single(host.DeviceRequests);
        Assert.Equal(["GPU-8f1c"], gpu.DeviceIDs);
        Assert.Equal(0, gpu.Count);
        Assert.Equal(("nvidia", "host", 1L << 30, true, "1000"), (host.Runtime, host.IpcMode, host.ShmSize, host.Init, request.User));
        var binding = Assert.Single(host.PortBindings["8000/tcp"]);
        Assert.Equal(("127.0.0.1", "18000"), (binding.HostIP, binding.HostPort));
        Assert.Equal("vllm", request.Labels[ContainerRequest.ServiceLabel]);
        Assert.Equal("1", request.Labels[ContainerRequest.GpuLabel]);
        Assert.Equal("qwen", request.Labels[ContainerRequest.ModelLabel]);
        Assert.Equal(new InstanceKey("vllm", "box", 1), ContainerRequest.KeyOf(request.Labels));
        Assert.Equal(Run, ContainerRequest.RunOf(request.Labels));
    }

    [Fact]
    public void Without_a_gpu_no_device_is_requested_and_host_networking_publishes_nothing()
    {
        var spec = new DockerSpec { Image = "embed:cpu", Port = 80, Network = "host", Runtime = "" };

        var request = ContainerRequest.Build(spec, new InstanceKey("embed", "local", 0), null, null, "o", Run, 512);

        var host = request.HostConfig!;
        Assert.Null(host.DeviceRequests);
        Assert.Null(host.PortBindings);
        Assert.Null(request.ExposedPorts);
        Assert.Null(host.Runtime);
        Assert.Equal("host", host.NetworkMode);
        Assert.Null(request.Cmd);
    }

    [Theory]
    [InlineData("vllm/vllm-openai:latest", "vllm/vllm-openai", "latest")]
    [InlineData("ollama/ollama", "ollama/ollama", "latest")]
    [InlineData("localhost:5000/team/model:v2", "localhost:5000/team/model", "v2")]
    [InlineData("localhost:5000/team/model", "localhost:5000/team/model", "latest")]
    [InlineData("busybox@sha256:abc", "busybox", "sha256:abc")]
    public void An_image_reference_is_split_into_name_and_tag(string reference, string image, string tag) =>
        Assert.Equal((image, tag), DockerRuntime.SplitReference(reference));

    [Fact]
    public void A_pull_shows_layers_done_and_bytes_downloaded_of_the_total()
    {
        var pull = new PullProgress("vllm/vllm-openai:latest");

        pull.Apply(new JSONMessage { Status = "Pulling from vllm/vllm-openai", ID = "latest" });
        pull.Apply(new JSONMessage { Status = "Pulling fs layer", ID = "a" });
        pull.Apply(new JSONMessage { Status = "Pulling fs layer", ID = "b" });
        pull.Apply(new JSONMessage { Status = "Already exists", ID = "c" });
        pull.Apply(new JSONMessage { Status = "Downloading", ID = "a", Progress = new JSONProgress { Current = 50L << 20, Total = 100L << 20 } });
        pull.Apply(new JSONMessage { Status = "Downloading", ID = "b", Progress = new JSONProgress { Current = 10L << 20, Total = 300L << 20 } });

        Assert.Equal("pulling vllm/vllm-openai:latest: 1 of 3 layers, 60 MB of 400 MB", pull.Describe());

        pull.Apply(new JSONMessage { Status = "Pull complete", ID = "a" });

        Assert.Equal("pulling vllm/vllm-openai:latest: 2 of 3 layers, 110 MB of 400 MB", pull.Describe());
    }
}
