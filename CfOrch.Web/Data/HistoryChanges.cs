namespace CfOrch.Web.Data;

/// <summary>
/// Says when new history rows are in the database (lease events written by <see cref="HistoryWriter"/>, GPU samples),
/// so an open History page reloads exactly then instead of guessing when the writer has caught up.
/// </summary>
public sealed class HistoryChanges
{
    public event Action? Written;

    public void Notify() => Written?.Invoke();
}
