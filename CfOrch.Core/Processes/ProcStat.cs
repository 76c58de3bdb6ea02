using System.Globalization;

namespace CfOrch.Core.Processes;

/// <summary>
/// The fields cf-orch needs from one /proc/{pid}/stat line (proc(5)): the command name, the state, the parent, the
/// process group and the start time in clock ticks since boot.
/// </summary>
internal readonly record struct ProcStat(int Pid, string Comm, char State, int ParentPid, int ProcessGroup, long StartTime)
{
    /// <summary>A zombie ('Z') or dead ('X') process: it holds nothing any more.</summary>
    public bool IsZombie => State is 'Z' or 'X';

    // Field numbers of proc(5), counted from 1; the fields after the comm start at field 3.
    private const int FirstFieldAfterComm = 3;
    private const int ParentPidField = 4;
    private const int ProcessGroupField = 5;
    private const int StartTimeField = 22;

    /// <summary>
    /// Parses a stat line, or returns null when it is not one. The comm (field 2) is whatever the process named
    /// itself, spaces and parentheses included, so it runs from the first '(' to the LAST ')'.
    /// </summary>
    public static ProcStat? Parse(ReadOnlySpan<char> line)
    {
        var open = line.IndexOf('(');
        var close = line.LastIndexOf(')');
        if (open <= 0 || close < open)
            return null;
        if (!int.TryParse(line[..open].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            return null;

        var comm = line[(open + 1)..close].ToString();
        var fields = line[(close + 1)..].TrimStart();
        char? state = null;
        int? parentPid = null, processGroup = null;
        var field = FirstFieldAfterComm;
        foreach (var range in fields.Split(' '))
        {
            var text = fields[range];
            switch (field++)
            {
                case FirstFieldAfterComm when text.Length == 1:
                    state = text[0];
                    break;
                case ParentPidField when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ppid):
                    parentPid = ppid;
                    break;
                case ProcessGroupField when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pgrp):
                    processGroup = pgrp;
                    break;
                case StartTimeField when long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var start):
                    return state is { } s && parentPid is { } pp && processGroup is { } pg
                        ? new ProcStat(pid, comm, s, pp, pg, start)
                        : null;
                case StartTimeField:
                    return null;
            }
        }

        return null;
    }
}
