namespace CfOrch.Core.Profiles;

/// <summary>A GPU profile (schema_version 1, compatible with cf-orch): the VRAM budget and launch spec of each service.</summary>
public sealed record GpuProfile
{
    public const int SupportedSchemaVersion = 1;

    public required int SchemaVersion { get; init; }

    public required string Name { get; init; }

    public long? VramTotalMb { get; init; }

    public double EvictionTimeoutS { get; init; } = 10.0;

    public IReadOnlyDictionary<string, ServiceProfile> Services { get; init; } = new Dictionary<string, ServiceProfile>();

    public IReadOnlyDictionary<string, string> ModelSizeHints { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, NodeProfile> Nodes { get; init; } = new Dictionary<string, NodeProfile>();
}

/// <summary>One service entry of a profile: its budget, priority and (optionally) how to launch it.</summary>
public sealed record ServiceProfile
{
    public required string Name { get; init; }

    /// <summary>The budget: the size of the lease this service holds.</summary>
    public required long MaxMb { get; init; }

    /// <summary>1 = most important; larger numbers are evicted first.</summary>
    public required int Priority { get; init; }

    public bool Shared { get; init; }

    public int MaxConcurrent { get; init; } = 1;

    public bool AlwaysOn { get; init; }

    /// <summary>0 = never stop when idle.</summary>
    public double IdleStopAfterS { get; init; }

    public string? Backend { get; init; }

    public IReadOnlyList<string> Consumers { get; init; } = [];

    /// <summary>GPU indexes this service may run on; empty = any.</summary>
    public IReadOnlyList<int> Gpus { get; init; } = [];

    public ManagedSpec? Managed { get; init; }
}

/// <summary>How cf-orch launches (or adopts) a service.</summary>
public abstract record ManagedSpec
{
    public const string DefaultHealthPath = "/health";
    public const string DefaultHost = "127.0.0.1";

    public abstract string Type { get; }

    public int Port { get; init; }

    public int HostPort { get; init; }

    public string Host { get; init; } = DefaultHost;

    public bool Adopt { get; init; }

    public string HealthPath { get; init; } = DefaultHealthPath;

    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// <c>unload_idle_models:</c> whether cf-orch may unload this Ollama's idle models for a more important lease
    /// (null: not given — yes, for a service that speaks Ollama's API).
    /// </summary>
    public bool? UnloadIdleModels { get; init; }

    public const string RestartNever = "never";
    public const string RestartOnFailure = "on-failure";
    public const int DefaultMaxRestarts = 3;

    /// <summary>What cf-orch does when the service exits without being asked to (<c>restart:</c>, default never).</summary>
    public RestartPolicy Restart { get; init; } = RestartPolicy.Never;

    /// <summary>How many restarts <see cref="RestartPolicy.OnFailure"/> makes within its window before it gives up.</summary>
    public int MaxRestarts { get; init; } = DefaultMaxRestarts;

    /// <summary>The port the service answers on from this machine: host_port, else port.</summary>
    public int EffectivePort => HostPort != 0 ? HostPort : Port;

    /// <summary>Where the service answers from this machine: <c>http://{host}:{port}</c>.</summary>
    public string LocalUrl => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"http://{Host}:{EffectivePort}");
}

public sealed record ProcessSpec : ManagedSpec
{
    public const string TypeName = "process";

    public override string Type => TypeName;

    public required string ExecPath { get; init; }

    /// <summary>Arguments with {port} {gpu_id} {model} placeholders; split into argv, never run through a shell.</summary>
    public string ArgsTemplate { get; init; } = "";

    public string Cwd { get; init; } = "";
}

/// <summary>A managed service's restart policy (<c>restart: never | on-failure</c>).</summary>
public enum RestartPolicy
{
    /// <summary>A service that exits unexpectedly stays failed until someone starts it.</summary>
    Never,

    /// <summary>A service that exits unexpectedly is started again after a back-off, a few times within a window.</summary>
    OnFailure,
}

/// <summary>
/// A container cf-orch runs through the Docker Engine API (or adopts: by <see cref="ContainerName"/>, or by the container
/// that publishes <see cref="ManagedSpec.HostPort"/>).
/// </summary>
public sealed record DockerSpec : ManagedSpec
{
    public const string TypeName = "docker";

    public override string Type => TypeName;

    public required string Image { get; init; }

    /// <summary>The container's command (after the image's entrypoint), with {port} {gpu_id} {model}; split into argv, never run through a shell.</summary>
    public string CommandTemplate { get; init; } = "";

    /// <summary><c>name:/path[:ro]</c> (a named volume, kept when the container is removed) or <c>/host/path:/path[:ro]</c> (a bind mount).</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];

    /// <summary>The engine's runtime (<c>nvidia</c> by default: the NVIDIA container toolkit); empty for the engine's default.</summary>
    public string Runtime { get; init; } = "nvidia";

    public string Ipc { get; init; } = "host";

    /// <summary><c>host</c> for host networking (no port mapping); empty for the engine's bridge with host_port → port published on <see cref="ManagedSpec.Host"/>.</summary>
    public string Network { get; init; } = "";

    /// <summary>The name of a container the user runs themselves (their compose file): adopted by that name.</summary>
    public string? ContainerName { get; init; }

    /// <summary>/dev/shm size in bytes; null for the engine's default.</summary>
    public long? ShmSizeBytes { get; init; }

    public string? User { get; init; }

    /// <summary>Runs an init process as PID 1 (forwards signals, reaps zombies); null for the engine's default.</summary>
    public bool? Init { get; init; }

    public PullPolicy Pull { get; init; } = PullPolicy.Missing;

    /// <summary>Whether the container uses the host's network (no port is published).</summary>
    public bool HostNetwork => Network == "host";
}

/// <summary>When cf-orch pulls a container's image before it starts it (<c>pull: missing | always | never</c>).</summary>
public enum PullPolicy
{
    /// <summary>Only when the engine does not have the image.</summary>
    Missing,

    /// <summary>Before every start (a newer image under the same tag is picked up).</summary>
    Always,

    /// <summary>Never: an image the engine does not have fails the start.</summary>
    Never,
}

public sealed record NodeProfile
{
    public IReadOnlyList<GpuNodeEntry> Gpus { get; init; } = [];

    public string? AgentUrl { get; init; }

    public string? NasMount { get; init; }
}

public sealed record GpuNodeEntry
{
    public required int Id { get; init; }

    public required long VramMb { get; init; }

    public required string Role { get; init; }

    public string Card { get; init; } = "unknown";

    public bool AlwaysOn { get; init; }

    public IReadOnlyList<string> Services { get; init; } = [];
}
