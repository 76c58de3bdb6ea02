using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CfOrch.Web.Data.Migrations
{
    /// <inheritdoc />
    public partial class ClientLeases : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "client_leases",
                columns: table => new
                {
                    LeaseId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    GpuIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    Holder = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Mb = table.Column<long>(type: "INTEGER", nullable: false),
                    Priority = table.Column<int>(type: "INTEGER", nullable: false),
                    GrantedAtUnixMs = table.Column<long>(type: "INTEGER", nullable: false),
                    ExpiresAtUnixMs = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_client_leases", x => x.LeaseId);
                });

            migrationBuilder.CreateIndex(
                name: "IX_lease_events_LeaseId",
                table: "lease_events",
                column: "LeaseId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "client_leases");

            migrationBuilder.DropIndex(
                name: "IX_lease_events_LeaseId",
                table: "lease_events");
        }
    }
}
