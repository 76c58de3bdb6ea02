using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CfOrch.Web.Data;
using CfOrch.Web.Hosting;
using Microsoft.Data.Sqlite;

namespace CfOrch.Tests.Web;

public sealed class HostingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Api_health_answers_status_ok()
    {
        await using var app = new CfOrchAppFactory();
        using var client = app.CreateClient();

        using var response = await client.GetAsync(new Uri("/api/health", UriKind.Relative), TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("""{"status":"ok","storage":{"ok":true,"detail":null}}""", body.GetRawText());
    }

    [Fact]
    public async Task The_sqlite_database_is_created_by_migrations_on_first_start()
    {
        await using var app = new CfOrchAppFactory();
        using var client = app.CreateClient();
        await client.GetAsync(new Uri("/api/health", UriKind.Relative), TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        var path = Path.Combine(app.DataDir.Path, DataServiceCollectionExtensions.DatabaseFileName);
        Assert.True(File.Exists(path), $"{path} was not created");
        await using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM \"__EFMigrationsHistory\"; SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'gpu_samples';";
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        Assert.True(await reader.ReadAsync(TestContext.Current.CancellationToken));
        Assert.True(reader.GetInt64(0) >= 1);
        Assert.True(await reader.NextResultAsync(TestContext.Current.CancellationToken));
        Assert.True(await reader.ReadAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_dashboard_is_served_with_a_card_per_simulated_gpu()
    {
        await using var app = new CfOrchAppFactory();
        using var client = app.CreateClient();

        var html = await client.GetStringAsync(new Uri("/", UriKind.Relative), TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(2, html.Split("data-testid=\"gpu-card\"").Length - 1);
        Assert.Contains("Simulated RTX 4090", html, StringComparison.Ordinal);
        Assert.Contains("Simulated RTX 3060", html, StringComparison.Ordinal);
        Assert.Contains("single-gpu-24gb", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/app.css", "text/css")]
    [InlineData("/logo.svg", "image/svg+xml")]
    [InlineData("/favicon.svg", "image/svg+xml")]
    [InlineData("/app.js", "text/javascript")]
    public async Task The_apps_own_assets_are_served_with_content(string path, string mediaType)
    {
        await using var app = new CfOrchAppFactory();
        using var client = app.CreateClient();

        using var response = await client.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        Assert.True((await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken)).Length > 100);
    }

    [Fact]
    public async Task A_broken_profile_is_shown_on_the_dashboard_with_its_position_and_the_profile_used_instead()
    {
        using var dir = new TempDir();
        var path = dir.Write("mine.yaml", """
            schema_version: 1
            name: mine
            services:
              ollama:
                max_mb: 4096
                priority: 1
                managed:
                  type: process
                  exec_path: /usr/local/bin/ollama
                  prot: 11434
            """);
        await using var app = new CfOrchAppFactory(new() { ["CfOrch:Profile"] = path });
        using var client = app.CreateClient();

        var html = WebUtility.HtmlDecode(await client.GetStringAsync(new Uri("/", UriKind.Relative), TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken));

        Assert.Contains($"{path}:10:7: services.ollama.managed.prot: unknown key 'prot' (did you mean 'port'?)", html, StringComparison.Ordinal);
        Assert.Contains("cf-orch runs no services until it is fixed", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_another_program_holds_stops_start_up_with_exit_code_1_and_one_line_that_names_it_and_who_holds_it()
    {
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;

        var (exitCode, said) = await RunAppToExitAsync($"http://127.0.0.1:{port}");

        Assert.Equal(1, exitCode);
        Assert.Contains($"cf-orch cannot start: Failed to bind to address http://127.0.0.1:{port}: address already in use. Port {port} is held by PID {Environment.ProcessId} (", said, StringComparison.Ordinal);
        Assert.Contains("choose another address with --urls", said, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_address_that_is_not_this_machines_stops_start_up_with_exit_code_1_and_one_line_that_says_so()
    {
        // 192.0.2.1 is reserved for documentation (RFC 5737): no machine has it.
        var (exitCode, said) = await RunAppToExitAsync("http://192.0.2.1:7799");

        Assert.Equal(1, exitCode);
        Assert.Contains("cf-orch cannot start: it cannot listen on http://192.0.2.1:7799: ", said, StringComparison.Ordinal);
        Assert.Contains("No network interface of this machine has that address", said, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_address_stops_start_up_instead_of_listening_on_every_address_at_port_80()
    {
        var (exitCode, said) = await RunAppToExitAsync("http://127.0.0.1:7700;http://127.0.0.1:notaport");

        Assert.Equal(1, exitCode);
        Assert.Contains("cf-orch cannot start: the Urls setting 'http://127.0.0.1:notaport' is not an address to listen on: its port 'notaport' is not a number from 0 to 65535", said, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening on", said, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://*:7700")]
    [InlineData("http://+:7700")]
    [InlineData("http://0.0.0.0:7700")]
    [InlineData("http://[::]:7700/")]
    [InlineData("https://gpu-box.lan:7443")]
    [InlineData("http://localhost")]
    [InlineData("http://127.0.0.1:0; http://[::1]:7700")]
    [InlineData("http://unix:/run/cf-orch.sock")]
    [InlineData(null)]
    public void Addresses_kestrel_can_listen_on_pass_the_check(string? urls) => Assert.Null(ListenAddresses.Problem(urls));

    [Theory]
    [InlineData("127.0.0.1:7700", "'127.0.0.1:7700' is not an address to listen on: write it as http://HOST:PORT")]
    [InlineData("ftp://0.0.0.0:7700", "'ftp://0.0.0.0:7700' is not an address to listen on")]
    [InlineData("http://0.0.0.0:77000", "its port '77000' is not a number from 0 to 65535")]
    [InlineData("http://0.0.0.0:", "its port '' is not a number from 0 to 65535")]
    [InlineData("http://0.0.0.0:7700/cf-orch", "'http://0.0.0.0:7700/cf-orch' is not an address to listen on")]
    public void Addresses_kestrel_would_misread_are_refused_naming_them(string urls, string expected) =>
        Assert.Contains(expected, ListenAddresses.Problem(urls), StringComparison.Ordinal);

    /// <summary>Runs the real app, as the README does, told to listen on <paramref name="urls"/>, until it exits; its exit code and output.</summary>
    private static async Task<(int ExitCode, string Output)> RunAppToExitAsync(string urls)
    {
        using var data = new TempDir();
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CfOrch.Web.dll"), "--urls", urls]);
        start.Environment["CfOrch__DataDir"] = data.Path;
        start.Environment["CfOrch__Gpus__Mode"] = "none";
        var (exitCode, stdout, stderr) = await ChildRun.ToExitAsync(start, Timeout, TestContext.Current.CancellationToken);
        return (exitCode, stdout + stderr);
    }

    [Fact]
    public void The_agent_command_becomes_configuration_keys_and_other_arguments_pass_through()
    {
        Assert.Equal(
            ["--CfOrch:Role=agent", "--CfOrch:Agent:Coordinator=http://coord:7700", "--CfOrch:Agent:AdvertiseUrl=http://me:7701", "--urls", "http://*:7701"],
            CfOrch.Web.Hosting.Commands.Translate(["agent", "--coordinator", "http://coord:7700", "--advertise", "http://me:7701", "--urls", "http://*:7701"]));
        Assert.Equal(["--urls", "x"], CfOrch.Web.Hosting.Commands.Translate(["--urls", "x"]));
    }
}
