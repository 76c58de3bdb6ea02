using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CfOrch.Web.Data.Migrations
{
    /// <inheritdoc />
    public partial class Nodes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "nodes",
                columns: table => new
                {
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    AgentUrl = table.Column<string>(type: "TEXT", maxLength: 512, nullable: false),
                    RegisteredAtUnixMs = table.Column<long>(type: "INTEGER", nullable: false),
                    LastSeenUnixMs = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_nodes", x => x.NodeId);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "nodes");
        }
    }
}
