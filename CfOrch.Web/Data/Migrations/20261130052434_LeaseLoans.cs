using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CfOrch.Web.Data.Migrations
{
    /// <inheritdoc />
    public partial class LeaseLoans : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "lease_loans",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    NodeId = table.Column<string>(type: "TEXT", nullable: false),
                    GpuIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    Lender = table.Column<string>(type: "TEXT", nullable: false),
                    ForLeaseId = table.Column<string>(type: "TEXT", nullable: false),
                    ForHolder = table.Column<string>(type: "TEXT", nullable: false),
                    ForService = table.Column<string>(type: "TEXT", nullable: true),
                    ForOrigin = table.Column<string>(type: "TEXT", nullable: false),
                    Mb = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_lease_loans", x => x.Id);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "lease_loans");
        }
    }
}
