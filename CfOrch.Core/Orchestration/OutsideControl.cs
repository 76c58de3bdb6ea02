using System.Globalization;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>
/// Why cf-orch does not stop or restart an instance it adopted, and where the user can: the service manager that runs a
/// process (for Ollama, systemd), the engine or compose project that runs a container.
/// </summary>
public static class OutsideControl
{
    /// <summary>Why Stop is not offered, with what to run instead (a sentence).</summary>
    public static string WhyNotStop(InstanceSnapshot instance, ManagedSpec? spec)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return spec is DockerSpec docker
            ? $"{instance.Service} runs outside cf-orch ({Adopted(instance, docker)}): cf-orch never stops it. Stop it where it was started: {Docker("stop", instance, docker)}, or docker compose stop in its compose project."
            : $"{instance.Service} runs outside cf-orch (adopted): cf-orch never stops it. Stop it with its own service manager (for Ollama: systemctl stop ollama).";
    }

    /// <summary>Why a restart is refused, with what to run instead.</summary>
    public static string WhyNotRestart(InstanceSnapshot instance, ManagedSpec? spec)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return spec is DockerSpec docker
            ? $"{instance.Service} runs outside cf-orch ({Adopted(instance, docker)}): restart it where it was started: {Docker("restart", instance, docker)}, or docker compose restart in its compose project"
            : $"{instance.Service} runs outside cf-orch (adopted): restart it with its own service manager (for Ollama: systemctl restart ollama)";
    }

    /// <summary>The container's name: as found when it was adopted, else as the profile names it; null when neither says.</summary>
    private static string? Container(InstanceSnapshot instance, DockerSpec spec) => instance.Container ?? spec.ContainerName;

    private static string Adopted(InstanceSnapshot instance, DockerSpec spec) =>
        Container(instance, spec) is { } name ? $"adopted container {name}" : "an adopted container";

    private static string Docker(string verb, InstanceSnapshot instance, DockerSpec spec) =>
        Container(instance, spec) is { } name
            ? $"docker {verb} {name}"
            : string.Create(CultureInfo.InvariantCulture, $"docker {verb} the container that publishes port {spec.EffectivePort} (docker ps --filter publish={spec.EffectivePort} names it)");
}
