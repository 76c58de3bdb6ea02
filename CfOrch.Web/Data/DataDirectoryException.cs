namespace CfOrch.Web.Data;

/// <summary>The data directory cannot be used (not writable, not a directory): cf-orch stops at start-up with this message.</summary>
public sealed class DataDirectoryException : Exception
{
    public DataDirectoryException()
    {
    }

    public DataDirectoryException(string message)
        : base(message)
    {
    }

    public DataDirectoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
