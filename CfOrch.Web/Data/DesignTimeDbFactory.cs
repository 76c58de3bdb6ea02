using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace CfOrch.Web.Data;

/// <summary>Lets <c>dotnet ef migrations add</c> build the model without starting the app.</summary>
internal sealed class DesignTimeDbFactory : IDesignTimeDbContextFactory<CfOrchDb>
{
    public CfOrchDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<CfOrchDb>().UseSqlite("Data Source=design-time.db").Options);
}
