namespace CfOrch.Core.Instances;

/// <summary>An instance's identity: one service on one node and GPU.</summary>
public readonly record struct InstanceKey(string Service, string NodeId, int GpuIndex)
{
    public override string ToString() => $"{Service}@{NodeId}/gpu{GpuIndex}";
}

/// <summary>The instance state machine of DESIGN.md.</summary>
public enum InstanceState
{
    Starting,
    Running,
    Unhealthy,
    Idle,
    Stopping,
    Stopped,
    Failed,

    /// <summary>On another node whose agent does not answer: it may still run; its lease stays counted until the agent answers again or an operator releases it.</summary>
    Unknown,
}

public enum InstanceOrigin
{
    /// <summary>cf-orch started it and owns its process.</summary>
    Managed,

    /// <summary>It already ran; cf-orch only tracks it and never signals it.</summary>
    Adopted,
}

/// <summary>The outcome of the last health probe.</summary>
public sealed record ProbeOutcome(DateTimeOffset At, bool Ok, int? StatusCode, double LatencyMs, string? Error);

/// <summary>
/// A model a service has loaded (Ollama's <c>/api/ps</c>): its VRAM, when it unloads by itself (null: it stays), and
/// when it was last seen used — first seen loaded, or its <c>expires_at</c> moved forward (Ollama pushes it on every
/// request); null when not known.
/// </summary>
public sealed record LoadedModel(string Name, long VramMb, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt = null)
{
    /// <summary>
    /// This reading of the model, dated by the one before: a model seen for the first time was just loaded (used), one
    /// whose expiry moved (a request pushes it; a shorter keep_alive moves it back) was just used again, and otherwise
    /// it was last used when the previous reading says.
    /// </summary>
    public LoadedModel Following(LoadedModel? previous, DateTimeOffset now) =>
        this with { LastUsedAt = previous is null || ExpiresAt != previous.ExpiresAt ? now : previous.LastUsedAt ?? now };
}

/// <summary>A restart that <c>restart: on-failure</c> has scheduled for a failed instance: restart Number of Of, at At.</summary>
public sealed record PendingRestart(DateTimeOffset At, int Number, int Of);

/// <summary>One instance at one moment. Immutable: the registry replaces it on every change.</summary>
public sealed record InstanceSnapshot
{
    public required InstanceKey Key { get; init; }

    public string Service => Key.Service;

    public required InstanceOrigin Origin { get; init; }

    public required InstanceState State { get; init; }

    public required string Url { get; init; }

    public required string HealthPath { get; init; }

    public int? Pid { get; init; }

    /// <summary>The name of the container it runs as, where cf-orch found one (an adopted container); null otherwise.</summary>
    public string? Container { get; init; }

    /// <summary>True when cf-orch found this process still running after its own restart and attached to it, rather than starting it.</summary>
    public bool Reattached { get; init; }

    public string? Model { get; init; }

    public long BudgetMb { get; init; }

    /// <summary>VRAM actually in use (NVML per-process or Ollama's size_vram); null when it cannot be measured.</summary>
    public long? MeasuredMb { get; init; }

    /// <summary>The models it has loaded, as last measured (Ollama); empty when it reports none or cannot say.</summary>
    public IReadOnlyList<LoadedModel> LoadedModels { get; init; } = [];

    public string? LeaseId { get; init; }

    public int Priority { get; init; }

    /// <summary>When cf-orch started or adopted it.</summary>
    public required DateTimeOffset Since { get; init; }

    /// <summary>When it entered its current state.</summary>
    public required DateTimeOffset StateSince { get; init; }

    /// <summary>When it became running (null while starting).</summary>
    public DateTimeOffset? ReadyAt { get; init; }

    public ProbeOutcome? LastProbe { get; init; }

    /// <summary>Probes sent since it began starting (progress while starting).</summary>
    public int ProbeAttempts { get; init; }

    public int ConsecutiveFailures { get; init; }

    public int? ExitCode { get; init; }

    /// <summary>Why it is in this state, in words (a failure, a warning, a note).</summary>
    public string? Message { get; init; }

    /// <summary>The last lines of its output when it failed.</summary>
    public IReadOnlyList<string> LastLogLines { get; init; } = [];

    public int Allocations { get; init; }

    /// <summary>Failed, with an automatic restart scheduled (<c>restart: on-failure</c>); stopping the service cancels it.</summary>
    public PendingRestart? PendingRestart { get; init; }

    /// <summary>Which automatic restart this run is (1 = the first after a crash); 0 when it was started on request.</summary>
    public int RestartNumber { get; init; }

    /// <summary>The less important instances evicted (stopped) to make room for this run's start: what undoing it starts again.</summary>
    public IReadOnlyList<Displaced> Displaced { get; init; } = [];

    /// <summary>Starting, running, unhealthy or idle: it holds (or should hold) its lease.</summary>
    public bool IsActive => State is InstanceState.Starting or InstanceState.Running or InstanceState.Unhealthy or InstanceState.Idle or InstanceState.Stopping or InstanceState.Unknown;

    /// <summary>Can take allocations now.</summary>
    public bool IsServing => State is InstanceState.Running or InstanceState.Idle;
}

/// <summary>An instance a start evicted: which, and the model it ran (for its start again).</summary>
public sealed record Displaced(InstanceKey Key, string? Model);
