using CfOrch.Core;
using CfOrch.Core.Configuration;
using CfOrch.Web.Api;
using CfOrch.Web.Auth;
using CfOrch.Web.Cluster;
using CfOrch.Web.Components.State;
using CfOrch.Web.Metrics;
using CfOrch.Web.Protocol;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using CfOrch.Web.Data;
using CfOrch.Web.Jobs;
using MudBlazor;
using CfOrch.Web.Security;
using Microsoft.AspNetCore.HttpOverrides;
using MudBlazor.Services;

namespace CfOrch.Web.Hosting;

public static class WebApplicationBuilderExtensions
{
    /// <summary>The whole composition: Core, persistence, jobs, Blazor with MudBlazor, the JSON conventions of cf-orch's API.</summary>
    public static WebApplicationBuilder AddCfOrchWeb(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // Running the build output outside Development would otherwise serve every static asset as an empty file.
        builder.WebHost.UseStaticWebAssets();

        var services = builder.Services;
        services.AddCfOrchCore();
        services.AddCfOrchData();
        services.AddDataProtection().SetApplicationName("cf-orch");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<CfOrchOptions>>((keys, cfOrch) =>
            keys.XmlRepository = new PrivateKeyRepository(
                new DirectoryInfo(Path.Combine(cfOrch.Value.ResolvedDataDir(), "keys")), NullLoggerFactory.Instance));
        services.AddCfOrchJobs();

        services.ConfigureHttpJsonOptions(o => ApiJson.Configure(o.SerializerOptions));
        services.AddProblemDetails();

        // A query or route value that does not bind (tail=abc) throws, so that ApiErrors answers it as JSON.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddSingleton<StreamGate>();
        services.AddSingleton<ApiFallback>();
        services.AddSingleton<RefusalLog>();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<CfOrchOptions>>((forwarded, cfOrch) => TrustedProxies.Configure(forwarded, cfOrch.Value.Auth));
        services.AddExceptionHandler<ApiErrors>();
        services.AddCfOrchAuth();
        services.AddSingleton<LoginThrottle>();
        services.AddCfOrchCluster();
        services.AddSingleton<CfOrchMetrics>();
        services.AddHostedService(sp => sp.GetRequiredService<CfOrchMetrics>());
        services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database");
        services.AddOpenApi(o => o.AddBodyDocs().AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "cf-orch";
            document.Info.Description = "cf-orch's HTTP API: compatible with the cf-orch coordinator, plus start/stop, logs, GPUs, history, profiles and events.";
            return Task.CompletedTask;
        }));

        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddScoped<LiveState>();
        services.AddScoped<CommandExecutor>();
        services.AddScoped<BrowserClock>();
        services.AddMudServices(c =>
        {
            c.SnackbarConfiguration.PositionClass = Defaults.Classes.Position.BottomRight;
            c.SnackbarConfiguration.PreventDuplicates = false;
        });
        return builder;
    }
}
