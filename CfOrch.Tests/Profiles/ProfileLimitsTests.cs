using System.Text;
using CfOrch.Core.Profiles;

namespace CfOrch.Tests.Profiles;

/// <summary>The bounds of <see cref="YamlLimits"/> and the size cap: each refuses with one error that says where.</summary>
public sealed class ProfileLimitsTests
{
    private const string Head = "schema_version: 1\nname: p\n";

    [Fact]
    public void Flow_nesting_deeper_than_the_limit_is_refused_at_the_first_level_too_many()
    {
        // The root mapping is level 1, so the 32nd '[' (column 11 + 31) opens level 33.
        var yaml = Head + "services: " + new string('[', 5000) + new string(']', 5000) + "\n";

        var error = SingleError(yaml);

        Assert.Equal("the YAML nests deeper than 32 levels; a profile needs far fewer", error.Message);
        Assert.Equal(("p.yaml", 3, 42), (error.File, error.Line, error.Column));
        Assert.Equal("services" + string.Concat(Enumerable.Repeat("[0]", 31)), error.Path);
    }

    [Fact]
    public void Block_nesting_deeper_than_the_limit_is_refused_where_the_level_too_many_begins()
    {
        var yaml = new StringBuilder(Head).Append("services:\n");
        for (var depth = 1; depth <= 40; depth++)
        {
            yaml.Append(' ', depth).Append("a:\n");
        }

        var error = SingleError(yaml.ToString());

        // Level 2 is services' value (line 4, column 2); level 33 begins at line 35, column 33.
        Assert.Equal("the YAML nests deeper than 32 levels; a profile needs far fewer", error.Message);
        Assert.Equal((35, 33), (error.Line, error.Column));
        Assert.Equal("services" + string.Concat(Enumerable.Repeat(".a", 31)), error.Path);
    }

    [Fact]
    public void Nesting_exactly_as_deep_as_the_limit_is_read_as_usual()
    {
        var yaml = Head + "services: " + new string('[', YamlLimits.MaxDepth - 1) + new string(']', YamlLimits.MaxDepth - 1) + "\n";

        var error = SingleError(yaml);

        Assert.Equal("expected a mapping, found a list", error.Message);
    }

    [Fact]
    public void A_document_with_too_many_nodes_is_refused_at_the_node_past_the_limit()
    {
        var yaml = Head + "services:\n" + string.Concat(Enumerable.Repeat("- a\n", 30_000));

        var error = SingleError(yaml);

        // Seven nodes come before the first item (the root, schema_version, 1, name, p, services, the list), so item
        // MaxNodes - 6 is node MaxNodes + 1; items start on line 4.
        Assert.Equal("the YAML has more than 20000 nodes; a profile needs far fewer", error.Message);
        Assert.Equal((YamlLimits.MaxNodes - 6 + 3, 3), (error.Line, error.Column));
        Assert.Equal($"services[{YamlLimits.MaxNodes - 7}]", error.Path);
    }

    [Fact]
    public void Billion_laughs_stop_at_the_alias_that_expands_past_the_node_limit()
    {
        var yaml = new StringBuilder(Head).Append("l0: &a0 [").Append(string.Join(",", Enumerable.Repeat("lol", 10))).Append("]\n");
        for (var i = 1; i < 9; i++)
        {
            yaml.Append($"l{i}: &a{i} [").Append(string.Join(",", Enumerable.Repeat($"*a{i - 1}", 10))).Append("]\n");
        }

        var error = SingleError(yaml.ToString());

        // l3 holds 11,111 nodes once expanded and ends at node 12,353; the first *a3 inside l4 goes past 20,000.
        Assert.Equal("the alias *a3 takes the YAML over 20000 nodes (an alias counts as every node it repeats); a profile needs far fewer", error.Message);
        Assert.Equal((7, 10), (error.Line, error.Column));
        Assert.Equal("l4[0]", error.Path);
    }

    [Fact]
    public void An_alias_that_nests_its_anchor_past_the_depth_limit_is_refused()
    {
        var deep = new string('[', 20) + "x" + new string(']', 20);
        var yaml = $"{Head}deep: &d {deep}\nservices: [[[[[[[[[[[[[[*d]]]]]]]]]]]]]]\n";

        var error = SingleError(yaml);

        // 14 open lists under the root make 15 levels; the alias adds the 20 of its anchor.
        Assert.Equal("the alias *d nests the YAML deeper than 32 levels; a profile needs far fewer", error.Message);
        Assert.Equal((4, 25), (error.Line, error.Column));
    }

    [Fact]
    public void An_alias_inside_the_node_it_repeats_is_refused()
    {
        var error = SingleError(Head + "services: &s\n  a: *s\n");

        Assert.Equal("the alias *s repeats a node that contains it; a profile cannot contain itself", error.Message);
        Assert.Equal((4, 6, "services.a"), (error.Line, error.Column, error.Path));
    }

    [Fact]
    public void An_alias_before_its_anchor_is_refused()
    {
        // YamlDotNet would load it; "*x : &x y" (the alias a key, its anchor the value) overflows its stack.
        var error = SingleError(Head + "services: *x\nnodes: &x {}\n");

        Assert.Equal("the alias *x comes before any anchor &x; an alias repeats a node written above it", error.Message);
        Assert.Equal((3, 11, "services"), (error.Line, error.Column, error.Path));
    }

    [Fact]
    public void A_scalar_longer_than_the_limit_is_refused_where_it_begins()
    {
        var yaml = Head + "services:\n  a:\n    backend: \"" + new string('x', YamlLimits.MaxScalarLength + 1) + "\"\n";

        var error = SingleError(yaml);

        Assert.Equal("a scalar is longer than 32768 characters; a profile's keys and values are far shorter", error.Message);
        Assert.Equal((5, 14, "services.a.backend"), (error.Line, error.Column, error.Path));
    }

    [Fact]
    public void A_scalar_exactly_as_long_as_the_limit_is_read_as_usual()
    {
        var yaml = Head + "services:\n  a:\n    max_mb: 1\n    priority: 1\n    backend: " + new string('x', YamlLimits.MaxScalarLength) + "\n";

        Assert.Equal(YamlLimits.MaxScalarLength, ProfileParser.Parse(yaml, "p.yaml").Services["a"].Backend!.Length);
    }

    [Fact]
    public void A_document_over_the_size_cap_is_refused_before_it_is_parsed()
    {
        var yaml = Head + "# " + new string('x', ProfileParser.MaxFileBytes) + "\n";

        var error = SingleError(yaml);

        Assert.Equal(256 * 1024, ProfileParser.MaxFileBytes);
        Assert.Equal("the file is larger than 256 KiB; a profile is a short YAML file", error.Message);
        Assert.Equal((1, 1, ""), (error.Line, error.Column, error.Path));
    }

    [Fact]
    public void The_size_cap_counts_bytes_of_utf8_not_characters()
    {
        // 150,000 characters, 300,000 bytes.
        var yaml = Head + "# " + new string('é', 150_000) + "\n";

        Assert.Equal("the file is larger than 256 KiB; a profile is a short YAML file", SingleError(yaml).Message);
    }

    [Theory]
    [InlineData("...\n&b ")]
    [InlineData("...\n...\n\uFFFD:,")]
    [InlineData("- :  *a#c\u00E9*b...\n&b <<: *a: *a: }*b :\uFFFD{|\uFFFD- *a*a#c|<<: *a ")]
    public void Malformed_yaml_that_upsets_yamldotnet_is_a_syntax_error_not_a_crash(string yaml)
    {
        // Found by fuzzing: YamlDotNet throws InvalidOperationException or ArgumentException on these.
        var error = SingleError(yaml);

        Assert.StartsWith("YAML syntax error: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shared_env_block_by_anchor_and_alias_is_still_read()
    {
        var yaml = Head + """
            services:
              a:
                max_mb: 1
                priority: 1
                managed:
                  type: process
                  exec_path: /bin/a
                  port: 8001
                  env: &shared
                    HF_HOME: /models
                    HF_TOKEN: hf_abc
              b:
                max_mb: 1
                priority: 2
                managed:
                  type: process
                  exec_path: /bin/b
                  port: 8002
                  env: *shared
            """;

        var profile = ProfileParser.Parse(yaml, "p.yaml");

        var expected = new Dictionary<string, string> { ["HF_HOME"] = "/models", ["HF_TOKEN"] = "hf_abc" };
        Assert.Equal(expected, profile.Services["a"].Managed!.Env);
        Assert.Equal(expected, profile.Services["b"].Managed!.Env);
    }

    private static ProfileError SingleError(string yaml) =>
        Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "p.yaml")).Errors);
}
