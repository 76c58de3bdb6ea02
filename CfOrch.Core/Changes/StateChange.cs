namespace CfOrch.Core.Changes;

/// <summary>
/// One change of the engine's state, as pushed to the dashboard and the event stream. Each part defines its own
/// changes (instances, leases, allocations) and publishes them through <see cref="IStatePublisher"/>; the state
/// stream, above them all, applies and fans them out.
/// </summary>
public abstract record StateChange;

/// <summary>Where the parts of the engine publish their changes (the state stream).</summary>
public interface IStatePublisher
{
    void Publish(StateChange change);
}
