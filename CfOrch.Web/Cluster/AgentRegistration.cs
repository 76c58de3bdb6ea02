using System.Net;
using CfOrch.Core.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Cluster;

/// <summary>
/// An agent (<c>CfOrch:Role=agent</c>) registers with its coordinator (<c>POST {coordinator}/api/nodes</c>, with the
/// cluster token when one is set) as soon as it listens and again every <c>CfOrch:Agent:RegisterSeconds</c>, as the
/// original agent does; a coordinator that is away only delays it (the agent's services keep running). It also knows
/// the coordinator's addresses, from which — without a cluster token — control is accepted.
/// </summary>
public sealed partial class AgentRegistration(
    AgentClient agents,
    IOptions<CfOrchOptions> options,
    IServer server,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AgentRegistration> logger) : BackgroundService
{
    private volatile HashSet<IPAddress> _coordinatorAddresses = [];
    private volatile string _status = "not registered yet";

    /// <summary>The last registration, in words (for the agent's status page).</summary>
    public string Status => _status;

    /// <summary>Where the coordinator was last resolved to (its requests may control this agent when no token is set).</summary>
    public bool IsCoordinator(IPAddress? remote) =>
        remote is not null && _coordinatorAddresses.Contains(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.IsAgent || !Uri.TryCreate(settings.Agent.Coordinator, UriKind.Absolute, out var coordinator))
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(settings.Cluster.Token))
        {
            LogNoToken(coordinator.Host);
        }

        // The URL the coordinator reaches this agent at is known once the server listens.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
        {
            try
            {
                await started.Task;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var advertised = AdvertiseUrl(settings);
        var lastOk = (bool?)null;
        while (!stoppingToken.IsCancellationRequested)
        {
            await ResolveCoordinatorAsync(coordinator, stoppingToken);
            var problem = await RegisterAsync(coordinator, settings.NodeId, advertised, stoppingToken);
            var ok = problem is null;
            _status = ok
                ? $"registered as {advertised} at {time.GetUtcNow():HH:mm:ss} UTC"
                : $"not registered ({problem}); trying again every {settings.Agent.RegisterSeconds:0.#} s";
            if (ok != lastOk)
            {
                if (ok)
                {
                    LogRegistered(coordinator, settings.NodeId, advertised);
                }
                else
                {
                    LogNotRegistered(coordinator, problem ?? "");
                }

                lastOk = ok;
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(settings.Agent.RegisterSeconds), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<string?> RegisterAsync(Uri coordinator, string nodeId, string advertised, CancellationToken cancellationToken)
    {
        try
        {
            await agents.PostAsync<System.Text.Json.JsonElement>(new Uri(coordinator, "api/nodes"), new { node_id = nodeId, agent_url = advertised }, RegisterTimeout, cancellationToken);
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException)
        {
            return ex.Message;
        }
    }

    private static readonly TimeSpan RegisterTimeout = TimeSpan.FromSeconds(10);

    private async Task ResolveCoordinatorAsync(Uri coordinator, CancellationToken cancellationToken)
    {
        try
        {
            var addresses = IPAddress.TryParse(coordinator.Host.Trim('[', ']'), out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(coordinator.Host, cancellationToken);
            _coordinatorAddresses = addresses.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).ToHashSet();
        }
        catch (System.Net.Sockets.SocketException)
        {
            // Not resolvable now: the addresses from before stay.
        }
    }

    /// <summary><c>CfOrch:Agent:AdvertiseUrl</c>, else the address it listens on with a wildcard host replaced by AdvertiseHost or this machine's name.</summary>
    private string AdvertiseUrl(CfOrchOptions settings)
    {
        if (!string.IsNullOrWhiteSpace(settings.Agent.AdvertiseUrl))
        {
            return settings.Agent.AdvertiseUrl.TrimEnd('/');
        }

        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://localhost:7700";
        var uri = new Uri(address.Replace("://*", "://wildcard", StringComparison.Ordinal).Replace("://+", "://wildcard", StringComparison.Ordinal));
        var host = uri.Host is "wildcard" or "0.0.0.0" or "[::]" or "::"
            ? settings.AdvertiseHost is { Length: > 0 } advertiseHost ? advertiseHost : Dns.GetHostName()
            : uri.Host;
        return $"{uri.Scheme}://{host}:{uri.Port}";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "CfOrch:Cluster:Token is not set: anything that connects from the coordinator's address ({Coordinator}) may start, stop and evict services on this agent; set the same token (16 characters or more) on the coordinator and on every agent")]
    private partial void LogNoToken(string coordinator);

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered with the coordinator at {Coordinator} as node {NodeId} ({AgentUrl})")]
    private partial void LogRegistered(Uri coordinator, string nodeId, string agentUrl);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not register with the coordinator at {Coordinator}: {Problem}; this node's services keep running")]
    private partial void LogNotRegistered(Uri coordinator, string problem);
}
