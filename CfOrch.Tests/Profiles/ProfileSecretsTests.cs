using CfOrch.Core.Profiles;

namespace CfOrch.Tests.Profiles;

public sealed class ProfileSecretsTests
{
    private const string M = ProfileSecrets.Mask;

    /// <summary>A valid profile with secrets in a process's env and a container's env, in every YAML style.</summary>
    private const string Profile = """
        # cf-orch profile
        schema_version: 1
        name: box
        services:
          vllm:
            max_mb: 100
            priority: 1
            managed:
              type: process
              exec_path: /usr/bin/vllm
              port: 8000
              env:
                HF_TOKEN: hf_plain   # the token
                OPENAI_API_KEY: "sk-double"
                DB_PASSWORD: 'single'
                AWS_SECRET_ACCESS_KEY: |
                  line one
                  line two
                GOOGLE_APPLICATION_CREDENTIALS: >-
                  /secrets/folded.json
                CUDA_VISIBLE_DEVICES: "0"
                MODEL_PATH: /models
          comfy:
            max_mb: 100
            priority: 2
            managed:
              type: docker
              image: comfy:latest
              port: 8188
              host_port: 8188
              env: {HF_TOKEN: hf_flow, PATH: /usr/bin}
        """;

    private const string Masked = $"""
        # cf-orch profile
        schema_version: 1
        name: box
        services:
          vllm:
            max_mb: 100
            priority: 1
            managed:
              type: process
              exec_path: /usr/bin/vllm
              port: 8000
              env:
                HF_TOKEN: {M}   # the token
                OPENAI_API_KEY: {M}
                DB_PASSWORD: {M}
                AWS_SECRET_ACCESS_KEY: {M}
                GOOGLE_APPLICATION_CREDENTIALS: {M}
                CUDA_VISIBLE_DEVICES: "0"
                MODEL_PATH: /models
          comfy:
            max_mb: 100
            priority: 2
            managed:
              type: docker
              image: comfy:latest
              port: 8188
              host_port: 8188
              env: {"{"}HF_TOKEN: {M}, PATH: /usr/bin{"}"}
        """;

    [Theory]
    [InlineData("HF_TOKEN", true)]
    [InlineData("OPENAI_API_KEY", true)]
    [InlineData("DB_PASSWORD", true)]
    [InlineData("AWS_SECRET_ACCESS_KEY", true)]
    [InlineData("GOOGLE_APPLICATION_CREDENTIALS", true)]
    [InlineData("hf_token", true)]
    [InlineData("PASSTHROUGH", true)]
    [InlineData("CUDA_VISIBLE_DEVICES", false)]
    [InlineData("MODEL_PATH", false)]
    [InlineData("HF_HOME", false)]
    public void A_key_is_secret_when_it_contains_a_secret_word(string key, bool secret) =>
        Assert.Equal(secret, ProfileSecrets.IsSecretKey(key));

    [Fact]
    public void Secret_env_values_are_masked_in_every_style_and_nothing_else_changes()
    {
        Assert.Equal(Masked, ProfileSecrets.MaskYaml(Profile));
    }

    [Fact]
    public void The_masked_text_of_a_valid_profile_is_still_a_valid_profile()
    {
        var profile = ProfileParser.Parse(ProfileSecrets.MaskYaml(Profile), "box.yaml");

        var env = profile.Services["vllm"].Managed!.Env;
        Assert.Equal(M, env["HF_TOKEN"]);
        Assert.Equal(M, env["AWS_SECRET_ACCESS_KEY"]);
        Assert.Equal("0", env["CUDA_VISIBLE_DEVICES"]);
        Assert.Equal(new Dictionary<string, string> { ["HF_TOKEN"] = M, ["PATH"] = "/usr/bin" }, profile.Services["comfy"].Managed!.Env);
    }

    [Fact]
    public void Keys_named_like_secrets_outside_env_are_not_masked()
    {
        // Only env values are secrets; a profile has no other place for one.
        const string Yaml = "token: abc\nservices:\n  a:\n    backend: key-server\n    consumers: [password]\n    env_like: {HF_TOKEN: x}\n";

        Assert.Equal(Yaml, ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void A_block_scalar_is_replaced_on_its_keys_line_and_keeps_the_line_ending()
    {
        const string Yaml = "env:\r\n  HF_TOKEN: |+\r\n    a\r\n\r\n  OTHER: x\r\nlast:\r\n  env:\r\n    KEY: >\r\n      b";

        Assert.Equal($"env:\r\n  HF_TOKEN: {M}\r\n  OTHER: x\r\nlast:\r\n  env:\r\n    KEY: {M}", ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void Anchors_tags_and_aliases_are_kept_and_what_an_alias_repeats_is_masked()
    {
        const string Yaml = """
            shared: &tok hf_elsewhere
            block: &envs {API_KEY: k, HOME: /h}
            a:
              env:
                HF_TOKEN: *tok
                SECRET: &s !!str tagged
            b:
              env: *envs
            """;

        Assert.Equal($"""
            shared: &tok {M}
            block: &envs {"{"}API_KEY: {M}, HOME: /h{"}"}
            a:
              env:
                HF_TOKEN: *tok
                SECRET: &s !!str {M}
            b:
              env: *envs
            """, ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void An_alias_of_an_anchor_name_used_twice_repeats_the_node_named_last()
    {
        // The inner mapping takes the name &e after the outer one: env: *e is the inner mapping, whose token is masked.
        const string Yaml = "x: &e {a: &e {HF_TOKEN: t}, DB_PASSWORD: p}\nsvc:\n  env: *e\n";

        Assert.Equal($"x: &e {{a: &e {{HF_TOKEN: {M}}}, DB_PASSWORD: p}}\nsvc:\n  env: *e\n", ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void A_secret_whose_value_is_a_list_or_mapping_has_every_value_masked()
    {
        const string Yaml = "env:\n  TOKENS: [a, b]\n  PASS_MAP: {user: u}\n  EMPTY_TOKEN:\n";

        Assert.Equal($"env:\n  TOKENS: [{M}, {M}]\n  PASS_MAP: {"{"}user: {M}{"}"}\n  EMPTY_TOKEN:\n", ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void An_env_written_as_a_list_of_name_value_items_has_its_secret_items_masked()
    {
        // Not a valid profile (env is a mapping), but shown all the same: it must not leak.
        const string Yaml = "env:\n  - HF_TOKEN=hf_abc\n  - PATH=/bin\n  - \"DB_PASSWORD=p\"\n  - KEY\n";

        Assert.Equal($"env:\n  - HF_TOKEN={M}\n  - PATH=/bin\n  - {M}\n  - KEY\n", ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void Broken_yaml_is_masked_line_by_line_wherever_a_secret_key_is()
    {
        const string Yaml = """
            services: [unclosed
              env:
                HF_TOKEN: "hf_broken
                CUDA_VISIBLE_DEVICES: 0
                - DB_PASSWORD: p # comment
                CERT_KEY: |
                  -----BEGIN-----
                  abc
                NEXT: n
            top_token: t
            inline: {OPENAI_API_KEY: "sk, with comma", PATH: /bin, 'AWS_SECRET': s}
            """;

        Assert.Equal($"""
            services: [unclosed
              env:
                HF_TOKEN: {M}
                CUDA_VISIBLE_DEVICES: 0
                - DB_PASSWORD: {M}
                CERT_KEY: {M}
                NEXT: n
            top_token: {M}
            inline: {"{"}OPENAI_API_KEY: {M}, PATH: /bin, 'AWS_SECRET': {M}{"}"}
            """, ProfileSecrets.MaskYaml(Yaml));
    }

    [Fact]
    public void Yaml_over_a_limit_is_masked_line_by_line_instead_of_parsed()
    {
        var deep = "a: " + new string('[', 100) + new string(']', 100) + "\nenv:\n  HF_TOKEN: x\ntoken: y\n";
        var big = "env:\n  HF_TOKEN: x\n# " + new string('x', ProfileParser.MaxFileBytes) + "\n";

        Assert.Equal("a: " + new string('[', 100) + new string(']', 100) + $"\nenv:\n  HF_TOKEN: {M}\ntoken: {M}\n", ProfileSecrets.MaskYaml(deep));
        Assert.StartsWith($"env:\n  HF_TOKEN: {M}\n# xxx", ProfileSecrets.MaskYaml(big), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData(":")]
    [InlineData("env: *missing")]
    [InlineData("env: &a {K: *a}")]
    [InlineData("\uFEFFenv: {HF_TOKEN: x}")]
    [InlineData("env:\n  HF_TOKEN: \"\\u00e9\n")]
    [InlineData("- - - : : [ { ] }")]
    public void Any_text_is_masked_without_throwing(string yaml)
    {
        var masked = ProfileSecrets.MaskYaml(yaml);

        Assert.DoesNotContain("HF_TOKEN: x", masked, StringComparison.Ordinal);
    }

    [Fact]
    public void An_env_map_is_masked_by_its_names()
    {
        var env = new Dictionary<string, string> { ["HF_TOKEN"] = "hf", ["CUDA_VISIBLE_DEVICES"] = "0", ["db_password"] = "p" };

        Assert.Equal(new Dictionary<string, string> { ["HF_TOKEN"] = M, ["CUDA_VISIBLE_DEVICES"] = "0", ["db_password"] = M }, ProfileSecrets.MaskEnv(env));
    }

    [Fact]
    public void A_key_written_by_alias_is_the_key_of_its_anchor_and_an_unknown_key_fails_closed()
    {
        const string Yaml = """
            a:
              env: { &k HF_TOKEN: "first-secret" }
            b:
              env:
                *k : "ALIASKEY-secret-two"
                &p PATH: /usr/bin
            c:
              &e env: { X: 1 }
            d:
              *e : { OPENAI_API_KEY: "aliased-env-secret" }
            e:
              env:
                ? [complex, key]
                : "complex-secret"
            """;

        var masked = ProfileSecrets.MaskYaml(Yaml);

        Assert.DoesNotContain("secret", masked, StringComparison.Ordinal);
        Assert.Contains("PATH: /usr/bin", masked, StringComparison.Ordinal);
        Assert.Contains($"*k : {M}", masked, StringComparison.Ordinal);
    }
}
