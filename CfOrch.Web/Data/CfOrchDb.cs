using Microsoft.EntityFrameworkCore;

namespace CfOrch.Web.Data;

/// <summary>The embedded SQLite database: one file in <c>CfOrch:DataDir</c>, its schema kept by EF Core migrations.</summary>
public sealed class CfOrchDb(DbContextOptions<CfOrchDb> options) : DbContext(options)
{
    public DbSet<GpuSample> GpuSamples => Set<GpuSample>();

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
    }
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
}
