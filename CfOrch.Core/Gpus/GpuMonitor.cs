using Microsoft.Extensions.Logging;

namespace CfOrch.Core.Gpus;

/// <summary>Holds the latest reading of the GPU inventory and tells subscribers when a new one arrives.</summary>
public sealed partial class GpuMonitor
{
    private readonly IGpuInventory _inventory;
    private readonly TimeProvider _time;
    private readonly ILogger<GpuMonitor> _logger;
    private readonly Lock _refreshLock = new();
    private GpuSnapshot _current;

    public GpuMonitor(IGpuInventory inventory, TimeProvider time, ILogger<GpuMonitor> logger)
    {
        _inventory = inventory;
        _time = time;
        _logger = logger;
        _current = GpuSnapshot.Empty(inventory.Source, inventory.Detail);
        Refresh();
    }

    public event Action<GpuSnapshot>? Changed;

    public GpuSnapshot Current => Volatile.Read(ref _current);

    public IGpuInventory Inventory => _inventory;

    /// <summary>
    /// Reads the inventory now and publishes the result. A failed reading keeps the last good figures and publishes them
    /// marked with the error (<see cref="GpuSnapshot.ReadError"/>), so that nobody mistakes them for fresh ones.
    /// </summary>
    public GpuSnapshot Refresh()
    {
        GpuSnapshot snapshot;
        lock (_refreshLock)
        {
            try
            {
                snapshot = new GpuSnapshot(_time.GetUtcNow(), _inventory.Source, _inventory.Read(), _inventory.Detail);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                var last = Current;
                if (last.ReadError is null)
                {
                    // Once per run of failures, not every poll.
                    LogReadFailed(ex);
                }

                snapshot = last with { ReadError = ex.Message, ReadFailedAt = _time.GetUtcNow() };
            }

            Volatile.Write(ref _current, snapshot);
        }

        Changed?.Invoke(snapshot);
        return snapshot;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the GPU inventory failed")]
    private partial void LogReadFailed(Exception ex);
}
