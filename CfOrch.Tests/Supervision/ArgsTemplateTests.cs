using CfOrch.Core.Supervision;

namespace CfOrch.Tests.Supervision;

public sealed class ArgsTemplateTests
{
    private static readonly Dictionary<string, string> Values = new()
    {
        ["port"] = "8080",
        ["gpu_id"] = "1",
        ["model"] = "my model 7b",
    };

    [Fact]
    public void Whitespace_of_any_kind_separates_arguments()
    {
        Assert.Equal(["--port", "8080", "--host", "0.0.0.0"], ArgsTemplate.Split("  --port 8080\t--host \n 0.0.0.0\r\n"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t\n")]
    public void An_empty_template_has_no_arguments(string template)
    {
        Assert.Empty(ArgsTemplate.Split(template));
    }

    [Fact]
    public void Double_quotes_group_words_into_one_argument()
    {
        Assert.Equal(["--name", "a  b", "c"], ArgsTemplate.Split("--name \"a  b\" \"c\""));
    }

    [Fact]
    public void Quoted_and_unquoted_text_next_to_each_other_make_one_argument()
    {
        Assert.Equal(["--name=a bx", "y"], ArgsTemplate.Split("--name=\"a b\"x y"));
    }

    [Fact]
    public void A_quoted_empty_string_is_an_empty_argument()
    {
        Assert.Equal(["a", "", "b", ""], ArgsTemplate.Split("a \"\" b \"\""));
    }

    [Fact]
    public void Inside_quotes_a_backslash_escapes_a_quote_or_a_backslash_and_is_kept_before_anything_else()
    {
        Assert.Equal(["say \"hi\"", "C:\\x", "a\\nb"], ArgsTemplate.Split("\"say \\\"hi\\\"\" \"C:\\\\x\" \"a\\nb\""));
    }

    [Fact]
    public void Outside_quotes_backslashes_and_single_quotes_are_ordinary_characters()
    {
        Assert.Equal(["a\\b", "'x", "y'"], ArgsTemplate.Split("a\\b 'x y'"));
    }

    [Theory]
    [InlineData("--x \"abc", 5)]
    [InlineData("\"", 1)]
    [InlineData("\"ok\" --y \"say \\\"", 10)]
    public void An_unterminated_quote_throws_with_its_column(string template, int column)
    {
        var ex = Assert.Throws<FormatException>(() => ArgsTemplate.Split(template));
        Assert.Equal($"the quote at column {column} is never closed", ex.Message);
    }

    [Fact]
    public void Placeholders_are_replaced_after_splitting_so_a_model_with_spaces_stays_one_argument()
    {
        Assert.Equal(
            ["serve", "--model", "my model 7b", "--port=8080", "--device", "cuda:1"],
            ArgsTemplate.Expand("serve --model {model} --port={port} --device cuda:{gpu_id}", Values));
    }

    [Fact]
    public void Placeholders_inside_quotes_are_replaced_too()
    {
        Assert.Equal(["--title", "model my model 7b on 8080"], ArgsTemplate.Expand("--title \"model {model} on {port}\"", Values));
    }

    [Fact]
    public void Unknown_placeholders_and_stray_braces_are_left_as_written()
    {
        Assert.Equal(
            ["{unknown}", "{8080}", "{", "}", "{\"a\":1}", "x{port"],
            ArgsTemplate.Expand("{unknown} {{port}} { } {\"\\\"a\\\":1\"} x{port", Values));
    }

    [Fact]
    public void A_value_that_looks_like_a_placeholder_is_not_expanded_again()
    {
        var values = new Dictionary<string, string> { ["model"] = "{port}", ["port"] = "1" };
        Assert.Equal(["{port}", "1"], ArgsTemplate.Expand("{model} {port}", values));
    }

    [Fact]
    public void Expand_reports_an_unterminated_quote_like_split()
    {
        Assert.Throws<FormatException>(() => ArgsTemplate.Expand("--model \"{model}", Values));
    }
}
