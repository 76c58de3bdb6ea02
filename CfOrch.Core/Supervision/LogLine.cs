namespace CfOrch.Core.Supervision;

/// <summary>Which output of a process a line came from.</summary>
public enum LogStream
{
    Stdout,
    Stderr,
}

/// <summary>One line of a process's output; <see cref="Sequence"/> is 1 for the first line ever appended to its ring.</summary>
public sealed record LogLine(long Sequence, DateTimeOffset At, LogStream Stream, string Text);
