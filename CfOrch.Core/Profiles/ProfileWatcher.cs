using CfOrch.Core.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Profiles;

/// <summary>
/// Notices profile files changed on disk (by an editor, a script, a copy) and reads the profiles again, a moment after
/// the last change: the dashboard shows the new text, a broken file keeps its last good version in use, and a file
/// open in the Profiles editor with unsaved edits is offered, never overwritten.
/// </summary>
public sealed partial class ProfileWatcher(ProfileRegistry registry, IOptions<CfOrchOptions> options, TimeProvider time, ILogger<ProfileWatcher> logger) : IDisposable
{
    /// <summary>Changes closer together than this are read once (an editor writes a file in several steps).</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private readonly Lock _lock = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private ITimer? _pending;
    private bool _disposed;

    /// <summary>Starts watching the profiles directory (and the file <c>CfOrch:Profile</c> names, when it is a path).</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_watchers.Count > 0 || _disposed)
            {
                return;
            }

            Watch(registry.ProfilesDir, "*.y*ml");
            if (options.Value.Profile?.Trim() is { Length: > 0 } named && (named.Contains('/', StringComparison.Ordinal) || named.EndsWith(".yaml", StringComparison.Ordinal) || named.EndsWith(".yml", StringComparison.Ordinal)))
            {
                var path = Path.GetFullPath(named);
                if (Path.GetDirectoryName(path) is { } dir && dir != registry.ProfilesDir)
                {
                    Watch(dir, Path.GetFileName(path));
                }
            }
        }
    }

    private void Watch(string dir, string filter)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }

        try
        {
            var watcher = new FileSystemWatcher(dir, filter) { NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size, IncludeSubdirectories = false };
            watcher.Changed += OnChange;
            watcher.Created += OnChange;
            watcher.Deleted += OnChange;
            watcher.Renamed += OnChange;
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // Too many watches (inotify limit), or a directory that vanished: profiles are then read on save and at start-up only.
            LogNotWatched(dir, ex.Message);
        }
    }

    private void OnChange(object sender, FileSystemEventArgs e)
    {
        if (e.Name?.EndsWith(".tmp", StringComparison.Ordinal) == true)
        {
            return;
        }

        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _pending?.Dispose();
            _pending = time.CreateTimer(_ => Reload(), null, Settle, Timeout.InfiniteTimeSpan);
        }
    }

    private void Reload()
    {
        try
        {
            registry.Reload();
            LogReloaded();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogNotWatched(registry.ProfilesDir, ex.Message);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _pending?.Dispose();
            foreach (var watcher in _watchers)
            {
                watcher.Dispose();
            }

            _watchers.Clear();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A profile file changed on disk; profiles read again")]
    private partial void LogReloaded();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Profile files in {Dir} are not watched ({Message}): changes made outside cf-orch are read at the next save or start")]
    private partial void LogNotWatched(string dir, string message);
}
