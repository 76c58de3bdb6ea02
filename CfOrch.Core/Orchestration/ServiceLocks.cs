using CfOrch.Core.Threading;
namespace CfOrch.Core.Orchestration;

/// <summary>
/// One async lock per service: starts, stops and crash restarts of a service are serialised by it, so a service is
/// never started twice and a stop never lands between a start's registration and its spawn.
/// </summary>
public sealed class ServiceLocks : IDisposable
{
    private readonly KeyedLock _locks = new();

    public Task<IDisposable> AcquireAsync(string service, CancellationToken cancellationToken) => _locks.AcquireAsync(service, cancellationToken);

    public void Dispose() => _locks.Dispose();
}
