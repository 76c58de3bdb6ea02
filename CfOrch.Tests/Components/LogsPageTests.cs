using Bunit;
using CfOrch.Core.Instances;
using CfOrch.Core.Supervision;
using CfOrch.Web.Components.Pages;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

/// <summary>The Logs page: the live tail of a managed instance, and where there is no log (end to end with a real process too).</summary>
public sealed class LogsPageTests : EngineBunitContext
{
    private IRenderedComponent<Logs> Open(string service) =>
        RenderAs<Logs>(parameters: p => p.Add(c => c.Service, service));

    [Fact]
    public void A_service_without_an_instance_has_no_log()
    {
        UseTestProfile();

        Assert.Equal("whisper has no instance, so there is no log.", Open("whisper").Find("[data-testid=no-log]").TextContent.Trim());
    }

    [Fact]
    public void An_adopted_service_says_where_its_output_goes()
    {
        UseTestProfile();
        AddInstance("ollama", InstanceState.Running, InstanceOrigin.Adopted);

        var text = Open("ollama").Find("[data-testid=no-log]").TextContent;

        Assert.Contains("ollama runs outside cf-orch (adopted)", text, StringComparison.Ordinal);
        Assert.Contains("journalctl -u ollama", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_search_keeps_the_lines_that_contain_it_marks_the_matches_and_says_how_many()
    {
        UseTestProfile();
        var output = AttachOutput(AddInstance("whisper", InstanceState.Running));
        output.Append(LogStream.Stdout, "GET /health 200");
        output.Append(LogStream.Stdout, "POST /v1/transcribe 200");
        output.Append(LogStream.Stderr, "GET /Health 503");
        var page = Open("whisper");

        page.InputOn("input[data-testid=log-search]", "health");

        page.WaitForAssertion(() => Assert.Equal(["GET /health 200", "GET /Health 503"], Lines(page)));
        Assert.Equal(["health", "Health"], page.FindAll("[data-testid=log] mark").Select(m => m.TextContent));
        Assert.Contains("2 of the last 3 lines contain “health”", page.Find("[data-testid=log-caption]").TextContent, StringComparison.Ordinal);

        page.InputOn("input[data-testid=log-search]", "");
        page.WaitForAssertion(() => Assert.Equal(3, Lines(page).Count));
        Assert.Empty(page.FindAll("[data-testid=log] mark"));
    }

    [Fact]
    public void Download_saves_the_buffer_as_a_file_named_after_the_service()
    {
        UseTestProfile();
        var output = AttachOutput(AddInstance("whisper", InstanceState.Running));
        output.Append(LogStream.Stdout, "one");
        output.Append(LogStream.Stdout, "two");
        var download = JSInterop.SetupVoid("cfOrch.download", _ => true);
        var page = Open("whisper");

        page.ClickOn("[data-testid=download]");

        var call = Assert.Single(download.Invocations);
        Assert.Matches(@"^whisper-gpu0-\d{8}-\d{6}\.log$", (string)call.Arguments[0]!);
        Assert.Equal("one\ntwo\n", call.Arguments[1]);
    }

    [Fact]
    public void A_managed_instance_from_before_a_restart_has_no_log_in_this_run()
    {
        UseTestProfile();
        AddInstance("whisper", InstanceState.Stopped);

        Assert.Equal("whisper has no log in this run of cf-orch.", Open("whisper").Find("[data-testid=no-log]").TextContent.Trim());
    }

    [Fact]
    public void A_running_instance_is_tailed_live_stderr_marked_and_pause_holds_new_lines_until_resumed()
    {
        UseTestProfile();
        var output = AttachOutput(AddInstance("whisper", InstanceState.Running));
        output.Append(LogStream.Stdout, "listening on :9000");
        output.Append(LogStream.Stderr, "warning: no CUDA device, using CPU");
        var page = Open("whisper");

        Assert.Equal(["listening on :9000", "warning: no CUDA device, using CPU"], Lines(page));
        Assert.Single(page.FindAll(".cf-log-err"), e => e.TextContent == "warning: no CUDA device, using CPU");

        output.Append(LogStream.Stdout, "GET /health 200");
        Until(page, () => Assert.Equal("GET /health 200", Lines(page)[^1]));

        page.ClickOn("[data-testid=pause]");
        output.Append(LogStream.Stdout, "GET /v1/transcribe 200");
        output.Append(LogStream.Stdout, "GET /health 200");
        Until(page, () => Assert.Contains("Resume (2 new)", page.Find("[data-testid=pause]").TextContent, StringComparison.Ordinal));
        Assert.Equal(3, Lines(page).Count);

        page.ClickOn("[data-testid=pause]");
        page.WaitForAssertion(() => Assert.Equal(5, Lines(page).Count));
        Assert.Equal("GET /v1/transcribe 200", Lines(page)[3]);
        Assert.Contains("Pause", page.Find("[data-testid=pause]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void Copy_hands_every_shown_line_to_the_browser_and_says_how_many()
    {
        UseTestProfile();
        var output = AttachOutput(AddInstance("whisper", InstanceState.Running));
        output.Append(LogStream.Stdout, "one");
        output.Append(LogStream.Stderr, "two");
        var copy = JSInterop.Setup<bool>("cfOrch.copy", _ => true);
        copy.SetResult(true);
        var snackbars = Render<MudBlazor.MudSnackbarProvider>();
        var page = Open("whisper");

        page.ClickOn("[data-testid=copy]");

        Assert.Equal("one\ntwo", Assert.Single(copy.Invocations).Arguments[0]);
        snackbars.WaitForAssertion(() => Assert.Contains("Copied 2 lines.", snackbars.Markup, StringComparison.Ordinal));
    }

    [Fact]
    public void A_burst_of_lines_is_drawn_in_one_render_per_tick()
    {
        UseTestProfile();
        var output = AttachOutput(AddInstance("whisper", InstanceState.Running), capacity: 5000);
        var page = Open("whisper");
        var renders = page.RenderCount;

        for (var i = 0; i < 2000; i++)
        {
            output.Append(LogStream.Stdout, $"token {i}");
        }

        Until(page, () => Assert.Equal("token 1999", Lines(page)[^1]));
        Assert.Equal(1000, Lines(page).Count);
        Assert.InRange(page.RenderCount - renders, 1, 3);
    }

    [Fact]
    public void After_a_restart_the_page_follows_the_new_process_below_a_marker()
    {
        UseTestProfile();
        var instance = AddInstance("whisper", InstanceState.Running);
        var first = AttachOutput(instance);
        first.Append(LogStream.Stderr, "CUDA out of memory");
        var page = Open("whisper");

        // Restarted: a new process (a new output) and a new run of the instance.
        var second = AttachOutput(instance);
        second.Append(LogStream.Stdout, "listening on :9000");
        Instances.Set(instance with { Since = Time.GetUtcNow().AddSeconds(1), Pid = 4343 });

        Until(page, () => Assert.Equal("listening on :9000", Lines(page)[^1]));
        Assert.Equal("CUDA out of memory", Lines(page)[0]);
        Assert.StartsWith("── whisper started again", Lines(page)[1], StringComparison.Ordinal);
        second.Append(LogStream.Stdout, "GET /health 200");
        first.Append(LogStream.Stdout, "from the old process");
        Until(page, () => Assert.Equal("GET /health 200", Lines(page)[^1]));
        Assert.DoesNotContain("from the old process", Lines(page));
    }

    /// <summary>Gives the instance a (new) process whose output is an empty ring of <paramref name="capacity"/> lines, and returns the ring.</summary>
    private LogRing AttachOutput(InstanceSnapshot instance, int capacity = 100)
    {
        var output = new LogRing(capacity, Time);
        Services.GetRequiredService<ManagedProcesses>().Set(instance.Key, new FakeProcess(output, Time.GetUtcNow()));
        return output;
    }

    /// <summary>New lines are drawn on a timer of the page's clock: advance it while waiting.</summary>
    private void Until(IRenderedComponent<Logs> page, Action assertion) =>
        page.WaitForAssertion(() =>
        {
            Time.Advance(TimeSpan.FromMilliseconds(100));
            assertion();
        });

    private static List<string> Lines(IRenderedComponent<Logs> page) =>
        page.FindAll(".cf-log-line").Select(l => l.TextContent).ToList();

    /// <summary>A process that is only its output: what the Logs page reads.</summary>
    private sealed class FakeProcess(LogRing output, DateTimeOffset startedAt) : IManagedProcess
    {
        public int Pid => 4242;

        public bool OwnProcessGroup => true;

        public DateTimeOffset StartedAt => startedAt;

        public Task<int?> Exited { get; } = new TaskCompletionSource<int?>().Task;

        public LogRing Output => output;

        public Task StopAsync(TimeSpan grace, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
