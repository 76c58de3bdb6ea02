using CfOrch.Core.Profiles;

namespace CfOrch.Tests.Profiles;

public sealed class ProfileParserTests
{
    private const string Valid = """
        schema_version: 1
        name: my-box
        vram_total_mb: 8192
        services:
          ollama:
            max_mb: 4096
            priority: 1
            managed:
              type: process
              adopt: true
              exec_path: /usr/local/bin/ollama
              args_template: serve
              port: 11434
              host_port: 11434
              health_path: /api/tags
        """;

    /// <summary>A container service with only what is required.</summary>
    private const string Container = """
        schema_version: 1
        name: p
        services:
          vllm:
            max_mb: 100
            priority: 2
            managed:
              type: docker
              image: vllm/vllm-openai:latest
              port: 8000
              host_port: 8000
        """;

    [Fact]
    public void A_valid_profile_is_read_with_its_defaults()
    {
        var profile = ProfileParser.Parse(Valid, "my.yaml");

        Assert.Equal("my-box", profile.Name);
        Assert.Equal(8192, profile.VramTotalMb);
        Assert.Equal(10.0, profile.EvictionTimeoutS);
        var ollama = profile.Services["ollama"];
        Assert.Equal(4096, ollama.MaxMb);
        Assert.Equal(1, ollama.MaxConcurrent);
        var spec = Assert.IsType<ProcessSpec>(ollama.Managed);
        Assert.True(spec.Adopt);
        Assert.Equal("/api/tags", spec.HealthPath);
        Assert.Equal("127.0.0.1", spec.Host);
        Assert.Equal(11434, spec.EffectivePort);
        Assert.Equal((RestartPolicy.Never, 3), (spec.Restart, spec.MaxRestarts));
    }

    [Fact]
    public void A_process_may_be_restarted_on_failure_a_number_of_times()
    {
        var yaml = Valid.Replace("      health_path: /api/tags", "      health_path: /api/tags\n      restart: on-failure\n      max_restarts: 5", StringComparison.Ordinal);

        var spec = Assert.IsType<ProcessSpec>(ProfileParser.Parse(yaml, "my.yaml").Services["ollama"].Managed);

        Assert.Equal((RestartPolicy.OnFailure, 5), (spec.Restart, spec.MaxRestarts));
    }

    [Theory]
    [InlineData("      restart: always", "services.ollama.managed.restart", 16, "unknown restart policy 'always' (expected 'never' or 'on-failure')")]
    [InlineData("      max_restarts: 0", "services.ollama.managed.max_restarts", 21, "between 1 and 100")]
    public void A_bad_restart_policy_is_refused_where_it_is_written(string line, string path, int column, string message)
    {
        var yaml = Valid.Replace("      health_path: /api/tags", "      health_path: /api/tags\n" + line, StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal((path, 16, column), (error.Path, error.Line, error.Column));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_container_has_the_restart_policy_of_a_process_and_its_own_keys()
    {
        var yaml = Container + "\n" + string.Join("\n", new[]
        {
            "      restart: on-failure",
            "      max_restarts: 4",
            "      command_template: --model {model} --port {port}",
            "      volumes:",
            "        - hf-cache:/root/.cache/huggingface",
            "        - /srv/models:/models:ro",
            "      container_name: my-vllm",
            "      shm_size: 8g",
            "      user: \"1000:1000\"",
            "      init: true",
            "      pull: always",
            "      runtime: \"\"",
        });

        var spec = Assert.IsType<DockerSpec>(ProfileParser.Parse(yaml, "p.yaml").Services["vllm"].Managed);

        Assert.Equal((RestartPolicy.OnFailure, 4), (spec.Restart, spec.MaxRestarts));
        Assert.Equal(["hf-cache:/root/.cache/huggingface", "/srv/models:/models:ro"], spec.Volumes);
        Assert.Equal("my-vllm", spec.ContainerName);
        Assert.Equal(8L << 30, spec.ShmSizeBytes);
        Assert.Equal("1000:1000", spec.User);
        Assert.True(spec.Init);
        Assert.Equal(PullPolicy.Always, spec.Pull);
        Assert.Equal("", spec.Runtime);
        Assert.False(spec.HostNetwork);
    }

    [Fact]
    public void With_host_networking_a_container_needs_no_host_port()
    {
        var yaml = Container.Replace("      host_port: 8000", "      network: host", StringComparison.Ordinal);

        var spec = Assert.IsType<DockerSpec>(ProfileParser.Parse(yaml, "p.yaml").Services["vllm"].Managed);

        Assert.True(spec.HostNetwork);
        Assert.Equal("http://127.0.0.1:8000", spec.LocalUrl);
    }

    [Theory]
    [InlineData("      exec_path: /usr/bin/vllm", "services.vllm.managed.exec_path", "applies to type: process only")]
    [InlineData("      pull: sometimes", "services.vllm.managed.pull", "unknown pull policy 'sometimes' (expected 'missing', 'always' or 'never')")]
    [InlineData("      shm_size: lots", "services.vllm.managed.shm_size", "'lots' is not a size (for example 8g, 512m or 1073741824)")]
    [InlineData("      container_name: -bad", "services.vllm.managed.container_name", "'-bad' is not a container name")]
    [InlineData("      volumes: [cache]", "services.vllm.managed.volumes", "'cache': expected source:/path/in/container[:ro]")]
    [InlineData("      volumes: [\"cache:relative\"]", "services.vllm.managed.volumes", "the path in the container ('relative') must be absolute")]
    [InlineData("      network: \"a b\"", "services.vllm.managed.network", "is not a network name")]
    [InlineData("      unload_idle_models: true", "services.vllm.managed.unload_idle_models", "applies to services that speak Ollama's API")]
    [InlineData("      unload_idle_models: sometimes", "services.vllm.managed.unload_idle_models", "")]
    public void A_container_key_that_cannot_be_used_is_refused_where_it_is_written(string line, string path, string message)
    {
        var yaml = Container + "\n" + line;

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "p.yaml")).Errors);

        Assert.Equal((path, 12), (error.Path, error.Line));
        Assert.True(error.Column > 0);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_container_key_on_a_process_is_refused_where_it_is_written()
    {
        var yaml = Valid + "\n      image: ollama/ollama";

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal(("services.ollama.managed.image", 16, 14), (error.Path, error.Line, error.Column));
        Assert.Contains("applies to type: docker only", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_always_on_service_whose_template_needs_a_model_is_refused_at_the_template()
    {
        var yaml = Valid.Replace("    priority: 1\n", "    priority: 1\n    always_on: true\n", StringComparison.Ordinal)
            .Replace("args_template: serve", "args_template: serve --model {model}", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal(("services.ollama.managed.args_template", 13), (error.Path, error.Line));
        Assert.Contains("nothing names a model: {model} would be empty", error.Message, StringComparison.Ordinal);
        Assert.NotNull(ProfileParser.Parse(yaml.Replace("    always_on: true\n", "", StringComparison.Ordinal), "f.yaml").Services["ollama"]);
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("\n      unload_idle_models: false", false)]
    [InlineData("\n      unload_idle_models: true", true)]
    public void Unload_idle_models_is_read_for_an_ollama(string line, bool? expected)
    {
        Assert.Equal(expected, ProfileParser.Parse(Valid + line, "f.yaml").Services["ollama"].Managed!.UnloadIdleModels);
    }

    [Fact]
    public void Adopt_defaults_to_false_and_health_path_to_slash_health()
    {
        var profile = ProfileParser.Parse(Container, "p.yaml");

        var spec = Assert.IsType<DockerSpec>(profile.Services["vllm"].Managed);
        Assert.False(spec.Adopt);
        Assert.Equal("/health", spec.HealthPath);
        Assert.Equal("nvidia", spec.Runtime);
        Assert.Equal("host", spec.Ipc);
    }

    [Fact]
    public void A_typo_in_a_key_is_reported_with_file_line_column_and_path()
    {
        var yaml = Valid.Replace("      port: 11434", "      prot: 11434", StringComparison.Ordinal);

        var ex = Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "/etc/cf-orch/my.yaml"));

        var error = Assert.Single(ex.Errors);
        Assert.Equal("/etc/cf-orch/my.yaml", error.File);
        Assert.Equal(13, error.Line);
        Assert.Equal(7, error.Column);
        Assert.Equal("services.ollama.managed.prot", error.Path);
        Assert.Contains("unknown key 'prot'", error.Message, StringComparison.Ordinal);
        Assert.Contains("did you mean 'port'", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("/etc/cf-orch/my.yaml:13:7: services.ollama.managed.prot:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_type_names_what_was_expected_and_found()
    {
        var yaml = Valid.Replace("max_mb: 4096", "max_mb: lots", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.ollama.max_mb", error.Path);
        Assert.Equal(6, error.Line);
        Assert.Equal(13, error.Column);
        Assert.Contains("expected a whole number, found 'lots'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_required_field_is_reported_at_its_mapping()
    {
        var yaml = Valid.Replace("    priority: 1\n", "", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.ollama.priority", error.Path);
        Assert.Contains("required key 'priority' is missing", error.Message, StringComparison.Ordinal);
        Assert.Equal(6, error.Line);
    }

    [Fact]
    public void An_unsupported_schema_version_is_refused()
    {
        var yaml = Valid.Replace("schema_version: 1", "schema_version: 2", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("schema_version", error.Path);
        Assert.Equal(1, error.Line);
        Assert.Contains("unsupported schema_version 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_yaml_syntax_error_carries_its_position()
    {
        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse("schema_version: 1\nname: [unclosed\n", "f.yaml")).Errors);

        Assert.Contains("YAML syntax error", error.Message, StringComparison.Ordinal);
        Assert.True(error.Line >= 2, $"line {error.Line}");
    }

    [Fact]
    public void Every_error_of_a_file_is_reported_at_once()
    {
        var yaml = """
            schema_version: 1
            name: p
            colour: blue
            services:
              a:
                max_mb: -5
                priority: 1
                managed:
                  type: process
                  exec_path: /bin/a
                  args_template: --port {prot}
                  health_path: health
            """;

        var errors = Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors;

        Assert.Contains(errors, e => e.Path == "colour");
        Assert.Contains(errors, e => e.Path == "services.a.max_mb" && e.Message.Contains("between 0", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Path == "services.a.managed.args_template" && e.Message.Contains("{prot}", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Path == "services.a.managed.health_path");
        Assert.Equal(4, errors.Count);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("- a\n- b\n", "must be a YAML mapping")]
    [InlineData("schema_version: 1\n---\nschema_version: 1\n", "more than one YAML document")]
    public void Files_that_are_not_one_mapping_are_refused(string yaml, string expected)
    {
        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_keys_are_refused()
    {
        var yaml = "schema_version: 1\nname: a\nname: b\n";

        var errors = Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors;

        Assert.Contains(errors, e => e.Message.Contains("Duplicate key name", StringComparison.Ordinal) && e.Line == 3);
    }

    [Fact]
    public void An_unknown_managed_type_is_refused()
    {
        var yaml = Valid.Replace("type: process", "type: podman", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.ollama.managed.type", error.Path);
        Assert.Contains("unknown managed type 'podman'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_budget_above_the_profiles_vram_total_is_refused()
    {
        var yaml = Valid.Replace("max_mb: 4096", "max_mb: 9000", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.ollama.max_mb", error.Path);
        Assert.Contains("more than the profile's vram_total_mb", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_services_on_one_address_are_refused()
    {
        var yaml = Valid + """

              other:
                max_mb: 10
                priority: 2
                managed:
                  type: process
                  exec_path: /bin/other
                  port: 11434
            """;

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.other.managed", error.Path);
        Assert.Contains("also the address of service 'ollama'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gpu_pinning_is_read_and_checked()
    {
        var pinned = ProfileParser.Parse(Valid.Replace("    priority: 1\n", "    priority: 1\n    gpus: [1, 0]\n", StringComparison.Ordinal), "f.yaml");
        Assert.Equal([1, 0], pinned.Services["ollama"].Gpus);

        var error = Assert.Single(Assert.Throws<ProfileException>(() =>
            ProfileParser.Parse(Valid.Replace("    priority: 1\n", "    priority: 1\n    gpus: [1, 1]\n", StringComparison.Ordinal), "f.yaml")).Errors);
        Assert.Equal("services.ollama.gpus[1]", error.Path);
    }

    [Fact]
    public void Adopt_without_a_port_is_refused()
    {
        var yaml = Valid.Replace("      port: 11434\n      host_port: 11434\n", "", StringComparison.Ordinal);

        var error = Assert.Single(Assert.Throws<ProfileException>(() => ProfileParser.Parse(yaml, "f.yaml")).Errors);

        Assert.Equal("services.ollama.managed.adopt", error.Path);
    }

    [Fact]
    public void Cf_orch_fields_backend_consumers_hints_and_nodes_are_accepted()
    {
        var profile = ProfileParser.Parse("""
            schema_version: 1
            name: multi
            services:
              cf-stt:
                max_mb: 1200
                priority: 2
                shared: true
                max_concurrent: 2
                backend: parakeet-tdt
                consumers: [a, b]
            model_size_hints:
              llm_max_params: 8b
            nodes:
              heimdall:
                agent_url: http://10.0.0.2:7701
                gpus:
                  - id: 0
                    vram_mb: 8192
                    role: inference
                    card: RTX 4060
                    services: [cf-stt]
            """, "multi.yaml");

        Assert.Equal("parakeet-tdt", profile.Services["cf-stt"].Backend);
        Assert.Equal(["a", "b"], profile.Services["cf-stt"].Consumers);
        Assert.Equal("8b", profile.ModelSizeHints["llm_max_params"]);
        var gpu = Assert.Single(profile.Nodes["heimdall"].Gpus);
        Assert.Equal("RTX 4060", gpu.Card);
    }
}
