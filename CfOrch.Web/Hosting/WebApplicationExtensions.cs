using CfOrch.Core.Configuration;
using CfOrch.Core.Profiles;
using CfOrch.Core.Storage;
using CfOrch.Web.Api;
using CfOrch.Web.Auth;
using CfOrch.Web.Metrics;
using CfOrch.Web.Protocol;
using CfOrch.Web.Security;
using Prometheus;
using CfOrch.Web.Components;
using CfOrch.Web.Data;
using Microsoft.Extensions.Options;

namespace CfOrch.Web.Hosting;

public static partial class WebApplicationExtensions
{
    /// <summary>Checks the configuration, migrates the database, maps the endpoints and runs until shut down.</summary>
    /// <returns>The process exit code: 0, or 1 when the configuration is invalid.</returns>
    public static async Task<int> RunCfOrchAsync(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CfOrch");

        // Read now: a host that failed to start is disposed, its configuration with it.
        var urls = app.Configuration[WebHostDefaults.ServerUrlsKey];
        try
        {
            // Resolving the options validates them: a bad value stops here, naming its key.
            var options = app.Services.GetRequiredService<IOptions<CfOrchOptions>>().Value;
            var dataDir = options.ResolvedDataDir();
            if (ListenAddresses.Problem(urls) is { } badUrls)
            {
                LogBadUrls(logger, badUrls);
                await app.DisposeAsync();
                return 1;
            }

            LogStarting(logger, options.NodeId, dataDir);
            await app.Services.MigrateDatabaseAsync(app.Lifetime.ApplicationStopping);

            // Read the GPUs and pick the profile now, so that a broken profile is reported at start-up, not at the first page view.
            app.Services.GetRequiredService<ProfileRegistry>();
            app.MapCfOrch();
            await app.RunAsync();
            return 0;
        }
        catch (DataDirectoryException ex)
        {
            LogDataDirectory(logger, ex.Message);
            await app.DisposeAsync();
            return 1;
        }
        catch (Exception ex) when (ListenAddresses.Failure(ex, urls) is { } failure)
        {
            // Kestrel could not listen (the port is taken, the address is not this machine's, the port may not be used):
            // one line that says where and what to do, not a crash with a stack trace.
            LogCannotListen(logger, failure.Problem, failure.Hint);
            await app.DisposeAsync();
            return 1;
        }
        catch (OptionsValidationException ex)
        {
            var failures = string.Join(Environment.NewLine, ex.Failures.Select(f => "  " + f));
            LogInvalidConfiguration(logger, failures);

            // The console logger writes from a queue: disposing the app flushes it before the process exits.
            await app.DisposeAsync();
            return 1;
        }
    }

    public static WebApplication MapCfOrch(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var isAgent = app.Services.GetRequiredService<IOptions<CfOrchOptions>>().Value.IsAgent;
        if (isAgent)
        {
            // The agent protocol's paths are a program's: errors as JSON, no sign-in page, no HTML.
            app.Use((http, next) =>
            {
                if (AgentPaths.IsAgentPath(http.Request.Path))
                {
                    http.Items[AgentPaths.Marker] = true;
                }

                return next(http);
            });
        }

        // Whether a request came through a proxy is noted before trusted proxies' headers are applied (and consumed).
        RequestSource.UseForwardingMarker(app);
        if (app.Services.GetRequiredService<IOptions<CfOrchOptions>>().Value.Auth.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }

        // While the database cannot be written, every API answer says so (scheduling goes on; history waits) — error
        // answers too: set as the answer starts, after the exception handler has cleared what was set before.
        app.Use((http, next) =>
        {
            if (AccessPolicies.IsMachineRequest(http))
            {
                var storage = http.RequestServices.GetRequiredService<StorageHealth>();
                http.Response.OnStarting(() =>
                {
                    if (!storage.Ok)
                    {
                        http.Response.Headers.Warning = "199 cf-orch \"history is not being recorded: cf-orch cannot write its database (see /api/health)\"";
                    }

                    return Task.CompletedTask;
                });
            }

            return next(http);
        });

        // API errors become problem+json with a detail (ApiErrors, ApiStatusPages); anything else shows the error page.
        app.UseExceptionHandler("/Error", createScopeForErrors: true);
        app.UseWhen(http => AccessPolicies.IsMachineRequest(http), branch => branch.UseStatusCodePages(ApiStatusPages.WriteAsync));
        app.UseWhen(http => !AccessPolicies.IsMachineRequest(http) && !isAgent, branch => branch.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true));

        // No web page but cf-orch's own may change it; API bodies come in the types their endpoints take.
        app.UseMiddleware<CrossOriginGuard>();
        ControlCharacters.UseControlCharacterCheck(app);
        BodyMediaTypes.UseBodyMediaTypes(app);
        app.UseWhen(http => !AccessPolicies.IsMachineRequest(http), branch => branch.UseOwnAssets());
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.MapStaticAssets();

        app.MapHealthApi();
        app.MapNodesApi();
        app.MapProfilesApi();
        app.MapLeasesApi();
        app.MapServicesApi();
        app.MapGpusApi();
        app.MapEventsApi();
        app.MapAuthApi();
        app.MapResidentApi();
        app.MapFallback("/api/{**path}", (HttpContext http, ApiFallback fallback) => fallback.Answer(http));
        app.MapHealthChecks("/healthz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions
        {
            // "Healthy", or "Unhealthy: why" (503): a person reading the probe's output sees the cause.
            ResponseWriter = (http, report) =>
            {
                http.Response.ContentType = "text/plain; charset=utf-8";
                var why = string.Join("; ", report.Entries.Values.Where(e => e.Status != Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy).Select(e => e.Description));
                return http.Response.WriteAsync(why.Length == 0 ? report.Status.ToString() : $"{report.Status}: {why}");
            },
        });
        app.MapMetrics("/metrics", app.Services.GetRequiredService<CfOrchMetrics>().Registry).RequireAuthorization(AccessPolicies.Read);
        app.MapOpenApi().RequireAuthorization(AccessPolicies.Read);
        if (isAgent)
        {
            // An agent serves the agent protocol and a status page; the dashboard is on the coordinator.
            app.MapAgentApi();
        }
        else
        {
            app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        }

        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "cf-orch starting: node '{NodeId}', data directory {DataDir}")]
    private static partial void LogStarting(ILogger logger, string nodeId, string dataDir);

    [LoggerMessage(Level = LogLevel.Critical, Message = "{Message}")]
    private static partial void LogDataDirectory(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cf-orch cannot start: {Problem}. {Hint}")]
    private static partial void LogCannotListen(ILogger logger, string problem, string hint);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cf-orch cannot start: the Urls setting {Problem}")]
    private static partial void LogBadUrls(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cf-orch cannot start: the configuration is invalid.\n{Failures}")]
    private static partial void LogInvalidConfiguration(ILogger logger, string failures);
}
