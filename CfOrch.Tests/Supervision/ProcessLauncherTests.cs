using System.Diagnostics;
using System.Runtime.Versioning;
using CfOrch.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace CfOrch.Tests.Supervision;

[SupportedOSPlatform("linux")]
public sealed class ProcessLauncherTests : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TestProcesses.Deadline;
    private readonly TestProcesses _processes = new();
    private readonly TempDir _dir = new();

    public async ValueTask DisposeAsync()
    {
        await _processes.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Stdout_and_stderr_go_line_by_line_into_the_ring()
    {
        var process = _processes.Sh("echo out1; echo err1 >&2; echo; echo out2; printf 'no newline'");

        await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);

        var lines = process.Output.Tail(100);
        Assert.Equal(["out1", "", "out2", "no newline"], lines.Where(l => l.Stream == LogStream.Stdout).Select(l => l.Text));
        Assert.Equal(["err1"], lines.Where(l => l.Stream == LogStream.Stderr).Select(l => l.Text));
        Assert.Equal(Enumerable.Range(1, 5).Select(i => (long)i), lines.Select(l => l.Sequence));
        Assert.Equal(ProcessLauncher.OutputCapacity, process.Output.Capacity);
    }

    [Fact]
    public void A_quiet_process_is_looked_at_less_often_and_new_output_brings_the_100_ms_back()
    {
        var quiet = new List<TimeSpan>();
        var interval = TimeSpan.FromMilliseconds(100);
        for (var i = 0; i < 6; i++)
        {
            interval = OutputFollower.NextInterval(interval, read: false);
            quiet.Add(interval);
        }

        Assert.Equal([200, 400, 800, 800, 800, 800], quiet.Select(t => t.TotalMilliseconds));
        Assert.Equal(TimeSpan.FromMilliseconds(100), OutputFollower.NextInterval(OutputFollower.QuietInterval, read: true));
    }

    [Fact]
    public async Task Output_after_a_quiet_spell_still_arrives_while_the_process_runs()
    {
        // Quiet long enough for the follower to slow down to its longest interval, then one line, then still running.
        var process = _processes.Sh("echo first; sleep 2; echo after-the-quiet; sleep 30");

        await TestProcesses.WaitForLineAsync(process, "first");
        await TestProcesses.WaitForLineAsync(process, "after-the-quiet");

        Assert.False(process.Exited.IsCompleted);
        Assert.Equal(["first", "after-the-quiet"], process.Output.Tail(10).Select(l => l.Text));
    }

    [Fact]
    public async Task The_tail_holds_what_a_quiet_process_wrote_before_it_was_asked_whatever_the_followers_interval()
    {
        // After two quiet seconds the follower looks every 800 ms; the marker file is made just after the line is written.
        var marker = Path.Combine(_dir.Path, "written");
        var process = _processes.Sh($"echo first; sleep 2; echo after-the-quiet; touch '{marker}'; sleep 30");
        await TestProcesses.WaitForLineAsync(process, "first");
        using var written = new CancellationTokenSource(Deadline);
        while (!File.Exists(marker))
        {
            await Task.Delay(10, written.Token);
        }

        Assert.Equal(["first", "after-the-quiet"], process.Output.Tail(10).Select(l => l.Text));
    }

    [Fact]
    public async Task The_exit_code_is_captured_when_the_process_exits()
    {
        var process = _processes.Sh("echo bye >&2; exit 3");

        Assert.Equal(3, await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
        // The last words are in the ring by the time Exited completes.
        Assert.Equal("bye", process.Output.Tail(1).Single().Text);
    }

    [Fact]
    public async Task Exited_does_not_wait_for_a_child_that_keeps_the_output_open()
    {
        var clock = Stopwatch.StartNew();
        var process = _processes.Sh("sleep 60 & echo $!; exit 4");

        Assert.Equal(4, await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"Exited took {clock.Elapsed}");

        // The orphan still runs in the group; stopping after the exit ends it.
        var child = TestProcesses.FirstLineAsPid(process);
        Assert.True(TestProcesses.IsRunning(child));
        await process.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.False(TestProcesses.IsRunning(child));
    }

    [Fact]
    public async Task The_pid_leads_its_own_process_group_and_session()
    {
        var process = _processes.Start(new ProcessLaunchSpec("sleep", ["60"], null, new Dictionary<string, string>(), "sleep"));

        Assert.True(process.OwnProcessGroup);
        // posix_spawn with POSIX_SPAWN_SETSID: the new session exists before the program runs.
        await TestProcesses.WaitUntilAsync(() => File.ReadAllText($"/proc/{process.Pid}/comm").Trim() == "sleep", "sleep to run");
        Assert.Equal(process.Pid, TestProcesses.Stat(process.Pid)!.Value.ProcessGroup);
        Assert.Equal(process.Pid, TestProcesses.Stat(process.Pid)!.Value.Session);
        Assert.NotEqual(process.Pid, TestProcesses.Stat(Environment.ProcessId)!.Value.ProcessGroup);
    }

    [Fact]
    public async Task Arguments_reach_the_program_as_they_are_without_a_shell()
    {
        var process = _processes.Start(new ProcessLaunchSpec(
            "/bin/sh", ["-c", "printf '[%s]\\n' \"$@\"", "sh", "a b", "$HOME", "*", "", "'q'"], null, new Dictionary<string, string>(), "args"));

        await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.Equal(["[a b]", "[$HOME]", "[*]", "[]", "['q']"], process.Output.Tail(10).Select(l => l.Text));
    }

    [Fact]
    public async Task The_environment_is_inherited_with_the_spec_on_top_and_the_working_directory_is_used()
    {
        var environment = new Dictionary<string, string> { ["CF_ORCH_TEST_VALUE"] = "hello world", ["HOME"] = "/overridden" };
        var process = _processes.Sh("echo \"$CF_ORCH_TEST_VALUE\"; echo \"$HOME\"; echo \"$PATH\"; pwd", _dir.Path, environment);

        await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.Equal(
            ["hello world", "/overridden", Environment.GetEnvironmentVariable("PATH"), _dir.Path],
            process.Output.Tail(10).Select(l => l.Text));
    }

    [Fact]
    public async Task Without_a_working_directory_the_current_one_is_used()
    {
        var process = _processes.Start(TestProcesses.ShSpec("pwd", cwd: ""));

        await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.Equal(Environment.CurrentDirectory, process.Output.Tail(1).Single().Text);
    }

    [Fact]
    public async Task A_bare_program_name_is_looked_up_on_path_and_a_relative_path_in_the_working_directory()
    {
        var script = _dir.Write("bin/hello", "#!/bin/sh\necho hello from \"$0\"\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var relative = _processes.Start(new ProcessLaunchSpec("bin/hello", [], _dir.Path, new Dictionary<string, string>(), "relative"));
        var bare = _processes.Start(new ProcessLaunchSpec("sh", ["-c", "echo bare"], null, new Dictionary<string, string>(), "bare"));

        Assert.Equal(0, await relative.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
        Assert.Equal(0, await bare.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken));
        Assert.Equal($"hello from {script}", relative.Output.Tail(1).Single().Text);
        Assert.Equal("bare", bare.Output.Tail(1).Single().Text);
    }

    [Fact]
    public void A_missing_exec_path_is_reported_as_such()
    {
        var ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec("/opt/nothing-here/bin/python")));
        Assert.Equal("exec_path /opt/nothing-here/bin/python does not exist", ex.Message);

        ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec("no-such-program-cf-orch")));
        Assert.Equal("exec_path no-such-program-cf-orch does not exist (it is not a path, and PATH has no program of that name)", ex.Message);

        ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec("  ")));
        Assert.Equal("exec_path is empty", ex.Message);
    }

    [Fact]
    public void A_file_without_execute_permission_is_not_executable()
    {
        var file = _dir.Write("model.py", "print('hi')\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec(file)));
        Assert.Equal($"exec_path {file} is not executable", ex.Message);

        ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec("/etc/passwd")));
        Assert.Equal("exec_path /etc/passwd is not executable", ex.Message);
    }

    [Fact]
    public void A_directory_is_not_a_program()
    {
        var ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(Spec(_dir.Path)));
        Assert.Equal($"exec_path {_dir.Path} is a directory, not a program", ex.Message);
    }

    [Fact]
    public void A_missing_working_directory_is_reported_as_such()
    {
        var missing = Path.Combine(_dir.Path, "nope");
        var ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(TestProcesses.ShSpec("true", missing)));
        Assert.Equal($"cwd {missing} does not exist", ex.Message);

        var file = _dir.Write("file", "");
        ex = Assert.Throws<ProcessLaunchException>(() => _processes.Start(TestProcesses.ShSpec("true", file)));
        Assert.Equal($"cwd {file} is not a directory", ex.Message);
    }

    [Fact]
    public void An_environment_variable_name_with_an_equals_sign_is_refused()
    {
        var ex = Assert.Throws<ProcessLaunchException>(() => _processes.Sh("true", environment: new Dictionary<string, string> { ["A=B"] = "x" }));
        Assert.Equal("environment variable name 'A=B' is not valid", ex.Message);
    }

    [Fact]
    public async Task StartedAt_and_the_time_of_each_line_come_from_the_time_provider()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 3, 12, 0, 0, TimeSpan.Zero));
        await using var processes = new TestProcesses(time);

        var process = processes.Sh("echo hi");
        await process.Exited.WaitAsync(Deadline, TestContext.Current.CancellationToken);

        Assert.Equal(time.GetUtcNow(), process.StartedAt);
        Assert.Equal(time.GetUtcNow(), process.Output.Tail(1).Single().At);
    }

    [Fact]
    public async Task DisposeAsync_leaves_the_process_running()
    {
        var process = _processes.Sh("sleep 60");

        await process.DisposeAsync();

        Assert.True(Signals.IsAlive(process.Pid));
        Assert.False(process.Exited.IsCompleted);
        await process.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).WaitAsync(Deadline, TestContext.Current.CancellationToken);
        Assert.False(TestProcesses.IsRunning(process.Pid));
    }

    private static ProcessLaunchSpec Spec(string execPath) => new(execPath, [], null, new Dictionary<string, string>(), "spec");

    [Fact]
    public async Task Output_goes_to_log_files_that_a_later_run_can_follow_again()
    {
        var logPath = Path.Combine(_dir.Path, "logs", "ticker-gpu0");
        var process = _processes.Start(new ProcessLaunchSpec(
            "/bin/sh", ["-c", "echo started; echo oops >&2; while true; do echo tick; sleep 0.05; done"], null, new Dictionary<string, string>(), "ticker", logPath));
        await TestProcesses.WaitUntilAsync(() => process.Output.Tail(10).Any(l => l.Text == "tick"), "the first tick in the ring");
        Assert.StartsWith("started", await File.ReadAllTextAsync(logPath + ".out.log", TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.Equal("oops\n", await File.ReadAllTextAsync(logPath + ".err.log", TestContext.Current.CancellationToken));

        // A service's output may hold secrets: its logs are 0600 in a 0700 directory.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(logPath + ".out.log"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(logPath + ".err.log"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(logPath)!));

        // cf-orch goes away (its handle is released): the service keeps running and writing, no SIGPIPE.
        await process.DisposeAsync();
        var length = new FileInfo(logPath + ".out.log").Length;
        await TestProcesses.WaitUntilAsync(() => new FileInfo(logPath + ".out.log").Length > length + 20, "the service to keep writing");
        Assert.True(TestProcesses.IsRunning(process.Pid));

        // A restarted cf-orch attaches and reads its output again.
        await using var attached = _processes.Track(_processes.Launcher.Attach(process.Pid, "ticker", logPath));
        await TestProcesses.WaitUntilAsync(() => attached.Output.Tail(5).Count(l => l.Text == "tick") >= 2, "ticks through the attached process");
        Assert.Contains(attached.Output.Tail(ProcessLauncher.OutputCapacity), l => l is { Stream: LogStream.Stderr, Text: "oops" });
    }

    [Fact]
    public async Task Services_start_with_default_signal_dispositions_even_though_dotnet_ignores_sigpipe()
    {
        var process = _processes.Start(new ProcessLaunchSpec("sleep", ["60"], null, new Dictionary<string, string>(), "sleep"));
        await TestProcesses.WaitUntilAsync(() => File.ReadAllText($"/proc/{process.Pid}/comm").Trim() == "sleep", "sleep to run");

        var status = await File.ReadAllLinesAsync($"/proc/{process.Pid}/status", TestContext.Current.CancellationToken);

        // Signals 1-31 (SIGPIPE is 13) at their defaults and none blocked; 32 and 33 are glibc's own, which posix_spawn
        // keeps ignored and every glibc program re-arms at start-up.
        var ignored = ulong.Parse(status.Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))[7..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0UL, ignored & 0x7FFF_FFFFUL);
        Assert.Equal("SigBlk:\t0000000000000000", status.Single(l => l.StartsWith("SigBlk:", StringComparison.Ordinal)));
        Assert.NotEqual(0UL, ulong.Parse(File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))[7..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) & (1UL << 12));
    }
}
