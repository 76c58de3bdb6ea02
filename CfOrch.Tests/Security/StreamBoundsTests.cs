using System.Net;
using System.Text;
using CfOrch.Core.Configuration;
using CfOrch.Core.Supervision;
using CfOrch.Tests.Api;
using CfOrch.Tests.Engine;
using CfOrch.Web.Api;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Security;

/// <summary>Event streams cannot hold the server without limit: a cap on open streams, and clients that stop reading are dropped.</summary>
public sealed class StreamBoundsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_stream_past_max_streams_gets_a_json_429_until_one_closes()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:Api:MaxStreams"] = "2" });
        var first = await OpenAsync(host, "/api/events");
        using var second = await OpenAsync(host, "/api/events");
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (first.StatusCode, second.StatusCode));

        using var third = await OpenAsync(host, "/api/events");
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("application/problem+json", third.Content.Headers.ContentType?.MediaType);
        Assert.Contains("CfOrch:Api:MaxStreams", await third.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(2, host.Get<StreamGate>().Open);

        // A closed stream gives its slot back.
        first.Dispose();
        await host.App.PollAsync(() => host.Get<StreamGate>().Open == 1 ? "closed" : null, "the closed stream to give its slot back");
        using var again = await OpenAsync(host, "/api/events");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task One_address_cannot_take_every_stream_and_a_quarter_is_kept_for_controllers()
    {
        await using var host = ApiTestHost.Start(EngineApp.Profile(), new() { ["CfOrch:Api:MaxStreams"] = "4", ["CfOrch:Api:MaxStreamsPerAddress"] = "2" });
        var open = new List<HttpResponseMessage>();
        try
        {
            open.Add(await OpenAsync(host, "/api/events", "192.168.1.50"));
            open.Add(await OpenAsync(host, "/api/events", "192.168.1.50"));
            var third = await OpenAsync(host, "/api/events", "192.168.1.50");
            open.Add(third);
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.Contains("CfOrch:Api:MaxStreamsPerAddress", await third.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

            open.Add(await OpenAsync(host, "/api/events", "192.168.1.51"));
            var visitor = await OpenAsync(host, "/api/events", "192.168.1.52");
            open.Add(visitor);
            Assert.Equal(HttpStatusCode.TooManyRequests, visitor.StatusCode);
            Assert.Contains("kept for those who may control cf-orch", await visitor.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

            // This machine's own user may control cf-orch: the kept slot is theirs.
            var owner = await OpenAsync(host, "/api/events");
            open.Add(owner);
            Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
            Assert.Equal(4, host.Get<StreamGate>().Open);
        }
        finally
        {
            open.ForEach(r => r.Dispose());
        }
    }

    [Fact]
    public async Task A_client_that_takes_no_data_for_30_seconds_is_dropped()
    {
        var (http, time, body, lifetime) = Context();
        body.Stall = true;
        var ring = new LogRing(10, time);
        ring.Append(LogStream.Stdout, "a line");

        var stream = ServerSentEvents.StreamLogAsync(http, ring, tail: 10, text => text);
        await Eventually.TrueAsync(() => body.Blocked, "the first write to block", EngineApp.Deadline);
        time.Advance(ServerSentEvents.StallTimeout - TimeSpan.FromSeconds(1));
        Assert.False(stream.IsCompleted);
        Assert.False(lifetime.Aborted);

        time.Advance(TimeSpan.FromSeconds(1));

        await stream.WaitAsync(EngineApp.Deadline, Ct);
        Assert.True(lifetime.Aborted);
        Assert.Equal(0, http.RequestServices.GetRequiredService<StreamGate>().Open);
    }

    [Fact]
    public async Task An_idle_stream_gets_a_keep_alive_comment_every_15_seconds()
    {
        var (http, time, body, lifetime) = Context();
        var ring = new LogRing(10, time);

        var stream = ServerSentEvents.StreamLogAsync(http, ring, tail: 10, text => text);
        await Eventually.TrueAsync(() => body.Flushes > 0, "the stream to start", EngineApp.Deadline);
        Assert.DoesNotContain("keep-alive", body.Text, StringComparison.Ordinal);
        for (var i = 1; i <= 2; i++)
        {
            time.Advance(ServerSentEvents.KeepAlive);
            var expected = i;
            await Eventually.TrueAsync(() => Count(body.Text, ": keep-alive\n\n") == expected, $"keep-alive number {i}", EngineApp.Deadline);
        }

        ring.Append(LogStream.Stderr, "later");
        await Eventually.TrueAsync(() => body.Text.Contains("\"text\":\"later\"", StringComparison.Ordinal), "the new line", EngineApp.Deadline);
        await lifetime.CancelAsync();
        await stream.WaitAsync(EngineApp.Deadline, Ct);
        Assert.False(lifetime.Aborted);
    }

    private static int Count(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;

    private static (DefaultHttpContext Http, FakeTimeProvider Time, RecordingBody Body, Lifetime Lifetime) Context()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-29T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(time)
            .AddSingleton(Options.Create(new CfOrchOptions()))
            .AddSingleton<StreamGate>()
            .AddSingleton<CfOrch.Web.Auth.AccessEvaluator>()
            .AddLogging()
            .BuildServiceProvider();
        var body = new RecordingBody();
        var lifetime = new Lifetime();
        var http = new DefaultHttpContext { RequestServices = services };
        http.Features.Set<IHttpRequestLifetimeFeature>(lifetime);
        http.Response.Body = body;
        return (http, time, body, lifetime);
    }

    private static async Task<HttpResponseMessage> OpenAsync(ApiTestHost host, string path, string? remote = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(path, UriKind.Relative));
        if (remote is not null)
        {
            request.Headers.Add(Web.CfOrchAppFactory.RemoteAddressHeader, remote);
        }

        return await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(EngineApp.Deadline, Ct);
    }

    /// <summary>The request's lifetime: its cancellation, and whether the server aborted the connection.</summary>
    private sealed class Lifetime : IHttpRequestLifetimeFeature
    {
        private readonly CancellationTokenSource _aborted = new();

        public CancellationToken RequestAborted { get => _aborted.Token; set { } }

        public bool Aborted { get; private set; }

        public void Abort()
        {
            Aborted = true;
            _aborted.Cancel();
        }

        public Task CancelAsync() => _aborted.CancelAsync();
    }

    /// <summary>A response body that records what is written, or, with <see cref="Stall"/>, takes nothing (a client that stopped reading).</summary>
    private sealed class RecordingBody : Stream
    {
        private readonly StringBuilder _text = new();

        public bool Stall { get; set; }

        public bool Blocked { get; private set; }

        public int Flushes { get; private set; }

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await BlockWhileStalledAsync(cancellationToken);
            lock (_text)
            {
                _text.Append(Encoding.UTF8.GetString(buffer.Span));
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            await BlockWhileStalledAsync(cancellationToken);
            Flushes++;
        }

        public override void Flush() => throw new NotSupportedException("the server must not block a thread on a client");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("the server must not block a thread on a client");

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private async Task BlockWhileStalledAsync(CancellationToken cancellationToken)
        {
            if (Stall)
            {
                Blocked = true;
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
        }
    }
}
