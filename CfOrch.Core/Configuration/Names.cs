using System.Text.RegularExpressions;

namespace CfOrch.Core.Configuration;

/// <summary>Names of profiles, services and nodes: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 — no path separators, no spaces, no control characters.</summary>
public static partial class Names
{
    public static bool IsValid(string name) => NameRegex().IsMatch(name);

    [GeneratedRegex(@"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z")]
    private static partial Regex NameRegex();
}
