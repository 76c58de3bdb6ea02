using System.Globalization;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Configuration;

/// <summary>Checks the <c>CfOrch</c> section at start-up; every failure names its configuration key.</summary>
public sealed class CfOrchOptionsValidator : IValidateOptions<CfOrchOptions>
{
    public const long MaxGpuMb = 1024 * 1024;

    private static bool IsHttpUrl(string? value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";

    public ValidateOptionsResult Validate(string? name, CfOrchOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>(options.BindErrors());
        const string S = CfOrchOptions.SectionName;

        if (!Names.IsValid(options.NodeId ?? ""))
        {
            errors.Add($"{S}:NodeId: '{options.NodeId}' is not a valid node id (letters, digits, '.', '_' and '-', at most 64).");
        }

        if (string.IsNullOrWhiteSpace(options.DataDir))
        {
            errors.Add($"{S}:DataDir must not be empty.");
        }
        else if (options.DataDir.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            errors.Add($"{S}:DataDir: '{options.DataDir}' is not a valid path.");
        }

        if (!string.IsNullOrWhiteSpace(options.AdvertiseHost) && Uri.CheckHostName(options.AdvertiseHost) == UriHostNameType.Unknown)
        {
            errors.Add($"{S}:AdvertiseHost: '{options.AdvertiseHost}' is not a host name or IP address (no scheme, no port, no path).");
        }

        var gpus = options.Gpus ?? new GpuOptions();
        var mode = gpus.ParsedMode();
        if (mode == GpuMode.Invalid)
        {
            errors.Add($"{S}:Gpus:Mode: '{gpus.Mode}' is not one of auto, nvml, simulated, none.");
        }

        if (mode == GpuMode.Simulated && gpus.Simulated.Count == 0)
        {
            errors.Add($"{S}:Gpus:Simulated: Mode is 'simulated' but no GPU is configured (set {S}:Gpus:Simulated:0:Name and {S}:Gpus:Simulated:0:TotalMb).");
        }

        if (gpus.ReserveMb < 0 || gpus.ReserveMb > MaxGpuMb)
        {
            errors.Add($"{S}:Gpus:ReserveMb must be between 0 and {MaxGpuMb} (got {gpus.ReserveMb}).");
        }

        Range(errors, $"{S}:Gpus:PollIntervalSeconds", gpus.PollIntervalSeconds, 0.1, 3600);

        if (!string.Equals(options.Role, CfOrchOptions.RoleCoordinator, StringComparison.OrdinalIgnoreCase) && !options.IsAgent)
        {
            errors.Add($"{S}:Role: '{options.Role}' is not one of coordinator, agent.");
        }

        var agent = options.Agent ?? new AgentOptions();
        if (options.IsAgent && !IsHttpUrl(agent.Coordinator))
        {
            errors.Add($"{S}:Agent:Coordinator: an agent needs its coordinator's URL (http://host:7700; got '{agent.Coordinator}'); on the command line: agent --coordinator http://host:7700.");
        }

        if (!string.IsNullOrWhiteSpace(agent.AdvertiseUrl) && !IsHttpUrl(agent.AdvertiseUrl))
        {
            errors.Add($"{S}:Agent:AdvertiseUrl: '{agent.AdvertiseUrl}' is not an http:// or https:// URL.");
        }

        Range(errors, $"{S}:Agent:RegisterSeconds", agent.RegisterSeconds, 1, 3600);

        var cluster = options.Cluster ?? new ClusterOptions();
        Range(errors, $"{S}:Cluster:PollSeconds", cluster.PollSeconds, 1, 3600);
        if (cluster.Token is { } clusterToken && clusterToken.Trim().Length < ClusterOptions.MinTokenLength)
        {
            errors.Add($"{S}:Cluster:Token must be at least {ClusterOptions.MinTokenLength} characters (a shared secret; generate one with: openssl rand -hex 24).");
        }

        var docker = options.Docker ?? new DockerOptions();
        Range(errors, $"{S}:Docker:RetrySeconds", docker.RetrySeconds, 0.1, 3600);

        // Only the key itself stops the start: a DOCKER_HOST cf-orch cannot use leaves containers unstartable, with why.
        if (!string.IsNullOrWhiteSpace(docker.Endpoint) && DockerOptions.EndpointProblem(docker.Endpoint) is { } problem)
        {
            errors.Add($"{S}:Docker:Endpoint: {problem}");
        }

        for (var i = 0; i < gpus.Simulated.Count; i++)
        {
            var g = gpus.Simulated[i];
            var key = $"{S}:Gpus:Simulated:{i}";
            if (string.IsNullOrWhiteSpace(g.Name))
            {
                errors.Add($"{key}:Name must not be empty.");
            }

            if (g.TotalMb <= 0 || g.TotalMb > MaxGpuMb)
            {
                errors.Add($"{key}:TotalMb must be between 1 and {MaxGpuMb} MB (got {g.TotalMb}).");
            }
            else if (g.UsedMb < 0 || g.UsedMb > g.TotalMb)
            {
                errors.Add($"{key}:UsedMb must be between 0 and TotalMb ({g.TotalMb}) (got {g.UsedMb}).");
            }

            if (g.TemperatureC is < -50 or > 150)
            {
                errors.Add($"{key}:TemperatureC must be between -50 and 150 (got {g.TemperatureC}).");
            }

            if (g.UtilizationPercent is < 0 or > 100)
            {
                errors.Add($"{key}:UtilizationPercent must be between 0 and 100 (got {g.UtilizationPercent}).");
            }
        }

        var probes = options.Probes ?? new ProbeOptions();
        Range(errors, $"{S}:Probes:IntervalSeconds", probes.IntervalSeconds, 0.1, 3600);
        Range(errors, $"{S}:Probes:TimeoutSeconds", probes.TimeoutSeconds, 0.05, 300);
        Range(errors, $"{S}:Probes:StartTimeoutSeconds", probes.StartTimeoutSeconds, 1, 24 * 3600);
        Range(errors, $"{S}:Probes:UnhealthyAfter", probes.UnhealthyAfter, 1, 1000);
        var adoption = options.Adoption ?? new AdoptionOptions();
        Range(errors, $"{S}:Adoption:IntervalSeconds", adoption.IntervalSeconds, 0.1, 3600);
        Range(errors, $"{S}:Adoption:TimeoutSeconds", adoption.TimeoutSeconds, 0.05, 60);
        Range(errors, $"{S}:Adoption:LostAfter", adoption.LostAfter, 1, 1000);
        Range(errors, $"{S}:Ollama:IdleModelSeconds", (options.Ollama ?? new OllamaOptions()).IdleModelSeconds, 0, 86400);
        var history = options.History ?? new HistoryOptions();
        Range(errors, $"{S}:History:LeaseEventRetentionDays", history.LeaseEventRetentionDays, 1, 36500);
        Range(errors, $"{S}:History:SampleRetentionDays", history.SampleRetentionDays, 1, 36500);

        var auth = options.Auth ?? new AuthOptions();
        if (!string.IsNullOrEmpty(auth.AdminPassword) && !string.IsNullOrEmpty(auth.AdminPasswordHash))
        {
            errors.Add($"{S}:Auth: set AdminPassword or AdminPasswordHash, not both.");
        }

        if (!string.IsNullOrEmpty(auth.AdminPassword) && auth.AdminPassword.Length < 8)
        {
            errors.Add($"{S}:Auth:AdminPassword must have at least 8 characters.");
        }

        if (!string.IsNullOrEmpty(auth.AdminPasswordHash) && !PasswordHash.IsWellFormed(auth.AdminPasswordHash))
        {
            errors.Add($"{S}:Auth:AdminPasswordHash is not a hash made by 'hash-password' (pbkdf2-sha256$iterations$salt$hash).");
        }

        for (var i = 0; i < auth.ApiTokens.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(auth.ApiTokens[i]) || auth.ApiTokens[i].Length < 16)
            {
                errors.Add($"{S}:Auth:ApiTokens:{i} must have at least 16 characters.");
            }
        }

        ValidateTrust(errors, auth);
        var api = options.Api ?? new ApiOptions();
        Range(errors, $"{S}:Api:MaxStreams", api.MaxStreams, 2, 10_000);
        Range(errors, $"{S}:Api:MaxStreamsPerAddress", api.MaxStreamsPerAddress, 1, 10_000);

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateTrust(List<string> errors, AuthOptions auth)
    {
        const string A = CfOrchOptions.SectionName + ":Auth";
        for (var i = 0; i < auth.AllowedHosts.Count; i++)
        {
            var host = auth.AllowedHosts[i];
            if (string.IsNullOrWhiteSpace(host) || Uri.CheckHostName(host.Trim('[', ']')) == UriHostNameType.Unknown)
            {
                errors.Add($"{A}:AllowedHosts:{i}: '{host}' is not a host name or IP address (no scheme, no port).");
            }
        }

        for (var i = 0; i < auth.AllowedOrigins.Count; i++)
        {
            if (!Origins.TryNormalize(auth.AllowedOrigins[i], out _))
            {
                errors.Add($"{A}:AllowedOrigins:{i}: '{auth.AllowedOrigins[i]}' is not an origin (scheme://host or scheme://host:port, http or https, no path).");
            }
        }

        foreach (var (key, list) in new[] { ("TrustedProxies", auth.TrustedProxies), ("TrustedNetworks", auth.TrustedNetworks) })
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (!Networks.TryParse(list[i], out _))
                {
                    errors.Add($"{A}:{key}:{i}: '{list[i]}' is not an IP address or a CIDR network (192.168.1.0/24, fd00::/8).");
                }
            }
        }
    }

    private static void Range(List<string> errors, string key, double value, double min, double max)
    {
        if (!double.IsFinite(value) || value < min || value > max)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{key} must be between {min} and {max} (got {value})."));
        }
    }
}
