namespace CfOrch.Web.Protocol;

/// <summary>A request the API refuses; the status and the detail go to the client as <c>{"detail": ...}</c>.</summary>
public sealed class ApiException : Exception
{
    public ApiException(int status, string detail)
        : base(detail)
    {
        Status = status;
    }

    public ApiException()
    {
    }

    public ApiException(string message)
        : base(message)
    {
    }

    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Status { get; } = StatusCodes.Status422UnprocessableEntity;
}
