namespace CfOrch.Core.Profiles;

/// <summary>One problem in a profile file, located by line, column (both 1-based) and key path.</summary>
public sealed record ProfileError(string File, int Line, int Column, string Path, string Message)
{
    public override string ToString() =>
        Path.Length == 0
            ? $"{File}:{Line}:{Column}: {Message}"
            : $"{File}:{Line}:{Column}: {Path}: {Message}";
}

/// <summary>A profile that could not be read. Nothing of it was loaded.</summary>
public sealed class ProfileException : Exception
{
    public ProfileException(IReadOnlyList<ProfileError> errors)
        : base(Describe(errors))
    {
        Errors = errors;
    }

    public ProfileException()
        : this([])
    {
    }

    public ProfileException(string message)
        : base(message)
    {
        Errors = [];
    }

    public ProfileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    public IReadOnlyList<ProfileError> Errors { get; } = [];

    private static string Describe(IReadOnlyList<ProfileError> errors) => errors.Count switch
    {
        0 => "The profile is invalid.",
        1 => errors[0].ToString(),
        _ => $"{errors.Count} errors:{Environment.NewLine}{string.Join(Environment.NewLine, errors)}",
    };
}
