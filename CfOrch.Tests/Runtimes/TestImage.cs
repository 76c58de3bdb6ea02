using System.Formats.Tar;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace CfOrch.Tests.Runtimes;

/// <summary>
/// The image the container tests and the benchmark run, built locally (no registry is reachable) <c>FROM scratch</c>
/// with busybox-static's binary: <c>busybox httpd</c> on port 8080 serving <c>/www</c>, where <c>/health</c> answers 200.
/// </summary>
public static class TestImage
{
    /// <summary>Builds <paramref name="tag"/> through the engine's API (a tar of the build context); throws with the engine's errors.</summary>
    public static async Task BuildAsync(IDockerClient client, string tag, string busybox = "/bin/busybox")
    {
        ArgumentNullException.ThrowIfNull(client);
        using var context = new MemoryStream();
        using (var tar = new TarWriter(context, TarEntryFormat.Pax, leaveOpen: true))
        {
            Add(tar, "Dockerfile", Encoding.UTF8.GetBytes("""
                FROM scratch
                COPY busybox /bin/busybox
                COPY www /www
                CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]

                """), 0b110_100_100);
            Add(tar, "busybox", await File.ReadAllBytesAsync(busybox), 0b111_101_101);
            Add(tar, "www/health", "ok\n"u8.ToArray(), 0b110_100_100);
            Add(tar, "www/index.html", "cf-orch test container\n"u8.ToArray(), 0b110_100_100);
        }

        context.Position = 0;
        var errors = new List<string>();
        await client.Images.BuildImageFromDockerfileAsync(
            new ImageBuildParameters { Tags = [tag], Remove = true, ForceRemove = true },
            context, null, null, new Progress<JSONMessage>(m =>
            {
                if (m.Error?.Message is { Length: > 0 } error)
                {
                    lock (errors)
                    {
                        errors.Add(error);
                    }
                }
            }), CancellationToken.None);
        await client.Images.InspectImageAsync(tag);
        lock (errors)
        {
            if (errors.Count > 0)
            {
                throw new InvalidOperationException($"building {tag} failed: {string.Join("; ", errors)}");
            }
        }
    }

    private static void Add(TarWriter tar, string name, byte[] content, int mode) =>
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), Mode = (UnixFileMode)mode });
}
