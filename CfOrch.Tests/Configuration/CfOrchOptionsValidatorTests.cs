using CfOrch.Core;
using CfOrch.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CfOrch.Tests.Configuration;

public sealed class CfOrchOptionsValidatorTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        var options = Resolve([]);

        Assert.Equal("local", options.NodeId);
        Assert.Equal("auto", options.Gpus.Mode);
        Assert.Equal(GpuMode.Auto, options.Gpus.ParsedMode());
        Assert.Equal(Path.GetFullPath("data"), options.ResolvedDataDir());
        Assert.Equal(Path.Combine(Path.GetFullPath("data"), "profiles"), options.ResolvedProfilesDir());
    }

    [Fact]
    public void Simulated_gpus_bind_from_indexed_keys_as_environment_variables_give_them()
    {
        var options = Resolve(new()
        {
            ["CfOrch:Gpus:Mode"] = "Simulated",
            ["CfOrch:Gpus:Simulated:0:Name"] = "RTX 4090",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "24576",
            ["CfOrch:Gpus:Simulated:1:Name"] = "RTX 3060",
            ["CfOrch:Gpus:Simulated:1:TotalMb"] = "12288",
            ["CfOrch:Gpus:Simulated:1:UsedMb"] = "500",
            ["CfOrch:Gpus:ReserveMb"] = "256",
        });

        Assert.Equal(GpuMode.Simulated, options.Gpus.ParsedMode());
        Assert.Equal(["RTX 4090", "RTX 3060"], options.Gpus.Simulated.Select(g => g.Name));
        Assert.Equal(500, options.Gpus.Simulated[1].UsedMb);
        Assert.Equal(256, options.Gpus.ReserveMb);
    }

    [Theory]
    [InlineData("CfOrch:Gpus:Mode", "cuda", "CfOrch:Gpus:Mode: 'cuda' is not one of auto, nvml, simulated, none")]
    [InlineData("CfOrch:Auth:AllowedHosts:0", "http://gpu-box", "CfOrch:Auth:AllowedHosts:0: 'http://gpu-box' is not a host name or IP address")]
    [InlineData("CfOrch:Auth:AllowedOrigins:0", "http://tools.lan/app", "CfOrch:Auth:AllowedOrigins:0: 'http://tools.lan/app' is not an origin")]
    [InlineData("CfOrch:Auth:AllowedOrigins:0", "tools.lan", "CfOrch:Auth:AllowedOrigins:0: 'tools.lan' is not an origin")]
    [InlineData("CfOrch:Auth:TrustedNetworks:0", "192.168.1.0/33", "CfOrch:Auth:TrustedNetworks:0: '192.168.1.0/33' is not an IP address or a CIDR network")]
    [InlineData("CfOrch:Auth:TrustedProxies:0", "proxy.lan", "CfOrch:Auth:TrustedProxies:0: 'proxy.lan' is not an IP address or a CIDR network")]
    [InlineData("CfOrch:Api:MaxStreams", "1", "CfOrch:Api:MaxStreams must be between 2 and 10000")]
    [InlineData("CfOrch:Api:MaxStreamsPerAddress", "0", "CfOrch:Api:MaxStreamsPerAddress must be between 1 and 10000")]
    [InlineData("CfOrch:NodeId", "my node", "CfOrch:NodeId: 'my node' is not a valid node id")]
    [InlineData("CfOrch:AdvertiseHost", "http://box:7700", "CfOrch:AdvertiseHost: 'http://box:7700' is not a host name")]
    [InlineData("CfOrch:Gpus:ReserveMb", "-1", "CfOrch:Gpus:ReserveMb must be between 0")]
    [InlineData("CfOrch:Gpus:PollIntervalSeconds", "0", "CfOrch:Gpus:PollIntervalSeconds must be between 0.1 and 3600")]
    [InlineData("CfOrch:Gpus:Simulated:0:TotalMb", "0", "CfOrch:Gpus:Simulated:0:TotalMb must be between 1")]
    [InlineData("CfOrch:Gpus:Simulated:0:UsedMb", "99999", "CfOrch:Gpus:Simulated:0:UsedMb must be between 0 and TotalMb")]
    [InlineData("CfOrch:Gpus:Simulated:0:TotalMb", "lots", "CfOrch:Gpus:Simulated:0:TotalMb: 'lots' is not a whole number")]
    [InlineData("CfOrch:Gpus:Simulated:2:Name", "third", "numbered 0, 1, 2… without gaps")]
    [InlineData("CfOrch:Gpus:ReserveMb", "1GB", "'CfOrch:Gpus:ReserveMb'")]
    [InlineData("CfOrch:Auth:AdminPassword", "short", "CfOrch:Auth:AdminPassword must have at least 8 characters")]
    [InlineData("CfOrch:Auth:AdminPasswordHash", "md5:abc", "CfOrch:Auth:AdminPasswordHash is not a hash made by 'hash-password'")]
    [InlineData("CfOrch:Auth:ApiTokens:0", "tiny", "CfOrch:Auth:ApiTokens:0 must have at least 16 characters")]
    [InlineData("CfOrch:Probes:StartTimeoutSeconds", "0", "CfOrch:Probes:StartTimeoutSeconds must be between 1")]
    [InlineData("CfOrch:Adoption:IntervalSeconds", "-1", "CfOrch:Adoption:IntervalSeconds must be between 0.1")]
    [InlineData("CfOrch:Role", "worker", "CfOrch:Role: 'worker' is not one of coordinator, agent.")]
    [InlineData("CfOrch:Role", "agent", "CfOrch:Agent:Coordinator: an agent needs its coordinator's URL")]
    [InlineData("CfOrch:Agent:AdvertiseUrl", "heimdall:7701", "CfOrch:Agent:AdvertiseUrl: 'heimdall:7701' is not an http:// or https:// URL.")]
    [InlineData("CfOrch:Cluster:Token", "short", "CfOrch:Cluster:Token must be at least 16 characters")]
    [InlineData("CfOrch:Cluster:PollSeconds", "0", "CfOrch:Cluster:PollSeconds must be between 1")]
    [InlineData("CfOrch:Docker:Endpoint", "/var/run/docker.sock", "CfOrch:Docker:Endpoint: '/var/run/docker.sock' is not a Docker endpoint")]
    public void A_bad_value_fails_naming_its_key(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?>
        {
            ["CfOrch:Gpus:Simulated:0:Name"] = "GPU",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "8192",
            [key] = value,
        };

        var ex = Assert.Throws<OptionsValidationException>(() => Resolve(settings));

        Assert.Contains(ex.Failures, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Simulated_mode_without_gpus_is_refused()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Resolve(new() { ["CfOrch:Gpus:Mode"] = "simulated" }));

        Assert.Contains(ex.Failures, f => f.StartsWith("CfOrch:Gpus:Simulated: Mode is 'simulated' but no GPU is configured", StringComparison.Ordinal));
    }

    private static CfOrchOptions Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging().AddCfOrchCore().BuildServiceProvider();
        return services.GetRequiredService<IOptions<CfOrchOptions>>().Value;
    }
}

public sealed class PasswordHashTests
{
    [Fact]
    public void A_hash_verifies_its_password_only()
    {
        var hash = PasswordHash.Create("correct horse battery");

        Assert.StartsWith("pbkdf2-sha256$210000$", hash, StringComparison.Ordinal);
        Assert.True(PasswordHash.IsWellFormed(hash));
        Assert.True(PasswordHash.Verify("correct horse battery", hash));
        Assert.False(PasswordHash.Verify("correct horse batterY", hash));
        Assert.NotEqual(hash, PasswordHash.Create("correct horse battery"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("plain-text-password")]
    [InlineData("pbkdf2-sha256$10$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==")]
    [InlineData("pbkdf2-sha256$210000$not base64$aGFzaGhhc2hoYXNoaGFzaA==")]
    public void Malformed_hashes_are_refused(string hash)
    {
        Assert.False(PasswordHash.IsWellFormed(hash));
        Assert.False(PasswordHash.Verify("anything", hash));
    }

    [Fact]
    public void Secrets_compare_by_value()
    {
        Assert.True(PasswordHash.SecretEquals("token-1234567890abcdef", "token-1234567890abcdef"));
        Assert.False(PasswordHash.SecretEquals("token-1234567890abcdef", "token-1234567890abcdeF"));
    }
}
