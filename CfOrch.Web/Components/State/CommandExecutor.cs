using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using MudBlazor;

namespace CfOrch.Web.Components.State;

/// <summary>
/// Every dashboard action goes through here (Aspire's command executor): the access policy is checked again, the
/// user confirms what asks for it, the action's key is "in flight" meanwhile (its buttons disable), and the outcome —
/// the engine's own message, or its error — shows in a snackbar. Nothing fails silently.
/// </summary>
public sealed partial class CommandExecutor(ISnackbar snackbar, IDialogService dialogs, SignedOutSessions signedOut, ILogger<CommandExecutor> logger)
{
    private readonly HashSet<string> _running = new(StringComparer.Ordinal);

    /// <summary>Raised when an action starts or ends (buttons re-render).</summary>
    public event Action? Changed;

    public bool IsRunning(string key)
    {
        lock (_running)
        {
            return _running.Contains(key);
        }
    }

    /// <summary>Runs <paramref name="action"/> if <paramref name="access"/> allows control (and the user confirms); returns whether it succeeded.</summary>
    public async Task<bool> RunAsync(Access access, string key, string? confirm, Func<CancellationToken, Task<string>> action, string? confirmButton = null)
    {
        ArgumentNullException.ThrowIfNull(access);
        ArgumentNullException.ThrowIfNull(action);
        if (!access.CanControl)
        {
            snackbar.Add(access.Reason ?? "Read-only.", Severity.Warning);
            return false;
        }

        if (signedOut.IsSignedOut(access.Session))
        {
            snackbar.Add("You signed out (in this tab or another one): reload the page, and sign in again to control cf-orch.", Severity.Warning, o => o.RequireInteraction = true);
            return false;
        }

        if (confirm is not null && await dialogs.ShowMessageBoxAsync("Are you sure?", confirm, yesText: confirmButton ?? "Yes", cancelText: "Cancel") != true)
        {
            return false;
        }

        lock (_running)
        {
            if (!_running.Add(key))
            {
                return false;
            }
        }

        Changed?.Invoke();
        try
        {
            var message = await action(CancellationToken.None);
            snackbar.Add(message, Severity.Success);
            return true;
        }
        catch (Exception ex) when (ex is OrchestrationException or ProfileException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            snackbar.Add(ex.Message, Severity.Error, o => o.RequireInteraction = true);
            return false;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A bug, not the user's mistake: it must not end the user's session; it is logged with its stack trace.
            LogUnexpected(ex, key);
            snackbar.Add($"Something went wrong in cf-orch ({ex.GetType().Name}: {ex.Message}); the details are in its log.", Severity.Error, o => o.RequireInteraction = true);
            return false;
        }
        finally
        {
            lock (_running)
            {
                _running.Remove(key);
            }

            Changed?.Invoke();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Dashboard action {Key} failed unexpectedly")]
    private partial void LogUnexpected(Exception ex, string key);
}
