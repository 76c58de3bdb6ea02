using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;

namespace CfOrch.Web.Components.Controls;

/// <summary>
/// One row of the service table: an instance, or a service of the profile that is not running. Rows are equal when
/// they are the same service on the same node and GPU: the table keys its rows by item, so a row whose instance changed (a
/// probe, a new measurement) is updated in place instead of being replaced — a click on it is never lost.
/// </summary>
public sealed record ServiceRowModel(string Service, InstanceSnapshot? Instance, ServiceProfile? Profile, DateTimeOffset Now)
{
    public bool Equals(ServiceRowModel? other) =>
        other is not null && other.Service == Service && other.Instance?.Key.GpuIndex == Instance?.Key.GpuIndex && other.Instance?.Key.NodeId == Instance?.Key.NodeId;

    public override int GetHashCode() => HashCode.Combine(Service, Instance?.Key.GpuIndex, Instance?.Key.NodeId);

    public long BudgetMb => Instance?.BudgetMb ?? Profile?.MaxMb ?? 0;

    /// <summary>Sorts the VRAM column: by what is measurably used, then by budget.</summary>
    public (long Used, long Budget) UsedSort => (Instance?.MeasuredMb ?? 0, BudgetMb);

    /// <summary>Sorts the Node column: rows not placed anywhere first.</summary>
    public string NodeSort => Instance?.Key.NodeId ?? "";

    public string StateName => Instance?.State.ToString().ToLowerInvariant() ?? "not running";

    public double UptimeSort => Instance is { ReadyAt: { } ready } && Instance.IsServing ? (Now - ready).TotalSeconds : -1;

    public string LaunchKind => Profile?.Managed switch
    {
        ProcessSpec => "process",
        DockerSpec => "docker",
        _ => "budget only",
    };

    public string SearchText => $"{Service} {Instance?.Key.NodeId} {StateName} {Instance?.Origin.ToString() ?? ""} {(Instance?.Origin == InstanceOrigin.Adopted ? "adopted outside" : "")} {Instance?.Model} {LaunchKind}";
}
