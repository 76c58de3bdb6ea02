using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace CfOrch.Tests.Runtimes;

/// <summary>
/// The real Docker engine these tests run against (test.sh starts one, with a no-op NVIDIA hook and an <c>nvidia</c>
/// runtime alias), and the test image built locally <c>FROM scratch</c> with busybox-static's binary: busybox httpd on
/// port 8080, <c>/health</c> answering 200. Without an engine the tests are skipped with the reason — unless
/// <c>CF_ORCH_REQUIRE_DOCKER=1</c> (test.sh sets it once its engine answers), where that is a failure.
/// </summary>
public static class DockerTestEngine
{
    public const string Endpoint = "unix:///var/run/docker.sock";
    public const string Image = "cf-orch-test/httpd:1";
    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static bool _built;

    public static DockerClient Client { get; } = new DockerClientBuilder().WithEndpoint(new Uri(Endpoint)).Build();

    /// <summary>The engine answers and the test image exists; otherwise the test is skipped (or fails, where an engine is required).</summary>
    public static async Task RequireAsync()
    {
        string? why = null;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Client.System.PingAsync(cts.Token);
        }
        catch (Exception ex)
        {
            why = $"no Docker engine answers at {Endpoint} ({ex.GetBaseException().Message}); ./test.sh installs docker.io and starts dockerd";
        }

        if (why is null && !File.Exists("/bin/busybox"))
        {
            why = "busybox-static is not installed (/bin/busybox): the test image is built from it; ./test.sh installs it";
        }

        if (why is null && !(await Client.System.GetSystemInfoAsync()).Runtimes.ContainsKey("nvidia"))
        {
            why = $"the engine at {Endpoint} has no nvidia runtime (the NVIDIA container toolkit, or the no-op hook ./test.sh starts its engine with): containers on a GPU cannot run there";
        }

        if (why is not null)
        {
            if (Environment.GetEnvironmentVariable("CF_ORCH_REQUIRE_DOCKER") == "1")
            {
                Assert.Fail(why);
            }

            Assert.Skip(why);
        }

        await BuildImageAsync();
    }

    private static async Task BuildImageAsync()
    {
        await BuildLock.WaitAsync();
        try
        {
            if (!_built)
            {
                await TestImage.BuildAsync(Client, Image);
                _built = true;
            }
        }
        finally
        {
            BuildLock.Release();
        }
    }

    /// <summary>A service name no other test uses (container names are per engine, and tests run in parallel).</summary>
    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>A command_template line that makes busybox log every request (the health probes) to its output.</summary>
    public const string Verbose = "      command_template: /bin/busybox httpd -f -vv -p 8080 -h /www\n";

    /// <summary>A profile service block that runs the test image.</summary>
    public static string Service(string name, int port, int maxMb = 1000, int priority = 1, string extra = "", string image = Image, bool adopt = false, bool alwaysOn = false) =>
        string.Create(CultureInfo.InvariantCulture, $"""
          {name}:
            max_mb: {maxMb}
            priority: {priority}
            always_on: {(alwaysOn ? "true" : "false")}
            managed:
              type: docker
              adopt: {(adopt ? "true" : "false")}
              image: {image}
              pull: missing
              port: 8080
              host_port: {port}
              health_path: /health
        {extra}
        """);

    /// <summary>The container (running or not) with this name, or null.</summary>
    public static async Task<ContainerInspectResponse?> FindAsync(string nameOrId)
    {
        try
        {
            return await Client.Containers.InspectContainerAsync(nameOrId);
        }
        catch (DockerContainerNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Gives the test image another name (<c>repository:tag</c>): an image that arrives, as a docker pull or load would bring it.</summary>
    public static Task TagAsync(string image)
    {
        var colon = image.LastIndexOf(':');
        return Client.Images.TagImageAsync(Image, new ImageTagParameters { RepositoryName = image[..colon], Tag = image[(colon + 1)..] });
    }

    /// <summary>Removes a tag a test gave an image (the image stays under its other tags).</summary>
    public static async Task UntagAsync(string image)
    {
        try
        {
            await Client.Images.DeleteImageAsync(image, new ImageDeleteParameters());
        }
        catch (DockerImageNotFoundException)
        {
        }
    }

    /// <summary>Removes containers a failing test left behind.</summary>
    public static async Task RemoveAsync(params string[] names)
    {
        foreach (var name in names)
        {
            try
            {
                await Client.Containers.RemoveContainerAsync(name, new ContainerRemoveParameters { Force = true });
            }
            catch (DockerContainerNotFoundException)
            {
            }
        }
    }
}
