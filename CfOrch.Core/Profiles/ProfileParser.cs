using CfOrch.Core.Configuration;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Parses and validates profile YAML (schema_version 1). Every problem is collected with its file, line, column
/// and key path; a profile with any error is rejected whole.
/// </summary>
public static partial class ProfileParser
{
    /// <summary>
    /// The largest profile, in bytes of UTF-8: a file, a request body (a larger one is answered 413). Real profiles
    /// are a few KiB; 256 KiB keeps the worst document of this size cheap to refuse (see docs/BENCHMARKS.md).
    /// </summary>
    public const int MaxFileBytes = 256 * 1024;
    /// <summary>The largest budget or VRAM size a profile may give: the largest GPU cf-orch accepts.</summary>
    public const long MaxBudgetMb = CfOrchOptionsValidator.MaxGpuMb;

    private static readonly string[] Placeholders = ["port", "gpu_id", "model"];

    public static GpuProfile Parse(string yaml, string file)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(file);
        if (YamlLimits.CheckSize(yaml, file) is { } tooLarge)
        {
            throw new ProfileException([tooLarge]);
        }

        var errors = new YamlErrors(file);
        var stream = new YamlStream();
        var parser = new LimitedParser(yaml, file);
        try
        {
            // A limit crossed while loading throws a ProfileException from the parser, before the expensive part.
            stream.Load(parser);
        }
        catch (YamlException ex)
        {
            errors.Add(ex.Start, "", $"YAML syntax error: {SyntaxMessage(ex)}");
            throw new ProfileException(errors.All);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet throws these on some malformed streams (e.g. "...\n&a "): still a syntax error, not a crash.
            errors.Add(parser.Current?.Start ?? Mark.Empty, "", $"YAML syntax error: {ex.Message}");
            throw new ProfileException(errors.All);
        }

        if (stream.Documents.Count == 0)
        {
            errors.Add(Mark.Empty, "", "the file is empty; a profile is a mapping with schema_version, name and services");
            throw new ProfileException(errors.All);
        }

        if (stream.Documents.Count > 1)
        {
            errors.Add(stream.Documents[1].RootNode.Start, "", "the file holds more than one YAML document; a profile is one document");
            throw new ProfileException(errors.All);
        }

        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            errors.Add(stream.Documents[0].RootNode, "", "a profile must be a YAML mapping with schema_version, name and services");
            throw new ProfileException(errors.All);
        }

        var profile = ReadProfile(new YamlMapReader(root, "", errors));
        if (errors.Any || profile is null)
        {
            throw new ProfileException(errors.All);
        }

        return profile;
    }

    /// <summary>Names usable as profile, service and node names: no path separators, no spaces.</summary>
    public static bool IsValidName(string name) => Names.IsValid(name);

    private static GpuProfile? ReadProfile(YamlMapReader r)
    {
        var version = r.Integer("schema_version", int.MinValue, int.MaxValue, required: true);
        if (version is null)
        {
            return null;
        }

        if (version != GpuProfile.SupportedSchemaVersion)
        {
            r.Error("schema_version", $"unsupported schema_version {version}; this cf-orch reads schema_version {GpuProfile.SupportedSchemaVersion}");
            return null;
        }

        var name = r.String("name", required: true);
        if (name is not null && !IsValidName(name))
        {
            r.Error("name", $"'{name}' is not a valid profile name (letters, digits, '.', '_' and '-'; starting with a letter or digit)");
        }

        var vramTotal = r.Integer("vram_total_mb", 1, MaxBudgetMb);
        var evictionTimeout = r.Number("eviction_timeout_s", 0, 3600) ?? 10.0;
        var services = ReadServices(r, vramTotal);
        var hints = r.StringMap("model_size_hints");
        var nodes = ReadNodes(r);
        r.RejectUnknownKeys();

        return name is null
            ? null
            : new GpuProfile
            {
                SchemaVersion = (int)version,
                Name = name,
                VramTotalMb = vramTotal,
                EvictionTimeoutS = evictionTimeout,
                Services = services,
                ModelSizeHints = hints,
                Nodes = nodes,
            };
    }

    private static Dictionary<string, ServiceProfile> ReadServices(YamlMapReader r, long? vramTotal)
    {
        var result = new Dictionary<string, ServiceProfile>(StringComparer.Ordinal);
        var services = r.Map("services");
        if (services is null)
        {
            return result;
        }

        var endpoints = new Dictionary<(string Host, int Port), string>();
        foreach (var name in services.Keys.ToList())
        {
            var s = services.Map(name);
            if (s is null)
            {
                if (!services.Has(name))
                {
                    services.Error(name, "a service needs at least max_mb and priority");
                }

                continue;
            }

            if (!IsValidName(name))
            {
                services.Error(name, $"'{name}' is not a valid service name (letters, digits, '.', '_' and '-')");
            }

            var service = ReadService(s, name, vramTotal);
            if (service is null)
            {
                continue;
            }

            result[name] = service;
            if (service.Managed is { EffectivePort: > 0 } managed)
            {
                var endpoint = (managed.Host, managed.EffectivePort);
                if (endpoints.TryGetValue(endpoint, out var other))
                {
                    s.Error("managed", $"{managed.Host}:{managed.EffectivePort} is also the address of service '{other}'; two services cannot answer on one port");
                }
                else
                {
                    endpoints[endpoint] = name;
                }
            }
        }

        return result;
    }

    private static ServiceProfile? ReadService(YamlMapReader s, string name, long? vramTotal)
    {
        var maxMb = s.Integer("max_mb", 0, MaxBudgetMb, required: true);
        if (maxMb is not null && vramTotal is not null && maxMb > vramTotal)
        {
            s.Error("max_mb", $"{maxMb} MB is more than the profile's vram_total_mb ({vramTotal} MB)");
        }

        var priority = s.Integer("priority", 0, 1000, required: true);
        var service = new ServiceProfile
        {
            Name = name,
            MaxMb = maxMb ?? 0,
            Priority = (int)(priority ?? 0),
            Shared = s.Bool("shared") ?? false,
            MaxConcurrent = (int)(s.Integer("max_concurrent", 1, 10_000) ?? 1),
            AlwaysOn = s.Bool("always_on") ?? false,
            IdleStopAfterS = s.Number("idle_stop_after_s", 0, 365 * 24 * 3600) ?? 0,
            Backend = s.String("backend"),
            Consumers = s.StringList("consumers"),
            Gpus = s.IntList("gpus", 0, 63),
            Managed = ReadManaged(s),
        };
        s.RejectUnknownKeys();
        return maxMb is null || priority is null ? null : service;
    }

    private static ManagedSpec? ReadManaged(YamlMapReader s)
    {
        var m = s.Map("managed");
        if (m is null)
        {
            return null;
        }

        var type = m.String("type", required: true);
        ManagedSpec? spec = type switch
        {
            null => null,
            ProcessSpec.TypeName => ReadProcess(m),
            DockerSpec.TypeName => ReadDocker(m),
            _ => null,
        };
        if (type is not null && spec is null)
        {
            m.Error("type", $"unknown managed type '{type}' (expected '{ProcessSpec.TypeName}' or '{DockerSpec.TypeName}')");
            return null;
        }

        if (spec is null)
        {
            return null;
        }

        spec = spec with
        {
            Adopt = m.Bool("adopt") ?? false,
            HealthPath = m.NonEmptyString("health_path", ManagedSpec.DefaultHealthPath),
            Host = m.NonEmptyString("host", ManagedSpec.DefaultHost),
            Env = m.StringMap("env"),
        };
        if (!spec.HealthPath.StartsWith('/') || spec.HealthPath.Contains("://", StringComparison.Ordinal))
        {
            m.Error("health_path", $"'{spec.HealthPath}' must be a path that starts with '/' (for example /health)");
        }

        if (Uri.CheckHostName(spec.Host) == UriHostNameType.Unknown)
        {
            m.Error("host", $"'{spec.Host}' is not a host name or IP address");
        }

        foreach (var key in spec.Env.Keys)
        {
            if (!EnvNameRegex().IsMatch(key))
            {
                m.Error("env", $"'{key}' is not a valid environment variable name");
            }
        }

        if (spec.Adopt && spec.EffectivePort == 0)
        {
            m.Error("adopt", "adopt: true needs a port (or host_port) to probe");
        }

        m.RejectUnknownKeys();
        return spec;
    }

    private static ProcessSpec? ReadProcess(YamlMapReader m)
    {
        var execPath = m.String("exec_path", required: true);
        if (execPath is not null && string.IsNullOrWhiteSpace(execPath))
        {
            m.Error("exec_path", "must not be empty");
        }

        var args = m.String("args_template") ?? "";
        CheckPlaceholders(m, "args_template", args);
        var spec = new ProcessSpec
        {
            ExecPath = execPath ?? "",
            ArgsTemplate = args,
            Cwd = m.String("cwd") ?? "",
            Port = (int)(m.Integer("port", 0, 65535) ?? 0),
            HostPort = (int)(m.Integer("host_port", 0, 65535) ?? 0),
            Restart = ReadRestart(m),
            MaxRestarts = (int)(m.Integer("max_restarts", 1, 100) ?? ProcessSpec.DefaultMaxRestarts),
        };
        return execPath is null ? null : spec;
    }

    private static RestartPolicy ReadRestart(YamlMapReader m)
    {
        var value = m.String("restart");
        switch (value)
        {
            case null or ProcessSpec.RestartNever:
                return RestartPolicy.Never;
            case ProcessSpec.RestartOnFailure:
                return RestartPolicy.OnFailure;
            default:
                m.Error("restart", $"unknown restart policy '{value}' (expected '{ProcessSpec.RestartNever}' or '{ProcessSpec.RestartOnFailure}')");
                return RestartPolicy.Never;
        }
    }

    private static DockerSpec? ReadDocker(YamlMapReader m)
    {
        foreach (var key in new[] { "restart", "max_restarts" })
        {
            if (m.Raw(key) is not null)
            {
                m.Error(key, "applies to type: process only; cf-orch does not start containers (give the container Docker's own restart policy)");
            }
        }

        var image = m.String("image", required: true);
        var port = m.Integer("port", 1, 65535, required: true);
        var hostPort = m.Integer("host_port", 1, 65535, required: true);
        var command = m.String("command_template") ?? "";
        CheckPlaceholders(m, "command_template", command);
        var spec = new DockerSpec
        {
            Image = image ?? "",
            Port = (int)(port ?? 0),
            HostPort = (int)(hostPort ?? 0),
            CommandTemplate = command,
            Volumes = m.StringList("volumes"),
            Runtime = m.String("runtime") ?? "nvidia",
            Ipc = m.String("ipc") ?? "host",
        };
        return image is null ? null : spec;
    }

    private static void CheckPlaceholders(YamlMapReader m, string key, string template)
    {
        foreach (Match match in PlaceholderRegex().Matches(template))
        {
            var placeholder = match.Groups[1].Value;
            if (!Placeholders.Contains(placeholder, StringComparer.Ordinal))
            {
                m.Error(key, $"unknown placeholder '{{{placeholder}}}' (allowed: {{port}}, {{gpu_id}}, {{model}})");
            }
        }

        var quotes = 0;
        foreach (var c in template)
        {
            if (c == '"')
            {
                quotes++;
            }
        }

        if (quotes % 2 != 0)
        {
            m.Error(key, "has an unterminated double quote");
        }
    }

    private static Dictionary<string, NodeProfile> ReadNodes(YamlMapReader r)
    {
        var result = new Dictionary<string, NodeProfile>(StringComparer.Ordinal);
        var nodes = r.Map("nodes");
        if (nodes is null)
        {
            return result;
        }

        foreach (var nodeId in nodes.Keys.ToList())
        {
            var n = nodes.Map(nodeId);
            if (n is null)
            {
                continue;
            }

            var gpus = new List<GpuNodeEntry>();
            var seq = n.Sequence("gpus");
            for (var i = 0; seq is not null && i < seq.Children.Count; i++)
            {
                var path = $"{n.Path}.gpus[{i}]";
                if (seq.Children[i] is not YamlMappingNode gpuNode)
                {
                    n.Errors.Add(seq.Children[i], path, "expected a mapping with id, vram_mb and role");
                    continue;
                }

                var g = new YamlMapReader(gpuNode, path, n.Errors);
                var id = g.Integer("id", 0, 63, required: true);
                var vram = g.Integer("vram_mb", 0, MaxBudgetMb, required: true);
                var role = g.String("role", required: true);
                var entry = new GpuNodeEntry
                {
                    Id = (int)(id ?? 0),
                    VramMb = vram ?? 0,
                    Role = role ?? "",
                    Card = g.String("card") ?? "unknown",
                    AlwaysOn = g.Bool("always_on") ?? false,
                    Services = g.StringList("services"),
                };
                g.RejectUnknownKeys();
                if (id is not null && vram is not null && role is not null)
                {
                    gpus.Add(entry);
                }
            }

            var node = new NodeProfile { Gpus = gpus, AgentUrl = n.String("agent_url"), NasMount = n.String("nas_mount") };
            n.RejectUnknownKeys();
            result[nodeId] = node;
        }

        return result;
    }

    private static string SyntaxMessage(YamlException ex)
    {
        // YamlDotNet prefixes messages with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the location is reported separately.
        var message = ex.Message;
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line", StringComparison.Ordinal) && marker >= 0 ? message[(marker + 3)..] : message;
    }

    [GeneratedRegex(@"\A[A-Za-z_][A-Za-z0-9_]*\z")]
    private static partial Regex EnvNameRegex();

    [GeneratedRegex(@"\{([^{}]*)\}")]
    private static partial Regex PlaceholderRegex();
}
