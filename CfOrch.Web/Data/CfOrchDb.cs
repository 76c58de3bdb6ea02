using Microsoft.EntityFrameworkCore;

namespace CfOrch.Web.Data;

/// <summary>The embedded SQLite database: one file in <c>CfOrch:DataDir</c>, its schema kept by EF Core migrations.</summary>
public sealed class CfOrchDb(DbContextOptions<CfOrchDb> options) : DbContext(options)
{
    public DbSet<GpuSample> GpuSamples => Set<GpuSample>();

    public DbSet<LeaseEventRow> LeaseEvents => Set<LeaseEventRow>();

    public DbSet<ManagedInstanceRow> ManagedInstances => Set<ManagedInstanceRow>();

    public DbSet<ClientLeaseRow> ClientLeases => Set<ClientLeaseRow>();

    public DbSet<RegisteredNodeRow> Nodes => Set<RegisteredNodeRow>();

    public DbSet<LeaseLoanRow> LeaseLoans => Set<LeaseLoanRow>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        modelBuilder.Entity<GpuSample>(e =>
        {
            e.ToTable("gpu_samples");
            e.HasKey(x => x.Id);
            e.Property(x => x.NodeId).HasMaxLength(64).IsRequired();
            e.Property(x => x.GpuName).HasMaxLength(128).IsRequired();
            e.HasIndex(x => new { x.NodeId, x.GpuIndex, x.AtUnixMs });
            e.HasIndex(x => x.AtUnixMs);
        });
        modelBuilder.Entity<LeaseEventRow>(e =>
        {
            e.ToTable("lease_events");
            e.HasKey(x => x.Id);
            e.Property(x => x.Kind).HasMaxLength(16).IsRequired();
            e.Property(x => x.LeaseId).HasMaxLength(64);
            e.Property(x => x.NodeId).HasMaxLength(64).IsRequired();
            e.Property(x => x.Service).HasMaxLength(64);
            e.Property(x => x.Holder).HasMaxLength(256).IsRequired();
            e.Property(x => x.Origin).HasMaxLength(16).IsRequired();
            e.Property(x => x.Reason).HasMaxLength(LeaseEventRow.MaxReasonLength).IsRequired();
            e.HasIndex(x => x.AtUnixMs);
            e.HasIndex(x => new { x.Service, x.AtUnixMs });
            e.HasIndex(x => new { x.GpuIndex, x.AtUnixMs });
            e.HasIndex(x => x.LeaseId);
        });
        modelBuilder.Entity<LeaseLoanRow>(e =>
        {
            e.ToTable("lease_loans");
            e.HasKey(x => x.Id);
        });

        modelBuilder.Entity<ClientLeaseRow>(e =>
        {
            e.ToTable("client_leases");
            e.HasKey(x => x.LeaseId);
            e.Property(x => x.LeaseId).HasMaxLength(64);
            e.Property(x => x.NodeId).HasMaxLength(64).IsRequired();
            e.Property(x => x.Holder).HasMaxLength(256).IsRequired();
        });
        modelBuilder.Entity<RegisteredNodeRow>(e =>
        {
            e.ToTable("nodes");
            e.HasKey(x => x.NodeId);
            e.Property(x => x.NodeId).HasMaxLength(64);
            e.Property(x => x.AgentUrl).HasMaxLength(512).IsRequired();
        });
        modelBuilder.Entity<ManagedInstanceRow>(e =>
        {
            e.ToTable("managed_instances");
            e.HasKey(x => new { x.Service, x.NodeId, x.GpuIndex });
            e.Property(x => x.Service).HasMaxLength(64);
            e.Property(x => x.NodeId).HasMaxLength(64);
            e.Property(x => x.Url).HasMaxLength(512).IsRequired();
            e.Property(x => x.HealthPath).HasMaxLength(512).IsRequired();
            e.Property(x => x.Model).HasMaxLength(256);
        });
    }
}

/// <summary>A cf-orch agent that registered (<c>POST /api/nodes</c>): kept across restarts, as the original keeps its nodes.</summary>
public sealed class RegisteredNodeRow
{
    public required string NodeId { get; set; }

    public required string AgentUrl { get; set; }

    public long RegisteredAtUnixMs { get; set; }

    /// <summary>When it last answered a poll (as of the last time this was written); null when it never has.</summary>
    public long? LastSeenUnixMs { get; set; }
}

/// <summary>One GPU's memory use at one moment, for the History charts. Times are Unix milliseconds (SQLite sorts them natively).</summary>
public sealed class GpuSample
{
    public long Id { get; set; }

    public required string NodeId { get; set; }

    public int GpuIndex { get; set; }

    public required string GpuName { get; set; }

    public long AtUnixMs { get; set; }

    public long TotalMb { get; set; }

    public long UsedMb { get; set; }

    public int? UtilizationPercent { get; set; }

    public int? TemperatureC { get; set; }

    /// <summary>What cf-orch had committed on this GPU (leases held, external use, reserve).</summary>
    public long? CommittedMb { get; set; }

    /// <summary>What lease holders measurably used.</summary>
    public long? MeasuredMb { get; set; }
}

/// <summary>One lease history event (grant, release, expiry, eviction, service stopped or lost).</summary>
public sealed class LeaseEventRow
{
    /// <summary>The longest reason kept (the column's length; the history writer cuts longer ones).</summary>
    public const int MaxReasonLength = 2000;

    public long Id { get; set; }

    public long AtUnixMs { get; set; }

    public required string Kind { get; set; }

    public string? LeaseId { get; set; }

    public required string NodeId { get; set; }

    public int GpuIndex { get; set; }

    public string? Service { get; set; }

    public required string Holder { get; set; }

    public required string Origin { get; set; }

    public long BudgetMb { get; set; }

    public long? MeasuredMb { get; set; }

    public required string Reason { get; set; }

    public long? GrantedAtUnixMs { get; set; }
}

/// <summary>A managed instance cf-orch started, so that after a restart it is re-attached instead of started twice.</summary>
public sealed class ManagedInstanceRow
{
    public required string Service { get; set; }

    public required string NodeId { get; set; }

    public int GpuIndex { get; set; }

    public int Pid { get; set; }

    public long? ProcessStartTime { get; set; }

    public required string Url { get; set; }

    public required string HealthPath { get; set; }

    public string? Model { get; set; }

    public long BudgetMb { get; set; }

    public long StartedAtUnixMs { get; set; }
}

/// <summary>A client's lease (<c>POST /api/leases</c>) while it is held, so that it survives a restart of cf-orch.</summary>
public sealed class ClientLeaseRow
{
    public required string LeaseId { get; set; }

    public required string NodeId { get; set; }

    public int GpuIndex { get; set; }

    public required string Holder { get; set; }

    public long Mb { get; set; }

    public int Priority { get; set; }

    public long GrantedAtUnixMs { get; set; }

    public long? ExpiresAtUnixMs { get; set; }
}

/// <summary>
/// Memory an Ollama's lease lent to a more important lease, while that lease holds it (<see cref="Core.Leases.KeptLoan"/>),
/// so that after a restart the two come back with the loan and the GPU is not shown over-committed.
/// </summary>
public sealed class LeaseLoanRow
{
    public long Id { get; set; }

    public required string NodeId { get; set; }

    public int GpuIndex { get; set; }

    /// <summary>The lender's holder (its service).</summary>
    public required string Lender { get; set; }

    public required string ForLeaseId { get; set; }

    public required string ForHolder { get; set; }

    public string? ForService { get; set; }

    /// <summary><c>managed</c>, <c>adopted</c> or <c>client</c>.</summary>
    public required string ForOrigin { get; set; }

    public long Mb { get; set; }
}
