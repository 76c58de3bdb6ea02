namespace CfOrch.Core.Supervision;

/// <summary>
/// What to start: the program, its argv (already split, see <see cref="ArgsTemplate"/>), its working directory (null or
/// empty: the current directory), the environment variables set on top of this process's own, a name for logs, and
/// where its output goes: <c>{LogPath}.out.log</c> and <c>{LogPath}.err.log</c> (null: a fresh temporary path).
/// </summary>
public sealed record ProcessLaunchSpec(
    string ExecPath,
    IReadOnlyList<string> Arguments,
    string? WorkingDirectory,
    IReadOnlyDictionary<string, string> Environment,
    string DisplayName,
    string? LogPath = null);
