using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CfOrch.Web.Data.Migrations
{
    /// <inheritdoc />
    public partial class Initial : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "gpu_samples",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    GpuIndex = table.Column<int>(type: "INTEGER", nullable: false),
                    GpuName = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    AtUnixMs = table.Column<long>(type: "INTEGER", nullable: false),
                    TotalMb = table.Column<long>(type: "INTEGER", nullable: false),
                    UsedMb = table.Column<long>(type: "INTEGER", nullable: false),
                    UtilizationPercent = table.Column<int>(type: "INTEGER", nullable: true),
                    TemperatureC = table.Column<int>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_gpu_samples", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_gpu_samples_AtUnixMs",
                table: "gpu_samples",
                column: "AtUnixMs");

            migrationBuilder.CreateIndex(
                name: "IX_gpu_samples_NodeId_GpuIndex_AtUnixMs",
                table: "gpu_samples",
                columns: new[] { "NodeId", "GpuIndex", "AtUnixMs" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "gpu_samples");
        }
    }
}
