using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Web.Protocol;
using Microsoft.AspNetCore.Diagnostics;

namespace CfOrch.Web.Api;

/// <summary>
/// Turns every failure under /api into <c>{"detail": "..."}</c> with the right status: a user's mistake is a 4xx that
/// says what is wrong, the engine's refusals keep cf-orch's codes (422, 404, 503), and only a bug is a 500.
/// </summary>
public sealed partial class ApiErrors(ILogger<ApiErrors> logger, RefusalLog refusals) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);

        // The middleware has already switched Request.Path to the error page: the feature keeps the original path.
        var path = httpContext.Features.Get<IExceptionHandlerFeature>()?.Path ?? httpContext.Request.Path;
        if (!Auth.AccessPolicies.IsMachineRequest(httpContext, path))
        {
            return false;
        }

        if (exception is ProfileException invalid)
        {
            // A profile that does not validate: every error with its line, column and key path.
            const int unprocessable = StatusCodes.Status422UnprocessableEntity;
            await ApiJson.WriteErrorAsync(httpContext, unprocessable, invalid.Message,
                new { title = ApiJson.ErrorBody.Of(unprocessable, "").Title, status = unprocessable, detail = invalid.Message, errors = invalid.Errors.Select(ProfilesApi.ErrorRow.From) });
            return true;
        }

        var (status, detail) = Map(exception);
        if (status == StatusCodes.Status500InternalServerError)
        {
            // A bug: logged with its stack trace.
            LogFailed(exception, httpContext.Request.Method, path);
        }
        else if (status >= 500)
        {
            // An expected refusal (no room, a start that failed, an agent that does not answer): one line, summarised.
            refusals.Note(httpContext.Request.Method, path, status, detail);
        }

        await ApiJson.WriteErrorAsync(httpContext, status, detail);
        return true;
    }

    public static int StatusOf(OrchestrationError error) => error switch
    {
        OrchestrationError.UnknownService => StatusCodes.Status422UnprocessableEntity,
        OrchestrationError.Invalid => StatusCodes.Status422UnprocessableEntity,
        OrchestrationError.NotFound => StatusCodes.Status404NotFound,
        OrchestrationError.NotStartable => StatusCodes.Status422UnprocessableEntity,
        OrchestrationError.NoCapacity => StatusCodes.Status503ServiceUnavailable,
        OrchestrationError.StartFailed => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static (int Status, string Detail) Map(Exception exception) => exception switch
    {
        ApiException api => (api.Status, api.Message),
        OrchestrationException o => (StatusOf(o.Error), o.Message),
        BadHttpRequestException bad when bad.StatusCode == StatusCodes.Status413PayloadTooLarge => (413, "the body is too large"),
        BadHttpRequestException bad => (StatusCodes.Status400BadRequest, BindingFailure.Describe(bad.Message)),
        OperationCanceledException => (StatusCodes.Status499ClientClosedRequest, "the request was cancelled"),
        _ => (StatusCodes.Status500InternalServerError, "cf-orch failed to handle this request; the server log has the details"),
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private partial void LogFailed(Exception exception, string method, string path);
}
