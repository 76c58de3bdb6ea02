using System.Globalization;
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
        var alwaysOn = s.Bool("always_on") ?? false;
        var service = new ServiceProfile
        {
            Name = name,
            MaxMb = maxMb ?? 0,
            Priority = (int)(priority ?? 0),
            Shared = s.Bool("shared") ?? false,
            MaxConcurrent = (int)(s.Integer("max_concurrent", 1, 10_000) ?? 1),
            AlwaysOn = alwaysOn,
            IdleStopAfterS = s.Number("idle_stop_after_s", 0, 365 * 24 * 3600) ?? 0,
            Backend = s.String("backend"),
            Consumers = s.StringList("consumers"),
            Gpus = s.IntList("gpus", 0, 63),
            Managed = ReadManaged(s, name, alwaysOn),
        };
        s.RejectUnknownKeys();
        return maxMb is null || priority is null ? null : service;
    }

    private static ManagedSpec? ReadManaged(YamlMapReader s, string name, bool alwaysOn)
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
            Restart = ReadRestart(m),
            MaxRestarts = (int)(m.Integer("max_restarts", 1, 100) ?? ManagedSpec.DefaultMaxRestarts),
            Adopt = m.Bool("adopt") ?? false,
            HealthPath = m.NonEmptyString("health_path", ManagedSpec.DefaultHealthPath),
            Host = m.NonEmptyString("host", ManagedSpec.DefaultHost),
            Env = m.StringMap("env"),
            UnloadIdleModels = m.Bool("unload_idle_models"),
        };
        // An always_on service is started with cf-orch, where nothing names a model: {model} would be empty.
        var (templateKey, template) = spec switch
        {
            ProcessSpec p => ("args_template", p.ArgsTemplate),
            DockerSpec d => ("command_template", d.CommandTemplate),
            _ => ("", ""),
        };
        if (alwaysOn && template.Contains("{model}", StringComparison.Ordinal))
        {
            m.Error(templateKey, "an always_on service starts with cf-orch, where nothing names a model: {model} would be empty; write the model into the template");
        }

        if (spec.UnloadIdleModels == true && !Ollama.OllamaClient.IsOllama(name, spec.HealthPath))
        {
            m.Error("unload_idle_models", "applies to services that speak Ollama's API (named ollama…, or health_path: /api/tags)");
        }
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

    /// <summary>Keys only one type of managed block takes: given to the other, each is an error at its own position.</summary>
    private static readonly string[] ProcessOnlyKeys = ["exec_path", "args_template", "cwd"];
    private static readonly string[] DockerOnlyKeys = ["image", "command_template", "volumes", "runtime", "ipc", "network", "container_name", "shm_size", "user", "init", "pull"];

    private static void RejectKeysOf(YamlMapReader m, IEnumerable<string> keys, string type)
    {
        // Only keys that are there are marked as read: the hint for an unknown key lists this type's keys alone.
        foreach (var key in keys.Where(m.Has))
        {
            m.Raw(key);
            m.Error(key, $"applies to type: {type} only");
        }
    }

    private static ProcessSpec? ReadProcess(YamlMapReader m)
    {
        RejectKeysOf(m, DockerOnlyKeys, DockerSpec.TypeName);
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
        };
        return execPath is null ? null : spec;
    }

    private static RestartPolicy ReadRestart(YamlMapReader m)
    {
        var value = m.String("restart");
        switch (value)
        {
            case null or ManagedSpec.RestartNever:
                return RestartPolicy.Never;
            case ManagedSpec.RestartOnFailure:
                return RestartPolicy.OnFailure;
            default:
                m.Error("restart", $"unknown restart policy '{value}' (expected '{ManagedSpec.RestartNever}' or '{ManagedSpec.RestartOnFailure}')");
                return RestartPolicy.Never;
        }
    }

    private static DockerSpec? ReadDocker(YamlMapReader m)
    {
        RejectKeysOf(m, ProcessOnlyKeys, ProcessSpec.TypeName);
        var image = m.String("image", required: true);
        if (image is not null && (string.IsNullOrWhiteSpace(image) || image.Any(char.IsWhiteSpace)))
        {
            m.Error("image", $"'{image}' is not an image reference (for example vllm/vllm-openai:latest)");
        }

        var network = m.String("network") ?? "";
        var hostNetwork = network == "host";
        if (network.Length > 0 && !hostNetwork && !ContainerNameRegex().IsMatch(network))
        {
            m.Error("network", $"'{network}' is not a network name (use host for host networking, or leave it out for the engine's bridge)");
        }

        var port = m.Integer("port", 1, 65535, required: true);

        // With host networking the container answers on its own port; on a bridge, host_port is where it is published.
        var hostPort = m.Integer("host_port", 1, 65535, required: !hostNetwork);
        var command = m.String("command_template") ?? "";
        CheckPlaceholders(m, "command_template", command);
        var containerName = m.String("container_name");
        if (containerName is not null && !ContainerNameRegex().IsMatch(containerName))
        {
            m.Error("container_name", $"'{containerName}' is not a container name (letters, digits, '_', '.', '-'; starting with a letter or digit)");
        }

        var volumes = m.StringList("volumes");
        foreach (var volume in volumes)
        {
            if (VolumeProblem(volume) is { } problem)
            {
                m.Error("volumes", $"'{volume}': {problem}");
            }
        }

        var user = m.String("user");
        if (user is not null && (user.Length == 0 || user.Any(char.IsWhiteSpace)))
        {
            m.Error("user", $"'{user}' is not a user (a name or uid, optionally :group)");
        }

        var spec = new DockerSpec
        {
            Image = image ?? "",
            Port = (int)(port ?? 0),
            HostPort = (int)(hostPort ?? 0),
            CommandTemplate = command,
            Volumes = volumes,
            Runtime = m.String("runtime") ?? "nvidia",
            Ipc = m.String("ipc") ?? "host",
            Network = network,
            ContainerName = containerName,
            ShmSizeBytes = ReadSize(m, "shm_size"),
            User = user,
            Init = m.Bool("init"),
            Pull = ReadPull(m),
        };
        return image is null ? null : spec;
    }

    private static PullPolicy ReadPull(YamlMapReader m)
    {
        var value = m.String("pull");
        switch (value)
        {
            case null or "missing":
                return PullPolicy.Missing;
            case "always":
                return PullPolicy.Always;
            case "never":
                return PullPolicy.Never;
            default:
                m.Error("pull", $"unknown pull policy '{value}' (expected 'missing', 'always' or 'never')");
                return PullPolicy.Missing;
        }
    }

    /// <summary>A size as Docker writes it: bytes, or a number with b, k, m or g (<c>8g</c>, <c>512m</c>).</summary>
    private static long? ReadSize(YamlMapReader m, string key)
    {
        var text = m.String(key);
        if (text is null)
        {
            return null;
        }

        var match = SizeRegex().Match(text.Trim());
        if (!match.Success || !long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            m.Error(key, $"'{text}' is not a size (for example 8g, 512m or 1073741824)");
            return null;
        }

        var shift = match.Groups[2].Value.ToLowerInvariant() switch { "k" => 10, "m" => 20, "g" => 30, _ => 0 };
        if (number == 0 || number > long.MaxValue >> shift)
        {
            m.Error(key, $"'{text}' must be more than 0 and less than 8 EiB");
            return null;
        }

        return number << shift;
    }

    /// <summary>Why a volume entry cannot be mounted, or null: <c>source:/target[:ro|rw]</c>, source a volume name or an absolute path.</summary>
    private static string? VolumeProblem(string volume)
    {
        var parts = volume.Split(':');
        if (parts.Length is < 2 or > 3 || parts[0].Length == 0)
        {
            return "expected source:/path/in/container[:ro] (source: a volume name or an absolute host path)";
        }

        if (!parts[1].StartsWith('/'))
        {
            return $"the path in the container ('{parts[1]}') must be absolute";
        }

        if (parts.Length == 3 && parts[2] is not ("ro" or "rw"))
        {
            return $"unknown mode '{parts[2]}' (expected ro or rw)";
        }

        return parts[0].StartsWith('/') || ContainerNameRegex().IsMatch(parts[0])
            ? null
            : $"'{parts[0]}' is neither a volume name nor an absolute host path";
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

    [GeneratedRegex(@"\A[A-Za-z0-9][A-Za-z0-9_.-]*\z")]
    private static partial Regex ContainerNameRegex();

    [GeneratedRegex(@"\A([0-9]+)\s*([bBkKmMgG]?)[bB]?\z")]
    private static partial Regex SizeRegex();

    [GeneratedRegex(@"\{([^{}]*)\}")]
    private static partial Regex PlaceholderRegex();
}
