namespace CfOrch.Core.Http;

/// <summary>
/// The named HTTP clients of Core, in one place below everything that uses them (a constant is copied into its users,
/// so a name kept in one of them tied their namespaces together where no compiled reference shows it).
/// </summary>
public static class HttpClientNames
{
    /// <summary>Health probes, adoption checks and Ollama's API: short timeouts, no logging of every call.</summary>
    public const string Probe = "cf-orch-probe";
}
