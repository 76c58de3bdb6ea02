using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;

namespace CfOrch.E2E;

/// <summary>
/// Web pages in Chromium on the GPU machine try to control cf-orch, as an attacker's page would: from a second origin
/// on loopback (a no-cors fetch, a text/plain form), and through DNS rebinding (a name that resolves to 127.0.0.1).
/// The requests reach cf-orch, which refuses them, and nothing changes.
/// </summary>
public sealed class CrossOriginTests(BrowserFixture browser, SimulatedAppFixture app) : IClassFixture<SimulatedAppFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_page_from_another_origin_cannot_create_leases_or_allocations()
    {
        var target = app.App.BaseAddress.ToString().TrimEnd('/');
        using var attacker = AttackerSite.Start($$"""
            <!DOCTYPE html><title>cute cats</title>
            <iframe name="sink"></iframe>
            <form id="f" method="post" enctype="text/plain" action="{{target}}/api/services/vllm/allocate" target="sink">
              <input name='{"caller":"attacker","ttl_s":60,"x":"' value='"}'>
            </form>
            <script>
              (async () => {
                const lease = JSON.stringify({ node_id: 'local', gpu_id: 0, mb: 100, service: 'attacker' });
                await fetch('{{target}}/api/leases', { method: 'POST', mode: 'no-cors', body: lease }).catch(() => {});
                await fetch('{{target}}/api/services/ollama/stop', { method: 'POST', mode: 'no-cors', body: '{}' }).catch(() => {});
                document.querySelector('iframe').addEventListener('load', () => document.title = 'done', { once: true });
                document.getElementById('f').submit();
              })();
            </script>
            """);
        await using var context = await browser.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var refused = new List<(string Url, int Status)>();
        page.Response += (_, response) =>
        {
            if (response.Url.StartsWith(target, StringComparison.Ordinal))
            {
                lock (refused)
                {
                    refused.Add((new Uri(response.Url).AbsolutePath, response.Status));
                }
            }
        };

        await page.GotoAsync(attacker.Address, new() { Timeout = PageExtensions.Timeout });
        await Assertions.Expect(page).ToHaveTitleAsync("done", new() { Timeout = PageExtensions.Timeout });

        // Each request reached cf-orch and was refused there (403: not cf-orch's own page).
        (string, int)[] expected = [("/api/leases", 403), ("/api/services/ollama/stop", 403), ("/api/services/vllm/allocate", 403)];
        var until = DateTime.UtcNow.AddMilliseconds(PageExtensions.Timeout);
        while (true)
        {
            lock (refused)
            {
                if (expected.All(refused.Contains) || DateTime.UtcNow > until)
                {
                    Assert.All(expected, e => Assert.Contains(e, refused));
                    break;
                }
            }

            await Task.Delay(50, Ct);
        }

        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        var leases = await http.GetStringAsync(new Uri("api/leases", UriKind.Relative), Ct);
        Assert.DoesNotContain("attacker", leases, StringComparison.Ordinal);
        Assert.Equal(0, JsonDocument.Parse(await http.GetStringAsync(new Uri("api/services/vllm/status", UriKind.Relative), Ct)).RootElement.GetProperty("allocations").GetArrayLength());

        // The same write from cf-orch's own page is taken: the guard refuses other pages, not the dashboard's.
        await page.GotoAsync(target + "/api/health");
        var status = await page.EvaluateAsync<int>($$"""
            async () => (await fetch('/api/leases', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ node_id: 'local', gpu_id: 0, mb: 100, service: 'own-page' }) })).status
            """);
        Assert.Equal(200, status);
        Assert.Contains("own-page", await http.GetStringAsync(new Uri("api/leases", UriKind.Relative), Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dns_rebinding_page_reads_but_cannot_write()
    {
        // A name the attacker controls that resolves to 127.0.0.1: the page and cf-orch share an origin in the browser.
        await using var rebinding = await browser.LaunchAsync("--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1");
        var page = await rebinding.NewPageAsync();
        var rebound = $"http://rebind.attacker.test:{app.App.BaseAddress.Port}";

        await page.GotoAsync(rebound + "/api/health", new() { Timeout = PageExtensions.Timeout });
        var answers = await page.EvaluateAsync<JsonElement>("""
            async () => {
              const post = async (path, body) => {
                const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
                return { status: r.status, detail: (await r.json()).detail };
              };
              return {
                lease: await post('/api/leases', { node_id: 'local', gpu_id: 0, mb: 100, service: 'rebound' }),
                stop: await post('/api/services/ollama/stop', {}),
                read: (await fetch('/api/services')).status,
              };
            }
            """);

        Assert.Equal(401, answers.GetProperty("lease").GetProperty("status").GetInt32());
        Assert.Contains("rebind.attacker.test", answers.GetProperty("lease").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(401, answers.GetProperty("stop").GetProperty("status").GetInt32());
        Assert.Equal(200, answers.GetProperty("read").GetInt32());
        using var http = new HttpClient { BaseAddress = app.App.BaseAddress };
        Assert.DoesNotContain("rebound", await http.GetStringAsync(new Uri("api/leases", UriKind.Relative), Ct), StringComparison.Ordinal);
    }

    /// <summary>The attacker's web site: one page, served from another port of this machine (another origin, same site).</summary>
    private sealed class AttackerSite : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly byte[] _page;

        private AttackerSite(string html, int port)
        {
            _page = Encoding.UTF8.GetBytes(html);
            Address = $"http://127.0.0.1:{port}/";
            _listener.Prefixes.Add(Address);
            _listener.Start();
            _ = ServeAsync();
        }

        public string Address { get; }

        public static AttackerSite Start(string html) => new(html, StandIn.FreePort());

        public void Dispose() => _listener.Close();

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                context.Response.ContentType = "text/html; charset=utf-8";
                await context.Response.OutputStream.WriteAsync(_page);
                context.Response.Close();
            }
        }
    }
}
