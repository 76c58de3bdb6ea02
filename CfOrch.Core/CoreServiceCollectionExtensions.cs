using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Gpus.Nvml;
using CfOrch.Core.Profiles;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core;

public static partial class CoreServiceCollectionExtensions
{
    /// <summary>Registers the domain: options (validated at start-up), the GPU inventory and monitor, the profile registry.</summary>
    public static IServiceCollection AddCfOrchCore(this IServiceCollection services)
    {
        services.AddOptions<CfOrchOptions>()
            .Configure<IConfiguration>((options, configuration) => CfOrchOptions.Bind(configuration.GetSection(CfOrchOptions.SectionName), options))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CfOrchOptions>, CfOrchOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<INvmlApi, NvmlApi>();
        services.TryAddSingleton<IGpuInventory>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<CfOrchOptions>>().Value;
            var (inventory, explanation) = GpuInventoryFactory.Create(options.Gpus, sp.GetRequiredService<INvmlApi>());
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GpuInventoryFactory));
            if (inventory.Source == GpuSource.None && options.Gpus.ParsedMode() != GpuMode.None)
            {
                LogNoGpus(logger, explanation);
            }
            else
            {
                LogInventory(logger, explanation);
            }

            return inventory;
        });
        services.TryAddSingleton<GpuMonitor>();
        services.TryAddSingleton<ProfileRegistry>();
        return services;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Explanation}")]
    private static partial void LogInventory(ILogger logger, string explanation);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Explanation}")]
    private static partial void LogNoGpus(ILogger logger, string explanation);
}
