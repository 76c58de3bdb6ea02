using Bunit;
using CfOrch.Core.Instances;
using CfOrch.Web.Auth;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.Time.Testing;
using MudBlazor.Services;

namespace CfOrch.Tests.Components;

/// <summary>
/// bunit with MudBlazor's services, loose JS interop, a fake clock and a data folder. Components render as
/// <see cref="Access"/> says (full control unless a test renders them read-only). What feeds the pages is chosen by the
/// context a test class derives from: <see cref="StateBunitContext"/> (a state stream only the test publishes to) or
/// <see cref="EngineBunitContext"/> (cf-orch's whole engine, for the tests of real actions).
/// </summary>
public abstract class MudBunitContext : BunitContext
{
    public static readonly Access ReadOnly = new(true, false, null, "Read-only: test visitor from the LAN.");

    protected MudBunitContext()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices(o =>
        {
            o.SnackbarConfiguration.ShowTransitionDuration = 0;
            o.SnackbarConfiguration.HideTransitionDuration = 0;
        });
        Data = new TempDir();
    }

    /// <summary>A profile with a service of each kind: adoptable process, managed process, container, budget only.</summary>
    public const string TestProfile = """
        schema_version: 1
        name: test
        vram_total_mb: 8192
        services:
          ollama:
            max_mb: 4096
            priority: 1
            managed:
              type: process
              adopt: true
              exec_path: /usr/local/bin/ollama
              args_template: serve
              port: 11434
              health_path: /api/tags
          whisper:
            max_mb: 3000
            priority: 2
            managed:
              type: process
              exec_path: /usr/local/bin/whisper-server
              port: 9000
              health_path: /health
          vllm:
            max_mb: 6000
            priority: 1
            managed:
              type: docker
              image: vllm/vllm-openai:latest
              port: 8000
              host_port: 8000
              health_path: /health
          embeddings:
            max_mb: 1024
            priority: 3

        """;

    protected TempDir Data { get; }

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));

    /// <summary>Renders <typeparamref name="T"/> as a caller with <paramref name="access"/> (default: full control).</summary>
    protected IRenderedComponent<T> RenderAs<T>(Access? access = null, Action<ComponentParameterCollectionBuilder<T>>? parameters = null)
        where T : IComponent
    {
        // As in the app: interactive server rendering (live pages subscribe to the engine's state then).
        SetRendererInfo(new RendererInfo("Server", isInteractive: true));
        var host = Render<CascadingValue<Access>>(p => p
            .Add(c => c.Value, access ?? Access.Full(null))
            .AddChildContent<T>(parameters ?? (_ => { })));
        return host.FindComponent<T>();
    }

    /// <summary>An instance as the engine would have registered it, started now.</summary>
    protected InstanceSnapshot NewInstance(string service, InstanceState state, InstanceOrigin origin = InstanceOrigin.Managed, int gpu = 0, long budgetMb = 4096,
        Func<InstanceSnapshot, InstanceSnapshot>? with = null)
    {
        var now = Time.GetUtcNow();
        var instance = new InstanceSnapshot
        {
            Key = new InstanceKey(service, "local", gpu),
            Origin = origin,
            State = state,
            Url = "http://127.0.0.1:11434",
            HealthPath = "/",
            BudgetMb = budgetMb,
            Pid = origin == InstanceOrigin.Managed ? 4242 : null,
            Since = now,
            StateSince = now,
            ReadyAt = state is InstanceState.Running or InstanceState.Idle ? now : null,
        };
        return with?.Invoke(instance) ?? instance;
    }

    protected override async ValueTask DisposeAsyncCore()
    {
        await base.DisposeAsyncCore();
        Data.Dispose();
    }
}
