namespace CfOrch.StandIns;

public sealed record ServiceHealth(string Status);

/// <summary>The endpoints of <c>service</c> mode: one health path, answered with the configured status, or never.</summary>
public static class ServiceApi
{
    public static void MapServiceApi(this WebApplication app, StandInOptions options)
    {
        app.Map(options.HealthPath, async context =>
        {
            if (options.HangHealth)
            {
                // Never answers: the caller's timeout fires. Ends when the caller gives up or the stand-in stops.
                var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
                using var until = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
                try
                {
                    await Task.Delay(Timeout.Infinite, until.Token);
                }
                catch (OperationCanceledException)
                {
                    context.Abort();
                }
                return;
            }
            context.Response.StatusCode = options.Status;
            await context.Response.WriteAsJsonAsync(new ServiceHealth("ok"), StandInJson.Default.ServiceHealth, cancellationToken: context.RequestAborted);
        });
    }
}
