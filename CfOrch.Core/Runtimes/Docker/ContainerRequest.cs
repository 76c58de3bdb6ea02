using System.Globalization;
using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;
using CfOrch.Core.Supervision;
using Docker.DotNet.Models;

namespace CfOrch.Core.Runtimes.Docker;

/// <summary>
/// What cf-orch asks the engine to create for one start of a <c>type: docker</c> service: its name, labels, command,
/// environment, ports, volumes and the GPU of its lease — nothing the profile does not say, and never all GPUs.
/// </summary>
public static class ContainerRequest
{
    public const string ServiceLabel = "cf-orch.service";
    public const string NodeLabel = "cf-orch.node";
    public const string GpuLabel = "cf-orch.gpu";
    public const string RunLabel = "cf-orch.run";

    /// <summary>Which cf-orch started it (node and data directory, hashed): another cf-orch on the same engine never takes it.</summary>
    public const string OwnerLabel = "cf-orch.owner";
    public const string UrlLabel = "cf-orch.url";
    public const string HealthLabel = "cf-orch.health-path";
    public const string BudgetLabel = "cf-orch.budget-mb";
    public const string ModelLabel = "cf-orch.model";

    /// <summary>The container of an instance: <c>cf-orch-{service}-gpu{n}</c>.</summary>
    public static string Name(InstanceKey key) => string.Create(CultureInfo.InvariantCulture, $"cf-orch-{key.Service}-gpu{key.GpuIndex}");

    /// <summary>The engine's create request; <paramref name="gpuDevice"/> is the lease's GPU (UUID or index), null for none.</summary>
    public static CreateContainerParameters Build(DockerSpec spec, InstanceKey key, string? model, string? gpuDevice, string owner, DateTimeOffset run, long budgetMb)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var values = new Dictionary<string, string>
        {
            ["port"] = spec.Port.ToString(CultureInfo.InvariantCulture),
            ["gpu_id"] = key.GpuIndex.ToString(CultureInfo.InvariantCulture),
            ["model"] = model ?? "",
        };
        var command = ArgsTemplate.Expand(spec.CommandTemplate, values);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ServiceLabel] = key.Service,
            [NodeLabel] = key.NodeId,
            [GpuLabel] = key.GpuIndex.ToString(CultureInfo.InvariantCulture),
            [RunLabel] = run.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            [OwnerLabel] = owner,
            [UrlLabel] = spec.LocalUrl,
            [HealthLabel] = spec.HealthPath,
            [BudgetLabel] = budgetMb.ToString(CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(model))
        {
            labels[ModelLabel] = model;
        }

        var portKey = string.Create(CultureInfo.InvariantCulture, $"{spec.Port}/tcp");
        var host = new HostConfig
        {
            Binds = spec.Volumes.Count > 0 ? spec.Volumes.ToList() : null!,
            Runtime = string.IsNullOrEmpty(spec.Runtime) ? null! : spec.Runtime,
            IpcMode = string.IsNullOrEmpty(spec.Ipc) ? null! : spec.Ipc,
            NetworkMode = string.IsNullOrEmpty(spec.Network) ? null! : spec.Network,
            ShmSize = spec.ShmSizeBytes ?? 0,
            Init = spec.Init,
            DeviceRequests = gpuDevice is null ? null! :
            [
                new DeviceRequest { Driver = "nvidia", DeviceIDs = [gpuDevice], Capabilities = [["gpu"]] },
            ],
            PortBindings = spec.HostNetwork ? null! : new Dictionary<string, IList<PortBinding>>
            {
                [portKey] = [new PortBinding { HostIP = spec.Host, HostPort = spec.EffectivePort.ToString(CultureInfo.InvariantCulture) }],
            },
        };
        return new CreateContainerParameters
        {
            Name = Name(key),
            Image = spec.Image,
            Cmd = command.Count > 0 ? command.ToList() : null!,
            Env = spec.Env.Select(e => $"{e.Key}={e.Value}").ToList(),
            Labels = labels,
            User = spec.User!,
            Tty = false,
            ExposedPorts = spec.HostNetwork ? null! : new Dictionary<string, EmptyStruct> { [portKey] = default },
            HostConfig = host,
        };
    }

    /// <summary>The instance a labelled container is of, or null when the labels are not cf-orch's.</summary>
    public static InstanceKey? KeyOf(IDictionary<string, string>? labels) =>
        labels is not null && labels.TryGetValue(ServiceLabel, out var service) && labels.TryGetValue(NodeLabel, out var node)
        && labels.TryGetValue(GpuLabel, out var gpuText) && int.TryParse(gpuText, NumberStyles.None, CultureInfo.InvariantCulture, out var gpu)
            ? new InstanceKey(service, node, gpu)
            : null;

    /// <summary>When the run began, from its label.</summary>
    public static DateTimeOffset? RunOf(IDictionary<string, string>? labels) =>
        labels is not null && labels.TryGetValue(RunLabel, out var text)
        && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at) ? at : null;
}
