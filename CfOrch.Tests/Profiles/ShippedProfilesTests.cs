using CfOrch.Core.Profiles;

namespace CfOrch.Tests.Profiles;

public sealed class ShippedProfilesTests
{
    public static TheoryData<string> Names => new(
        "single-gpu-2gb", "single-gpu-4gb", "single-gpu-6gb", "single-gpu-8gb",
        "single-gpu-16gb", "single-gpu-24gb", "cpu-16gb", "cpu-32gb");

    [Fact]
    public void Exactly_the_eight_documented_profiles_ship()
    {
        var names = ProfileRegistry.ShippedProfileTexts().Select(p => ProfileParser.Parse(p.Yaml, p.Source).Name).Order(StringComparer.Ordinal);

        Assert.Equal(Names.Select(n => (string)n.Data).Order(StringComparer.Ordinal), names);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Every_shipped_profile_has_the_adoptable_ollama_block(string name)
    {
        var (source, yaml) = ProfileRegistry.ShippedProfileTexts().Single(p => p.Source == $"profiles/{name}.yaml");
        var profile = ProfileParser.Parse(yaml, source);

        var ollama = profile.Services["ollama"];
        var spec = Assert.IsType<ProcessSpec>(ollama.Managed);
        Assert.Equal("process", spec.Type);
        Assert.True(spec.Adopt);
        Assert.Equal("/usr/local/bin/ollama", spec.ExecPath);
        Assert.Equal("serve", spec.ArgsTemplate);
        Assert.Equal(11434, spec.Port);
        Assert.Equal(11434, spec.HostPort);
        Assert.Equal("/api/tags", spec.HealthPath);
        if (profile.VramTotalMb is { } total)
        {
            Assert.InRange(ollama.MaxMb, 1, total);
        }
        else
        {
            Assert.Equal(0, ollama.MaxMb);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void No_shipped_profile_points_into_someones_private_machine(string name)
    {
        var (_, yaml) = ProfileRegistry.ShippedProfileTexts().Single(p => p.Source == $"profiles/{name}.yaml");

        Assert.DoesNotContain("/home/", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("/Library/", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("/devl/", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("~/", yaml, StringComparison.Ordinal);
    }
}
