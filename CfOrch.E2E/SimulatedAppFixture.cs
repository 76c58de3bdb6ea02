namespace CfOrch.E2E;

/// <summary>One running cf-orch with the README's two simulated GPUs, shared by a test class.</summary>
public sealed class SimulatedAppFixture : IAsyncLifetime
{
    public AppProcess App { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        App = await AppProcess.StartAsync(AppProcess.SimulatedGpus(), TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            await App.DisposeAsync();
        }
    }
}
