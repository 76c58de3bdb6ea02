namespace CfOrch.Core.Orchestration;

/// <summary>Why a command could not be carried out; the API maps each kind to its status code.</summary>
public enum OrchestrationError
{
    /// <summary>No such service in the active profile.</summary>
    UnknownService,

    /// <summary>No such node, GPU, lease or allocation.</summary>
    NotFound,

    /// <summary>The request itself is wrong (bad size, GPU not allowed for the service).</summary>
    Invalid,

    /// <summary>The service cannot be started by cf-orch (no managed block, or a docker spec).</summary>
    NotStartable,

    /// <summary>No GPU has room, even after evicting less important services.</summary>
    NoCapacity,

    /// <summary>It was started but failed or did not become healthy in time.</summary>
    StartFailed,
}

/// <summary>A command that could not be carried out; <see cref="Exception.Message"/> says why, for the user.</summary>
public sealed class OrchestrationException : Exception
{
    public OrchestrationException(OrchestrationError error, string message)
        : base(message)
    {
        Error = error;
    }

    public OrchestrationException()
    {
    }

    public OrchestrationException(string message)
        : base(message)
    {
    }

    public OrchestrationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public OrchestrationError Error { get; }
}
