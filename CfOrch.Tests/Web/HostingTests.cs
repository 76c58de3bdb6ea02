using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CfOrch.Web.Data;
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
        using var data = new TempDir();
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;

        // The real app, as the README runs it, told to listen where something already does.
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "CfOrch.Web.dll"), "--urls", $"http://127.0.0.1:{port}" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CfOrch__DataDir"] = data.Path;
        start.Environment["CfOrch__Gpus__Mode"] = "none";
        using var app = System.Diagnostics.Process.Start(start)!;
        var output = app.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = app.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await app.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(1, app.ExitCode);
        var said = await output + await errors;
        Assert.Contains($"cf-orch cannot start: Failed to bind to address http://127.0.0.1:{port}: address already in use. Port {port} is held by PID {Environment.ProcessId} (", said, StringComparison.Ordinal);
        Assert.Contains("choose another address with --urls", said, StringComparison.Ordinal);
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
