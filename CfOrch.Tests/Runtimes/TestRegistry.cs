using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CfOrch.Tests.Runtimes;

/// <summary>
/// A Docker registry on 127.0.0.1 (the read side of the v2 API, what <c>docker pull</c> asks) that serves one image
/// under any name: busybox-static's binary in one layer, <c>busybox httpd</c> on port 8080 with <c>/health</c>. No
/// registry is reachable from these machines; the engine pulls from a loopback one over plain HTTP by default.
/// </summary>
public sealed class TestRegistry : IAsyncDisposable
{
    private const string ManifestType = "application/vnd.docker.distribution.manifest.v2+json";
    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _blobs;
    private readonly byte[] _manifest;
    private readonly string _manifestDigest;

    private TestRegistry(WebApplication app, Dictionary<string, byte[]> blobs, byte[] manifest)
    {
        _app = app;
        _blobs = blobs;
        _manifest = manifest;
        _manifestDigest = Digest(manifest);
    }

    /// <summary>host:port, as an image reference begins.</summary>
    public string Host { get; private set; } = "";

    public static async Task<TestRegistry> StartAsync(string busybox = "/bin/busybox")
    {
        var layerTar = new MemoryStream();
        using (var tar = new TarWriter(layerTar, TarEntryFormat.Pax, leaveOpen: true))
        {
            Add(tar, "bin/busybox", await File.ReadAllBytesAsync(busybox), 0b111_101_101);
            Add(tar, "www/health", "ok\n"u8.ToArray(), 0b110_100_100);
        }

        var diffId = Digest(layerTar.ToArray());
        var layer = new MemoryStream();
        using (var gzip = new GZipStream(layer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(layerTar.ToArray());
        }

        var config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["architecture"] = RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64" : "amd64",
            ["os"] = "linux",
            ["config"] = new Dictionary<string, object> { ["Cmd"] = new[] { "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www" } },
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = new[] { diffId } },
        });
        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [Digest(config)] = config, [Digest(layer.ToArray())] = layer.ToArray() };
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = ManifestType,
            ["config"] = new Dictionary<string, object> { ["mediaType"] = "application/vnd.docker.container.image.v1+json", ["size"] = config.Length, ["digest"] = Digest(config) },
            ["layers"] = new[]
            {
                new Dictionary<string, object> { ["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip", ["size"] = layer.Length, ["digest"] = Digest(layer.ToArray()) },
            },
        });

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var registry = new TestRegistry(app, blobs, manifest);
        app.Run(registry.ServeAsync);
        await app.StartAsync();
        registry.Host = new Uri(app.Urls.First()).Authority;
        return registry;
    }

    /// <summary>A reference to the image in this registry under <paramref name="repository"/>: <c>127.0.0.1:PORT/repository:1</c>.</summary>
    public string Reference(string repository) => $"{Host}/{repository}:1";

    private async Task ServeAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "";
        http.Response.Headers["Docker-Distribution-API-Version"] = "registry/2.0";
        byte[]? body = null;
        if (path == "/v2/")
        {
            body = "{}"u8.ToArray();
            http.Response.ContentType = "application/json";
        }
        else if (path.StartsWith("/v2/", StringComparison.Ordinal) && path.Contains("/manifests/", StringComparison.Ordinal))
        {
            body = _manifest;
            http.Response.ContentType = ManifestType;
            http.Response.Headers["Docker-Content-Digest"] = _manifestDigest;
        }
        else if (path.StartsWith("/v2/", StringComparison.Ordinal) && path.LastIndexOf("/blobs/", StringComparison.Ordinal) is var at and > 0
            && _blobs.TryGetValue(path[(at + "/blobs/".Length)..], out var blob))
        {
            body = blob;
            http.Response.ContentType = "application/octet-stream";
            http.Response.Headers["Docker-Content-Digest"] = path[(at + "/blobs/".Length)..];
        }

        if (body is null)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        http.Response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(http.Request.Method))
        {
            await http.Response.Body.WriteAsync(body);
        }
    }

    private static string Digest(byte[] bytes) => $"sha256:{Convert.ToHexStringLower(SHA256.HashData(bytes))}";

    private static void Add(TarWriter tar, string name, byte[] content, int mode) =>
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), Mode = (UnixFileMode)mode });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
