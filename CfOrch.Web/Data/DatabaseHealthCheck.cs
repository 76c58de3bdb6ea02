using CfOrch.Core.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CfOrch.Web.Data;

/// <summary>/healthz: the SQLite database answers, and the last write to it succeeded.</summary>
public sealed class DatabaseHealthCheck(IDbContextFactory<CfOrchDb> dbFactory, StorageHealth storage) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (storage.Problem is { } problem)
        {
            return HealthCheckResult.Unhealthy($"the database cannot be written since {problem.Since:u}: {problem.Detail}");
        }

        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.Database.CanConnectAsync(cancellationToken)
            ? HealthCheckResult.Healthy("the database answers")
            : HealthCheckResult.Unhealthy("the database cannot be opened");
    }
}
