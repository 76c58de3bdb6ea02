using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CfOrch.Web.Data.Migrations
{
    /// <inheritdoc />
    public partial class Engine : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "CommittedMb",
                table: "gpu_samples",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "MeasuredMb",
                table: "gpu_samples",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "lease_events",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    AtUnixMs = table.Column<long>(type: "INTEGER", nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    LeaseId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    GpuIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    Service = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    Holder = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Origin = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    BudgetMb = table.Column<long>(type: "INTEGER", nullable: false),
                    MeasuredMb = table.Column<long>(type: "INTEGER", nullable: true),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: false),
                    GrantedAtUnixMs = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_lease_events", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "managed_instances",
                columns: table => new
                {
                    Service = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    GpuIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    Pid = table.Column<int>(type: "INTEGER", nullable: false),
                    ProcessStartTime = table.Column<long>(type: "INTEGER", nullable: true),
                    Url = table.Column<string>(type: "TEXT", maxLength: 512, nullable: false),
                    HealthPath = table.Column<string>(type: "TEXT", maxLength: 512, nullable: false),
                    Model = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    BudgetMb = table.Column<long>(type: "INTEGER", nullable: false),
                    StartedAtUnixMs = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_managed_instances", x => new { x.Service, x.NodeId, x.GpuIndex });
                });

            migrationBuilder.CreateIndex(
                name: "IX_lease_events_AtUnixMs",
                table: "lease_events",
                column: "AtUnixMs");

            migrationBuilder.CreateIndex(
                name: "IX_lease_events_GpuIndex_AtUnixMs",
                table: "lease_events",
                columns: new[] { "GpuIndex", "AtUnixMs" });

            migrationBuilder.CreateIndex(
                name: "IX_lease_events_Service_AtUnixMs",
                table: "lease_events",
                columns: new[] { "Service", "AtUnixMs" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "lease_events");

            migrationBuilder.DropTable(
                name: "managed_instances");

            migrationBuilder.DropColumn(
                name: "CommittedMb",
                table: "gpu_samples");

            migrationBuilder.DropColumn(
                name: "MeasuredMb",
                table: "gpu_samples");
        }
    }
}
