using CfOrch.Core.Configuration;
using CfOrch.Core.Gpus;
using CfOrch.Core.Gpus.Nvml;
using CfOrch.Core.Adoption;
using CfOrch.Core.Health;
using CfOrch.Core.History;
using CfOrch.Core.Instances;
using CfOrch.Core.Leases;
using CfOrch.Core.Measurement;
using CfOrch.Core.Orchestration;
using CfOrch.Core.Profiles;
using CfOrch.Core.Runtimes;
using CfOrch.Core.State;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using CfOrch.Core.Allocations;

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
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(GpuInventoryFactory.LogCategory);
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
        services.TryAddSingleton<ProfileStore>();
        services.TryAddSingleton<ProfileWatcher>();
        services.TryAddSingleton<ProfileEditor>();
        services.TryAddSingleton<SecretFilter>();

        // The engine.
        services.AddHttpClient(HealthProber.ClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                ConnectTimeout = TimeSpan.FromSeconds(2),
                PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            })

            // A refused probe is an answer, not an incident: twice a second per adoptable service it would flood the log.
            .RemoveAllLoggers();
        services.TryAddSingleton<IHistorySink, NullHistorySink>();
        services.TryAddSingleton<IInstanceStore, InMemoryInstanceStore>();
        services.TryAddSingleton<ILeaseStore, NullLeaseStore>();
        services.TryAddSingleton<IProcessLauncher, ProcessLauncher>();
        services.TryAddSingleton<StateStream>();
        services.TryAddSingleton<Changes.IStatePublisher>(sp => sp.GetRequiredService<StateStream>());
        services.TryAddSingleton<InstanceRegistry>();
        services.TryAddSingleton<LeaseManager>();
        services.TryAddSingleton<AllocationTable>();
        services.TryAddSingleton<ManagedProcesses>();
        services.TryAddSingleton<InstanceLifecycle>();
        services.TryAddSingleton<LocalProcessRuntime>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceRuntime, LocalProcessRuntime>(sp => sp.GetRequiredService<LocalProcessRuntime>()));
        services.TryAddSingleton<Runtimes.Docker.DockerEngine>();
        services.TryAddSingleton<Runtimes.Docker.DockerRuntime>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceRuntime, Runtimes.Docker.DockerRuntime>(sp => sp.GetRequiredService<Runtimes.Docker.DockerRuntime>()));
        services.TryAddSingleton<ServiceRuntimes>();
        services.TryAddSingleton<ILoopbackPorts, SocketLoopbackPorts>();
        services.TryAddSingleton<HealthProber>();
        services.TryAddSingleton<HealthMonitor>();
        services.TryAddSingleton<Ollama.OllamaClient>();
        services.TryAddSingleton<UsageMeter>();
        services.TryAddSingleton<AdoptionService>();
        services.TryAddSingleton<ModelResolver>();
        services.TryAddSingleton<ModelUnloader>();
        services.TryAddSingleton<RoomWaiter>();
        services.TryAddSingleton<IdleModelEviction>();
        services.TryAddSingleton<ServiceLocks>();
        services.TryAddSingleton<InstanceStopper>();
        services.TryAddSingleton<GpuPlacer>();
        services.TryAddSingleton<ServiceStarter>();
        services.TryAddSingleton<ServiceEnsurer>();
        services.TryAddSingleton<AlwaysOnStarter>();
        services.TryAddSingleton<InstanceAllocations>();
        services.TryAddSingleton<Sweeper>();
        services.TryAddSingleton<Allocator>();
        services.TryAddSingleton<Orchestrator>();
        services.TryAddSingleton<CrashRestarter>();
        services.TryAddSingleton<EngineStartup>();
        return services;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Explanation}")]
    private static partial void LogInventory(ILogger logger, string explanation);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Explanation}")]
    private static partial void LogNoGpus(ILogger logger, string explanation);
}
