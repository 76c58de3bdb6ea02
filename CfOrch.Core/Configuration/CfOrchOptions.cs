using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace CfOrch.Core.Configuration;

/// <summary>The <c>CfOrch</c> configuration section (appsettings, <c>CfOrch__*</c> environment variables, command line).</summary>
public sealed class CfOrchOptions
{
    public const string SectionName = "CfOrch";

    private readonly List<string> _bindErrors = [];

    /// <summary>This machine's node id in the API and the dashboard.</summary>
    public string NodeId { get; set; } = "local";

    /// <summary>A profile YAML file path, or the name of a shipped or user profile. Empty: auto-detect from GPU 0.</summary>
    public string? Profile { get; set; }

    /// <summary>Directory of user profiles (*.yaml). Default: <c>{DataDir}/profiles</c>.</summary>
    public string? ProfilesDir { get; set; }

    /// <summary>Directory of the SQLite database and user state. Relative paths are resolved against the current directory.</summary>
    public string DataDir { get; set; } = "data";

    /// <summary>Host name or IP put into the service URLs handed to clients on the LAN. Empty: each service's own host.</summary>
    public string? AdvertiseHost { get; set; }

    public GpuOptions Gpus { get; set; } = new();

    public ProbeOptions Probes { get; set; } = new();

    public AdoptionOptions Adoption { get; set; } = new();

    public OllamaOptions Ollama { get; set; } = new();

    public HistoryOptions History { get; set; } = new();

    public AuthOptions Auth { get; set; } = new();

    public ApiOptions Api { get; set; } = new();

    public DockerOptions Docker { get; set; } = new();

    public ClusterOptions Cluster { get; set; } = new();

    /// <summary><c>coordinator</c> (the dashboard and the API; default) or <c>agent</c> (the agent protocol for a coordinator elsewhere).</summary>
    public string Role { get; set; } = RoleCoordinator;

    public const string RoleCoordinator = "coordinator";
    public const string RoleAgent = "agent";

    public AgentOptions Agent { get; set; } = new();

    public bool IsAgent => string.Equals(Role, RoleAgent, StringComparison.OrdinalIgnoreCase);

    /// <summary>Values that could not be converted while binding (for example <c>TotalMb=abc</c>), each naming its key.</summary>
    public IReadOnlyList<string> BindErrors() => _bindErrors;

    public string ResolvedDataDir() => Path.GetFullPath(DataDir);

    public string ResolvedProfilesDir() =>
        string.IsNullOrWhiteSpace(ProfilesDir) ? Path.Combine(ResolvedDataDir(), "profiles") : Path.GetFullPath(ProfilesDir);

    /// <summary>Binds the section, turning conversion failures into validation errors instead of exceptions.</summary>
    public static void Bind(IConfiguration section, CfOrchOptions options)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            // The binder's message names the key: "Failed to convert configuration value 'abc' at 'CfOrch:Gpus:...' to type ...".
            options._bindErrors.Add(ex.Message);
        }

        // The binder drops a list element it cannot convert instead of failing: check simulated GPUs key by key.
        var simulated = section.GetSection("Gpus:Simulated").GetChildren().ToList();
        for (var i = 0; i < simulated.Count; i++)
        {
            var gpu = simulated[i];
            var key = $"{SectionName}:Gpus:Simulated:{gpu.Key}";
            if (gpu.Key != i.ToString(CultureInfo.InvariantCulture))
            {
                options._bindErrors.Add($"{SectionName}:Gpus:Simulated: GPUs must be numbered 0, 1, 2… without gaps (found '{gpu.Key}' where {i} was expected).");
                break;
            }

            foreach (var field in new[] { nameof(SimulatedGpuOptions.TotalMb), nameof(SimulatedGpuOptions.UsedMb), nameof(SimulatedGpuOptions.TemperatureC), nameof(SimulatedGpuOptions.UtilizationPercent) })
            {
                var value = gpu[field];
                if (value is not null && !long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
                {
                    options._bindErrors.Add($"{key}:{field}: '{value}' is not a whole number.");
                }
            }
        }
    }
}

/// <summary>The <c>CfOrch:Gpus</c> section.</summary>
public sealed class GpuOptions
{
    /// <summary><c>auto</c> (NVML when it loads, else the simulated GPUs if any are configured, else none), <c>nvml</c>, <c>simulated</c> or <c>none</c>.</summary>
    public string Mode { get; set; } = "auto";

    /// <summary>Simulated GPUs, by index: <c>CfOrch:Gpus:Simulated:0:Name</c>, <c>:TotalMb</c>, …</summary>
    public List<SimulatedGpuOptions> Simulated { get; set; } = [];

    /// <summary>VRAM per GPU that cf-orch never leases (driver, desktop, headroom).</summary>
    public long ReserveMb { get; set; }

    /// <summary>How often the GPU inventory is read.</summary>
    public double PollIntervalSeconds { get; set; } = 2;

    public GpuMode ParsedMode() => Enum.TryParse<GpuMode>(Mode, ignoreCase: true, out var mode) && Enum.IsDefined(mode) ? mode : GpuMode.Invalid;
}

public enum GpuMode
{
    Invalid,
    Auto,
    Nvml,
    Simulated,
    None,
}

/// <summary>One simulated GPU: <c>CfOrch:Gpus:Simulated:N</c>.</summary>
public sealed class SimulatedGpuOptions
{
    public string Name { get; set; } = "Simulated GPU";

    public long TotalMb { get; set; }

    /// <summary>Memory already in use by programs outside cf-orch when the app starts.</summary>
    public long UsedMb { get; set; }

    public int? TemperatureC { get; set; }

    public int? UtilizationPercent { get; set; }
}

/// <summary>The <c>CfOrch:Probes</c> section: health probes of running and starting instances.</summary>
public sealed class ProbeOptions
{
    /// <summary>Seconds between probes of a running instance.</summary>
    public double IntervalSeconds { get; set; } = 2;

    /// <summary>Seconds a probe may take before it counts as failed.</summary>
    public double TimeoutSeconds { get; set; } = 2;

    /// <summary>Seconds a starting instance has to answer its health path before it is failed.</summary>
    public double StartTimeoutSeconds { get; set; } = 120;

    /// <summary>Consecutive failed probes that make a running managed instance unhealthy.</summary>
    public int UnhealthyAfter { get; set; } = 3;
}

/// <summary>The <c>CfOrch:Adoption</c> section: finding services that already run outside cf-orch.</summary>
public sealed class AdoptionOptions
{
    /// <summary>Seconds between adoption checks (a refused loopback connection costs microseconds).</summary>
    public double IntervalSeconds { get; set; } = 0.5;

    /// <summary>Seconds an adoption probe may take.</summary>
    public double TimeoutSeconds { get; set; } = 1;

    /// <summary>Consecutive failed probes after which an adopted service counts as stopped and its lease is released.</summary>
    public int LostAfter { get; set; } = 2;
}

/// <summary>The <c>CfOrch:Ollama</c> section: how cf-orch treats the models an Ollama has loaded.</summary>
public sealed class OllamaOptions
{
    /// <summary>
    /// Seconds a loaded model's <c>expires_at</c> must stay unmoved (Ollama pushes it on every request) before the
    /// model counts as idle — unloaded when a more important lease needs its memory, unless an allocation names it.
    /// </summary>
    public double IdleModelSeconds { get; set; } = 60;
}

/// <summary>The <c>CfOrch:Docker</c> section: the engine that runs <c>type: docker</c> services.</summary>
public sealed class DockerOptions
{
    public const string DefaultEndpoint = "unix:///var/run/docker.sock";

    /// <summary>The Docker Engine API: <c>unix:///path</c> or <c>tcp://host:port</c>; default <c>DOCKER_HOST</c>, else the local socket.</summary>
    public string? Endpoint { get; set; }

    /// <summary>Seconds between attempts to reach an engine that does not answer (it is picked up again without a restart).</summary>
    public double RetrySeconds { get; set; } = 5;

    /// <summary>The endpoint in use: <see cref="Endpoint"/>, else <c>DOCKER_HOST</c>, else <see cref="DefaultEndpoint"/>.</summary>
    public string ResolvedEndpoint() =>
        !string.IsNullOrWhiteSpace(Endpoint) ? Endpoint.Trim()
        : Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } fromEnvironment ? fromEnvironment.Trim()
        : DefaultEndpoint;

    /// <summary>Why <paramref name="endpoint"/> is not a Docker endpoint cf-orch can use, or null.</summary>
    public static string? EndpointProblem(string endpoint) =>
        Uri.TryCreate(endpoint?.Trim(), UriKind.Absolute, out var uri) && uri.Scheme is "unix" or "tcp" or "http" or "https"
            ? null
            : $"'{endpoint}' is not a Docker endpoint (for example unix:///var/run/docker.sock or tcp://127.0.0.1:2375).";
}

/// <summary>The <c>CfOrch:Cluster</c> section: cf-orch agents on other machines (the coordinator's side).</summary>
public sealed class ClusterOptions
{
    public const int MinTokenLength = 16;

    /// <summary>Seconds between polls of each registered agent's <c>/gpu-info</c> and <c>/resident-info</c>; two missed polls make it offline.</summary>
    public double PollSeconds { get; set; } = 10;

    /// <summary>
    /// The secret the nodes share: agents send it as a bearer token when they register (it lets them register, nothing
    /// else), and the coordinator sends it on every call to an agent.
    /// </summary>
    public string? Token { get; set; }
}

/// <summary>The <c>CfOrch:Agent</c> section: this node as an agent of a coordinator elsewhere (<c>CfOrch:Role=agent</c>).</summary>
public sealed class AgentOptions
{
    /// <summary>The coordinator to register with (<c>http://host:7700</c>).</summary>
    public string? Coordinator { get; set; }

    /// <summary>Where the coordinator reaches this agent; default <c>http://{AdvertiseHost or this machine's name}:{port}</c>.</summary>
    public string? AdvertiseUrl { get; set; }

    /// <summary>Seconds between registrations (the original agent registers again every 30 s).</summary>
    public double RegisterSeconds { get; set; } = 30;
}

/// <summary>The <c>CfOrch:History</c> section: how long SQLite keeps lease history and GPU samples.</summary>
public sealed class HistoryOptions
{
    public int LeaseEventRetentionDays { get; set; } = 90;

    public int SampleRetentionDays { get; set; } = 14;
}

/// <summary>
/// The <c>CfOrch:Auth</c> section. With nothing set, this machine (loopback) has full control and the LAN can only
/// look. With a password or API tokens, control needs a sign-in (cookie) or a bearer token from anywhere.
/// </summary>
public sealed class AuthOptions
{
    /// <summary>The admin password LAN users sign in with (prefer <see cref="AdminPasswordHash"/>).</summary>
    public string? AdminPassword { get; set; }

    /// <summary>A PBKDF2 hash of the admin password, as <c>dotnet CfOrch.Web.dll hash-password</c> prints it.</summary>
    public string? AdminPasswordHash { get; set; }

    /// <summary>Bearer tokens for API clients (<c>Authorization: Bearer …</c>, the Python client's CF_LICENSE_KEY).</summary>
    public List<string> ApiTokens { get; set; } = [];

    /// <summary>Read endpoints and pages need a sign-in too (from other machines).</summary>
    public bool ReadRequiresLogin { get; set; }

    /// <summary>Keep full control from loopback even when a password or tokens are set (only if no reverse proxy runs on this machine).</summary>
    public bool LoopbackAlwaysControls { get; set; }

    /// <summary>
    /// Host names (without port) that count as this machine: a request from loopback whose <c>Host</c> is one of them (or
    /// <c>localhost</c>, <c>127.x.x.x</c>, <c>[::1]</c>) gets loopback rights. Any other name from loopback (a DNS-rebinding
    /// page) is treated like a LAN visitor.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>Origins (<c>scheme://host[:port]</c>) of other web pages that may send writes to cf-orch from a browser.</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// Reverse proxies (IP addresses or CIDRs) whose <c>X-Forwarded-For</c>, <c>-Proto</c> and <c>-Host</c> are honoured.
    /// A forwarded request never gets loopback rights: it needs credentials.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>Networks (CIDRs) whose machines may control cf-orch without credentials. Empty by default: opt-in.</summary>
    public List<string> TrustedNetworks { get; set; } = [];

    public bool CredentialsConfigured =>
        !string.IsNullOrEmpty(AdminPassword) || !string.IsNullOrEmpty(AdminPasswordHash) || ApiTokens.Count > 0;
}

/// <summary>The <c>CfOrch:Api</c> section.</summary>
public sealed class ApiOptions
{
    /// <summary>Open server-sent event streams (<c>/api/events</c>, log streams) at once; the next one is refused with 429.</summary>
    public int MaxStreams { get; set; } = 64;

    /// <summary>Open event streams from one address at once.</summary>
    public int MaxStreamsPerAddress { get; set; } = 8;
}
