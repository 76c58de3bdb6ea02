using CfOrch.Core.Gpus;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Allocations;

namespace CfOrch.Web.Api;

// Request bodies: cf-orch's fields and defaults. Unknown fields are ignored, as cf-orch's pydantic models do.

public sealed class LeaseRequestBody
{
    public string? NodeId { get; set; }

    public int? GpuId { get; set; }

    public long? Mb { get; set; }

    public string? Service { get; set; }

    public int Priority { get; set; } = 2;

    public double TtlS { get; set; }
}

public sealed class NodeRegisterBody
{
    public string? NodeId { get; set; }

    public string? AgentUrl { get; set; }
}

/// <summary>A body that names the node and GPU it is for (both optional).</summary>
public interface IServiceTarget
{
    string? NodeId { get; }

    int? GpuId { get; }
}

public sealed class EnsureBody : IServiceTarget
{
    public string? NodeId { get; set; }

    public int? GpuId { get; set; }

    public Dictionary<string, string> Params { get; set; } = [];

    public double TtlS { get; set; } = 3600;

    public List<string> ModelCandidates { get; set; } = [];
}

public sealed class AllocateBody
{
    /// <summary>The node to run it on (cf-orch's addition; the original places it itself): none lets cf-orch place it.</summary>
    public string? NodeId { get; set; }

    public List<string> ModelCandidates { get; set; } = [];

    public int? GpuId { get; set; }

    public Dictionary<string, string> Params { get; set; } = [];

    public double TtlS { get; set; } = 3600;

    public string Caller { get; set; } = "";
}

public sealed class StartStopBody : IServiceTarget
{
    public string? NodeId { get; set; }

    public int? GpuId { get; set; }

    public string? Model { get; set; }
}

// Answers.

/// <summary>A lease as cf-orch's API answers it; <c>expires_at</c> is 0.0 for a lease without a TTL, as the original's (its client compares it with <c>&gt; 0</c>).</summary>
/// <summary>
/// A lease. <c>yielded_to</c> and <c>lent_mb</c>: while an Ollama's lease lends part of its budget to more important
/// leases (cf-orch unloaded its idle models for them), to whom (comma-separated) and how much; it then holds the larger
/// of <c>measured_mb</c> and its budget less <c>lent_mb</c>.
/// </summary>
public sealed record LeaseRow(
    string LeaseId, string NodeId, int GpuId, long MbGranted, string HolderService, int Priority, double ExpiresAt,
    string Origin, string? Service, long? MeasuredMb, double GrantedAt, string? YieldedTo = null, long LentMb = 0)
{
    public static LeaseRow From(Lease l) => new(
        l.LeaseId, l.NodeId, l.GpuIndex, l.Mb, l.Holder, l.Priority, Unix(l.ExpiresAt) ?? NoExpiry,
        l.Origin.ToString().ToLowerInvariant(), l.Service, l.MeasuredMb, Unix(l.GrantedAt), Lender.To(l), l.LentMb);

    /// <summary>The original's <c>expires_at</c> for "never".</summary>
    public const double NoExpiry = 0.0;

    internal static double Unix(DateTimeOffset at) => at.ToUnixTimeMilliseconds() / 1000.0;

    internal static double? Unix(DateTimeOffset? at) => at is { } a ? Unix(a) : null;
}

public sealed record ProbeRow(double At, bool Ok, int? StatusCode, double LatencyMs, string? Error)
{
    public static ProbeRow? From(ProbeOutcome? p) => p is null ? null : new(LeaseRow.Unix(p.At), p.Ok, p.StatusCode, Math.Round(p.LatencyMs, 2), p.Error);
}

public sealed record ServiceRow(
    string Service, string NodeId, int GpuId, InstanceState State, string? Model, string Url, InstanceOrigin Origin, int? Pid,
    string HealthPath, long BudgetMb, long? MeasuredMb, string? LeaseId, double? IdleSince, double Since, double? ReadyAt,
    string? Message, int? ExitCode, int Allocations, int ProbeAttempts, ProbeRow? LastProbe, int RestartNumber, RestartRow? PendingRestart,
    IReadOnlyList<LoadedModelRow> LoadedModels)
{
    public static ServiceRow From(InstanceSnapshot i, Orchestrator o) => new(
        i.Service, i.Key.NodeId, i.Key.GpuIndex, i.State, i.Model, o.ClientUrl(i.Url), i.Origin, i.Pid, i.HealthPath,
        i.BudgetMb, i.MeasuredMb, i.LeaseId, i.State == InstanceState.Idle ? LeaseRow.Unix(i.StateSince) : null,
        LeaseRow.Unix(i.Since), LeaseRow.Unix(i.ReadyAt), i.Message, i.ExitCode, i.Allocations, i.ProbeAttempts, ProbeRow.From(i.LastProbe),
        i.RestartNumber, RestartRow.From(i.PendingRestart), i.LoadedModels.Select(LoadedModelRow.From).ToList());
}

/// <summary>A model the service has loaded (Ollama's <c>/api/ps</c>): <c>expires_at</c> is when it unloads by itself (null: it stays).</summary>
/// <summary>Who a lease lends memory to, in words: "vllm", "vllm, batch"; null when it lends nothing.</summary>
public static class Lender
{
    public static string? To(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return lease.Loans.Count == 0 ? null : string.Join(", ", lease.Loans.Select(l => l.ForHolder).Distinct(StringComparer.Ordinal));
    }
}

/// <summary>A loaded model: <c>last_used_at</c> is when cf-orch last saw it used (first loaded, or its expiry pushed forward).</summary>
public sealed record LoadedModelRow(string Name, long VramMb, double? ExpiresAt, double? LastUsedAt = null)
{
    public static LoadedModelRow From(LoadedModel m) => new(m.Name, m.VramMb, LeaseRow.Unix(m.ExpiresAt), LeaseRow.Unix(m.LastUsedAt));
}

/// <summary>A failed instance's scheduled restart (<c>restart: on-failure</c>): restart <c>number</c> of <c>of</c>, at <c>at</c>.</summary>
public sealed record RestartRow(double At, int Number, int Of)
{
    public static RestartRow? From(PendingRestart? r) => r is null ? null : new(LeaseRow.Unix(r.At), r.Number, r.Of);
}

public sealed record AllocationRow(string AllocationId, string Service, string NodeId, int GpuId, string? Model, string Caller, string Url, double ExpiresAt, double CreatedAt)
{
    public static AllocationRow From(Allocation a) => new(a.AllocationId, a.Service, a.NodeId, a.GpuIndex, a.Model, a.Caller, a.Url, LeaseRow.Unix(a.ExpiresAt) ?? LeaseRow.NoExpiry, LeaseRow.Unix(a.CreatedAt));
}

public sealed record GpuProcessRow(int Pid, string? Name, long? UsedMb, string? Holder);

public sealed record GpuAccountRow(long LeasedMb, long MeasuredMb, long HeldMb, long ExternalMb, long ReserveMb, long CommittedMb, long AvailableMb, bool Overcommitted)
{
    public static GpuAccountRow? From(GpuAccount? a) => a is null ? null : new(a.LeasedMb, a.MeasuredMb, a.HeldMb, a.ExternalMb, a.ReserveMb, a.CommittedMb, a.AvailableMb, a.Overcommitted);
}

public sealed record GpuRow(
    int GpuId, string Name, string Uuid, long TotalMb, long UsedMb, long FreeMb, int? UtilizationPercent, int? TemperatureC,
    string? Error, IReadOnlyList<GpuProcessRow> Processes, IReadOnlyList<LeaseRow> Leases, GpuAccountRow? Account);

/// <summary>
/// Whether a runtime (<c>process</c>, <c>docker</c>) can start services now, and why not; for the Docker engine also the
/// profile's images it does not have and the container runtimes it has (null: not known), which disable some starts.
/// </summary>
public sealed record RuntimeRow(string Kind, bool Available, string? Problem, IReadOnlyList<string> MissingImages, IReadOnlyList<string>? EngineRuntimes)
{
    public static RuntimeRow From(Core.Runtimes.RuntimeStatus s) => new(s.Kind, s.Available, s.Problem, s.MissingImages, s.EngineRuntimes);
}

public sealed class UnloadBody
{
    public string Model { get; set; } = "";

    public int? GpuId { get; set; }
}

public sealed record UnloadAnswer(string Service, string Model, bool Unloaded, string Detail);
