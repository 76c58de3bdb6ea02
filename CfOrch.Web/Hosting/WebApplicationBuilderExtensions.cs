using System.Text.Json;
using CfOrch.Core;
using CfOrch.Core.Configuration;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using CfOrch.Web.Data;
using CfOrch.Web.Jobs;
using MudBlazor;
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
            keys.XmlRepository = new FileSystemXmlRepository(
                new DirectoryInfo(Path.Combine(cfOrch.Value.ResolvedDataDir(), "keys")), NullLoggerFactory.Instance));
        services.AddCfOrchJobs();

        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DictionaryKeyPolicy = null;
        });
        services.AddProblemDetails();

        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddMudServices(c =>
        {
            c.SnackbarConfiguration.PositionClass = Defaults.Classes.Position.BottomRight;
            c.SnackbarConfiguration.PreventDuplicates = false;
        });
        return builder;
    }
}
