namespace CfOrch.Core.Orchestration;

/// <summary>
/// The instances the coordinator placed on other nodes, as an allocation claims one (see
/// <see cref="Allocator.AllocateOnAsync"/>): a claim and the undo of a start exclude each other per
/// instance, so an undo never stops what a claim made meanwhile holds, and a claim never lands on what an undo stopped.
/// </summary>
public interface IRemoteInstances
{
    /// <summary>
    /// Runs <paramref name="claim"/> under the instance's lock while the instance still runs the run of
    /// <paramref name="ensured"/> (the same <c>Since</c>, not stopping); false, with nothing run, when that run ended or
    /// is being stopped.
    /// </summary>
    Task<bool> ClaimAsync(Instances.InstanceSnapshot ensured, Action claim, CancellationToken cancellationToken);

    /// <summary>
    /// Stops an instance an allocation started there and then refused (through its agent, its lease released), unless
    /// it is allocated meanwhile, ended meanwhile or is another run by now; says which.
    /// </summary>
    Task<UndoOutcome> UndoStartAsync(Instances.InstanceSnapshot started, string reason);

    /// <summary>Starts again, through the agent, what the undone or failed start of <paramref name="undone"/> evicted there; says what became of each.</summary>
    Task<string> StartDisplacedAsync(Instances.InstanceSnapshot undone);
}
