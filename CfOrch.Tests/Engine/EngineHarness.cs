using CfOrch.Core;
using CfOrch.Core.Gpus;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Engine;

/// <summary>Core's services (the whole engine) over simulated GPUs, a fake clock and in-memory history.</summary>
public sealed class EngineHarness : IDisposable
{
    private readonly ServiceProvider _services;

    public EngineHarness(Dictionary<string, string?>? settings = null, Action<IServiceCollection>? configure = null)
    {
        Data = new TempDir();
        var values = new Dictionary<string, string?>
        {
            ["CfOrch:DataDir"] = Data.Path,
            ["CfOrch:Gpus:Mode"] = "simulated",
            ["CfOrch:Gpus:Simulated:0:Name"] = "Test GPU",
            ["CfOrch:Gpus:Simulated:0:TotalMb"] = "8192",
        };
        foreach (var (key, value) in settings ?? [])
        {
            values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddSingleton<TimeProvider>(Time);
        configure?.Invoke(services);
        services.AddCfOrchCore();
        _services = services.BuildServiceProvider();
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));

    public TempDir Data { get; }

    public T Get<T>()
        where T : notnull => _services.GetRequiredService<T>();

    public SimulatedGpuInventory Gpus => (SimulatedGpuInventory)Get<IGpuInventory>();

    /// <summary>Changes simulated usage and reads the inventory again, as the poll job would.</summary>
    public void SetUsage(int gpu, int pid, long mb, string? name = null)
    {
        Gpus.SetProcessUsage(gpu, pid, mb, name);
        Get<GpuMonitor>().Refresh();
    }

    public void Dispose()
    {
        _services.Dispose();
        Data.Dispose();
    }
}
