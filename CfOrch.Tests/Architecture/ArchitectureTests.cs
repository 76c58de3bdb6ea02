using CfOrch.Core;

namespace CfOrch.Tests.Architecture;

/// <summary>
/// The layering rules of docs/ARCHITECTURE.md, read from the compiled CfOrch.Core.dll and CfOrch.Web.dll: no namespace
/// cycles inside Core or Web, Core never references Web, and the UI never references the data layer.
/// </summary>
public sealed class ArchitectureTests
{
    private static readonly Lazy<NamespaceGraph> Graph = new(() => NamespaceGraph.Read(
        typeof(CoreServiceCollectionExtensions).Assembly.Location,
        typeof(Program).Assembly.Location));

    [Fact]
    public void Core_has_no_namespace_cycles()
    {
        var cycles = Graph.Value.Cycles(ns => IsIn(ns, "CfOrch.Core"));

        Assert.True(cycles.Count == 0, $"CfOrch.Core has namespace cycles:{Environment.NewLine}{Graph.Value.DescribeCycles(cycles)}");
    }

    [Fact]
    public void Core_never_references_Web()
    {
        var edges = Graph.Value.Edges.Where(e => IsIn(e.Key.From, "CfOrch.Core") && IsIn(e.Key.To, "CfOrch.Web")).ToList();

        Assert.True(edges.Count == 0, $"CfOrch.Core references CfOrch.Web:{Environment.NewLine}{Describe(edges)}");
    }

    [Fact]
    public void The_UI_never_references_the_data_layer()
    {
        var edges = Graph.Value.Edges.Where(e => IsIn(e.Key.From, "CfOrch.Web.Components") && IsIn(e.Key.To, "CfOrch.Web.Data")).ToList();

        Assert.True(edges.Count == 0, $"The UI (CfOrch.Web.Components) references the data layer (CfOrch.Web.Data); it reads history through Core's IHistoryReader:{Environment.NewLine}{Describe(edges)}");
    }

    [Fact]
    public void Web_has_no_namespace_cycles()
    {
        var cycles = Graph.Value.Cycles(ns => IsIn(ns, "CfOrch.Web"));

        Assert.True(cycles.Count == 0, $"CfOrch.Web has namespace cycles:{Environment.NewLine}{Graph.Value.DescribeCycles(cycles)}");
    }

    /// <summary>The rules can fail: two namespaces of this assembly that use each other (only inside method bodies and a lambda) are found as one cycle.</summary>
    [Fact]
    public void A_cycle_hidden_in_method_bodies_and_lambdas_is_found_and_named()
    {
        var graph = NamespaceGraph.Read(typeof(ArchitectureTests).Assembly.Location);

        var cycle = Assert.Single(graph.Cycles(ns => IsIn(ns, "CfOrch.Tests.Architecture.CycleSample")));

        Assert.Equal(["CfOrch.Tests.Architecture.CycleSample.Left", "CfOrch.Tests.Architecture.CycleSample.Right"], cycle);
        var message = graph.DescribeCycles([cycle]);
        Assert.Contains("CfOrch.Tests.Architecture.CycleSample.Left → CfOrch.Tests.Architecture.CycleSample.Right (e.g. CfOrch.Tests.Architecture.CycleSample.Left.LeftSide uses CfOrch.Tests.Architecture.CycleSample.Right.RightSide)", message, StringComparison.Ordinal);
        Assert.Contains("CfOrch.Tests.Architecture.CycleSample.Right → CfOrch.Tests.Architecture.CycleSample.Left (e.g. CfOrch.Tests.Architecture.CycleSample.Right.RightSide uses CfOrch.Tests.Architecture.CycleSample.Left.LeftSide)", message, StringComparison.Ordinal);
    }

    private static bool IsIn(string ns, string root) =>
        ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal);

    private static string Describe(IEnumerable<KeyValuePair<(string From, string To), (string FromType, string ToType)>> edges) =>
        string.Join(Environment.NewLine, edges
            .OrderBy(e => e.Key.From, StringComparer.Ordinal)
            .ThenBy(e => e.Key.To, StringComparer.Ordinal)
            .Select(e => "  " + NamespaceGraph.DescribeEdge(e)));
}
