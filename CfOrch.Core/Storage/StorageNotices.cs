namespace CfOrch.Core.Storage;

/// <summary>Something about cf-orch's storage the user must know (a damaged database that was set aside).</summary>
public sealed record StorageNotice(string Id, DateTimeOffset At, string Text);

/// <summary>The storage notices shown on every dashboard page until someone who may control cf-orch acknowledges them.</summary>
public sealed class StorageNotices
{
    private readonly Lock _lock = new();
    private List<StorageNotice> _notices = [];

    public event Action? Changed;

    public IReadOnlyList<StorageNotice> All
    {
        get
        {
            lock (_lock)
            {
                return _notices;
            }
        }
    }

    public void Add(StorageNotice notice)
    {
        lock (_lock)
        {
            _notices = [.. _notices, notice];
        }

        Changed?.Invoke();
    }

    public void Acknowledge(string id)
    {
        lock (_lock)
        {
            _notices = _notices.Where(n => n.Id != id).ToList();
        }

        Changed?.Invoke();
    }
}
