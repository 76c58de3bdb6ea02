using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CfOrch.Core.Processes;

namespace CfOrch.Tests.Processes;

public sealed class ProcFsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    // 0x2CAA = 11434 (Ollama), 0x1F90 = 8080, 0x07E8 = 2024.
    private const string Tcp =
        """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0
           1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222222 1 0000000000000000 100 0 0 10 0
           2: 0100007F:2CAA 0100007F:D3F4 01 00000000:00000000 00:00000000 00000000  1000        0 333333 1 0000000000000000 20 4 30 10 -1
           3: 0100007F:D3F4 0100007F:2CAA 01 00000000:00000000 00:00000000 00000000  1000        0 444444 1 0000000000000000 20 4 30 10 -1
           4: 0100007F:2CAA 0100007F:D3F6 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
           5: C0A80105:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555555 1 0000000000000000 100 0 0 10 0
        """;

    private const string Tcp6 =
        """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777777 1 0000000000000000 100 0 0 10 0
           1: 00000000000000000000000001000000:07E8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 888888 1 0000000000000000 100 0 0 10 0
           2: 00000000000000000000000001000000:07E8 00000000000000000000000001000000:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 999999 1 0000000000000000 20 4 30 10 -1
        """;

    [Fact]
    public void A_containers_processes_are_read_from_its_cgroup_v2_with_the_cgroups_below_it_and_a_root_cgroup_is_none()
    {
        using var root = new TempDir();
        root.Write("system.slice/docker-abc.scope/cgroup.procs", "4100\n4180\n");
        root.Write("system.slice/docker-abc.scope/inner/cgroup.procs", "4200\n");
        root.Write("cgroup.procs", "1\n4100\n4180\n4200\n");

        Assert.Equal([4100, 4180, 4200], ProcFs.CgroupProcesses("0::/system.slice/docker-abc.scope\n", 4100, root.Path));
        Assert.Null(ProcFs.CgroupProcesses("0::/\n", 4100, root.Path));
        Assert.Null(ProcFs.CgroupProcesses("0::/..\n", 4100, root.Path));
        // A cgroup the PID is not in is not taken for its own.
        Assert.Null(ProcFs.CgroupProcesses("0::/system.slice/docker-abc.scope\n", 999, root.Path));
    }

    [Fact]
    public void On_cgroup_v1_a_containers_processes_are_read_from_a_controllers_hierarchy()
    {
        using var root = new TempDir();
        root.Write("pids/docker/abc/cgroup.procs", "3916\n3969\n");
        const string cgroups = "9:name=systemd:/docker/abc\n8:pids:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n";

        Assert.Equal([3916, 3969], ProcFs.CgroupProcesses(cgroups, 3916, root.Path));
    }

    [Fact]
    public void On_a_hybrid_machine_whose_docker_uses_cgroupfs_a_containers_processes_are_its_v1_cgroups_not_the_shims_service_cgroup()
    {
        // Two containers' inits (4100, 5100), each in its own v1 cgroup; in the unified hierarchy both sit in
        // containerd's service cgroup, with containerd and its shims.
        const string Id = "27820f52d94c";
        using var machine = new CgroupMachine()
            .Process(4100, $"9:name=systemd:/docker/{Id}", $"8:pids:/docker/{Id}", $"2:cpu,cpuacct:/docker/{Id}", "0::/system.slice/containerd.service")
            .Cgroup($"pids/docker/{Id}", 4100, 4180)
            .Cgroup("pids/docker/other", 5100)
            .Cgroup("unified/system.slice/containerd.service", 800, 4000, 4100, 4180, 5000, 5100);

        Assert.Equal([4100, 4180], machine.ProcessesOf(4100));

        // Where no v1 hierarchy can be read, the service cgroup is not taken for the container's either: none (the init's
        // tree is the fallback).
        machine.Remove("pids");
        Assert.Null(machine.ProcessesOf(4100));

        // With the systemd driver the unified line names the container's own cgroup, the same as its v1 lines: used.
        machine.Process(4100, $"8:pids:/system.slice/docker-{Id}.scope", $"0::/system.slice/docker-{Id}.scope")
            .Cgroup($"unified/system.slice/docker-{Id}.scope", 4100, 4190);
        Assert.Equal([4100, 4190], machine.ProcessesOf(4100));
    }

    [Fact]
    public void From_a_private_cgroup_namespace_with_the_hosts_hierarchy_mounted_a_cgroup_outside_it_is_found_by_its_path_below_the_dots()
    {
        // cf-orch under compose.yaml on cgroup v2: its own cgroup namespace (Docker's default there), so another
        // container's cgroup reads relative to cf-orch's own; /sys/fs/cgroup is the host's, mounted read-only.
        using var machine = new CgroupMachine()
            .Process(4100, "0::/../docker-abc.scope")
            .Process(5100, "0::/..")
            .Cgroup("system.slice/docker-cforch.scope", 900)
            .Cgroup("system.slice/docker-abc.scope", 4100)
            .Cgroup("system.slice/docker-abc.scope/exec", 4300)
            .Cgroup("system.slice", 5100);

        Assert.Equal([4100, 4300], machine.ProcessesOf(4100));
        // The parent of cf-orch's namespace (system.slice) is no container's own cgroup.
        Assert.Null(machine.ProcessesOf(5100));

        // On a hybrid machine (cgroupfs) each v1 hierarchy is found the same way.
        machine.Process(6100, "8:pids:/../0123abcd", "0::/../0123abcd").Cgroup("pids/docker/0123abcd", 6100, 6150);
        Assert.Equal([6100, 6150], machine.ProcessesOf(6100));
    }

    [Fact]
    public void On_pure_cgroup_v2_and_pure_v1_a_containers_processes_are_read_from_a_proc_and_sys_tree()
    {
        using var v2 = new CgroupMachine()
            .Process(4100, "0::/system.slice/docker-abc.scope")
            .Cgroup("system.slice/docker-abc.scope", 4100)
            .Cgroup("system.slice/docker-abc.scope/exec", 4300)
            .Cgroup("system.slice/containerd.service", 800);
        Assert.Equal([4100, 4300], v2.ProcessesOf(4100));

        using var v1 = new CgroupMachine()
            .Process(3916, "9:name=systemd:/docker/abc", "4:memory:/docker/abc")
            .Cgroup("systemd/docker/abc", 3916, 3969);
        Assert.Equal([3916, 3969], v1.ProcessesOf(3916));

        // No /proc entry (the process is gone): none.
        Assert.Null(v1.ProcessesOf(4242));
    }

    /// <summary>A /proc and a /sys/fs/cgroup of a test's own: which cgroups each process is in, and each cgroup's processes.</summary>
    private sealed class CgroupMachine : IDisposable
    {
        private readonly TempDir _root = new();

        public CgroupMachine Process(int pid, params string[] cgroups)
        {
            _root.Write($"proc/{pid}/cgroup", string.Join('\n', cgroups) + "\n");
            return this;
        }

        public CgroupMachine Cgroup(string path, params int[] pids)
        {
            _root.Write($"sys/fs/cgroup/{path}/cgroup.procs", string.Concat(pids.Select(p => $"{p}\n")));
            return this;
        }

        public void Remove(string path) => Directory.Delete(System.IO.Path.Combine(_root.Path, "sys/fs/cgroup", path), recursive: true);

        public IReadOnlyList<int>? ProcessesOf(int pid) =>
            ProcFs.CgroupProcesses(pid, System.IO.Path.Combine(_root.Path, "proc"), System.IO.Path.Combine(_root.Path, "sys/fs/cgroup"));

        public void Dispose() => _root.Dispose();
    }

    [Fact]
    public void Tcp_listen_sockets_on_the_port_are_found_on_any_local_address()
    {
        Assert.Equal([123456L, 555555L], ProcNetTcp.ListeningInodes(Tcp, 11434));
        Assert.Equal([222222L], ProcNetTcp.ListeningInodes(Tcp, 8080));
    }

    [Fact]
    public void Established_and_time_wait_sockets_are_not_listening()
    {
        // Line 3's local port is 0xD3F4 = 54260, ESTABLISHED; line 4 is TIME_WAIT with inode 0.
        Assert.Empty(ProcNetTcp.ListeningInodes(Tcp, 54260));
        Assert.Empty(ProcNetTcp.ListeningInodes(Tcp, 0xD3F6));
        Assert.False(ProcNetTcp.TryParseListening(
            "   4: 0100007F:2CAA 0100007F:D3F6 0A 00000000:00000000 03:00001234 00000000     0        0 0 3 0", out _, out _));
    }

    [Fact]
    public void Tcp6_addresses_of_32_hex_digits_are_read_the_same_way()
    {
        Assert.Equal([777777L], ProcNetTcp.ListeningInodes(Tcp6, 8080));
        Assert.Equal([888888L], ProcNetTcp.ListeningInodes(Tcp6, 2024));
        Assert.Empty(ProcNetTcp.ListeningInodes(Tcp6, 0xA1B2));
    }

    [Fact]
    public void One_line_gives_its_hex_port_and_the_inode_column()
    {
        Assert.True(ProcNetTcp.TryParseListening(
            "  12: 00000000:FFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4294967296 1 0000000000000000 100 0 0 10 0",
            out var port, out var inode));

        Assert.Equal(65535, port);
        Assert.Equal(4294967296L, inode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")]
    [InlineData("   0: 0100007F:2CAA 00000000:0000 0A")]
    [InlineData("   0: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1")]
    [InlineData("   0: 0100007F2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1")]
    [InlineData("   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 -5 1")]
    [InlineData("garbage")]
    public void Lines_that_are_not_listen_sockets_are_skipped(string line)
    {
        Assert.False(ProcNetTcp.TryParseListening(line, out _, out _));
    }

    [Theory]
    [InlineData("socket:[123456]", 123456L)]
    [InlineData("socket:[1]", 1L)]
    public void Socket_links_give_their_inode(string target, long expected)
    {
        Assert.True(ProcNetTcp.TryParseSocketInode(target, out var inode));
        Assert.Equal(expected, inode);
    }

    [Theory]
    [InlineData("pipe:[123456]")]
    [InlineData("anon_inode:[eventpoll]")]
    [InlineData("/dev/null")]
    [InlineData("socket:[]")]
    [InlineData("socket:[12")]
    [InlineData("socket:[x1]")]
    public void Other_links_are_not_sockets(string target)
    {
        Assert.False(ProcNetTcp.TryParseSocketInode(target, out _));
    }

    [Fact]
    public void A_stat_line_gives_state_parent_group_and_start_time()
    {
        var stat = ProcStat.Parse(
            "11167 (cat) R 11163 11163 9799 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 404750 3133440 413 18446744073709551615 94460909129728 0 17 1 0 0\n");

        Assert.Equal(new ProcStat(11167, "cat", 'R', 11163, 11163, 404750), stat);
    }

    [Theory]
    [InlineData("my (weird) prog")]
    [InlineData("a) S 1 2 3")]
    [InlineData("x y z")]
    [InlineData(")")]
    [InlineData("")]
    public void A_comm_with_spaces_and_parentheses_is_split_after_the_last_paren(string comm)
    {
        var stat = ProcStat.Parse(
            $"4242 ({comm}) S 17 4240 4240 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 3 0 987654321 10000000 250 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0");

        Assert.Equal(new ProcStat(4242, comm, 'S', 17, 4240, 987654321), stat);
    }

    [Theory]
    [InlineData("")]
    [InlineData("4242 (sleep")]
    [InlineData("(sleep) S 1 1 1")]
    [InlineData("4242 (sleep) S 17 4240")]
    [InlineData("4242 (sleep) S x 4240 4240 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 3 0 987654321 1")]
    [InlineData("4242 (sleep) S 17 4240 4240 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 3 0 soon 1")]
    public void Something_that_is_not_a_stat_line_parses_to_null(string line)
    {
        Assert.Null(ProcStat.Parse(line));
    }

    [Fact]
    public void A_loopback_listener_of_this_process_is_found_by_its_port()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        Assert.Contains(Environment.ProcessId, ProcFs.ListeningPids(port));
    }

    [Fact]
    public void An_ipv6_any_listener_of_this_process_is_found_by_its_port()
    {
        Assert.SkipUnless(Socket.OSSupportsIPv6, "IPv6 is disabled on this machine");
        using var listener = new TcpListener(IPAddress.IPv6Any, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var pids = ProcFs.ListeningPids(port);

        Assert.Contains(Environment.ProcessId, pids);
        Assert.Equal(pids.Order().Distinct(), pids);
    }

    [Fact]
    public async Task A_port_nobody_listens_on_has_no_pids_and_a_client_socket_is_not_listening()
    {
        var ct = TestContext.Current.CancellationToken;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, ct).AsTask().WaitAsync(Deadline, ct);
        using var accepted = await listener.AcceptTcpClientAsync(ct).AsTask().WaitAsync(Deadline, ct);

        // The client's own end is ESTABLISHED on an ephemeral port: no LISTEN socket there.
        Assert.Empty(ProcFs.ListeningPids(((IPEndPoint)client.Client.LocalEndPoint!).Port));

        listener.Stop();
        Assert.Empty(ProcFs.ListeningPids(port));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(65536)]
    public void A_port_out_of_range_has_no_pids(int port)
    {
        Assert.Empty(ProcFs.ListeningPids(port));
    }

    [Fact]
    public async Task The_children_of_a_shell_are_its_descendants_and_the_tree_includes_it()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sh = StartShell("sleep 30 & sleep 30 & wait");
        try
        {
            // A child is "sh" between its fork and its exec of sleep: wait until both have become sleep.
            var sleeps = await PollAsync(() => ProcFs.Descendants(sh.Id), found => found.Count == 2 && found.All(pid => ProcFs.ProcessName(pid) == "sleep"), ct);

            Assert.All(sleeps, pid =>
            {
                Assert.Equal("sleep", ProcFs.ProcessName(pid));
                Assert.Equal(sh.Id, ProcFs.ParentPid(pid));
                Assert.True(ProcFs.IsRunning(pid));
                // A shell without job control keeps its background jobs in its own process group.
                Assert.Equal(ProcFs.ProcessGroup(sh.Id), ProcFs.ProcessGroup(pid));
            });
            Assert.Equal(sleeps.Append(sh.Id).Order(), ProcFs.ProcessTree(sh.Id));
            var ours = ProcFs.Descendants(Environment.ProcessId);
            Assert.Contains(sh.Id, ours);
            Assert.Contains(sleeps[0], ours);

            // Read up the parents, the same answers.
            Assert.All(sleeps, pid => Assert.True(ProcFs.DescendsFrom(pid, sh.Id)));
            Assert.True(ProcFs.DescendsFrom(sleeps[1], Environment.ProcessId));
            Assert.False(ProcFs.DescendsFrom(sh.Id, sleeps[0]));
            Assert.False(ProcFs.DescendsFrom(sleeps[0], sleeps[1]));
            Assert.False(ProcFs.DescendsFrom(sh.Id, sh.Id));
        }
        finally
        {
            await KillAsync(sh, ct);
        }
    }

    [Fact]
    public void A_process_without_children_has_no_descendants_and_is_its_own_tree()
    {
        Assert.Empty(ProcFs.Descendants(int.MaxValue));
        Assert.Equal([int.MaxValue], ProcFs.ProcessTree(int.MaxValue));
    }

    [Fact]
    public async Task The_start_time_of_this_process_is_stable_and_a_new_child_started_later()
    {
        var ct = TestContext.Current.CancellationToken;
        var self = ProcFs.StartTime(Environment.ProcessId);
        Assert.NotNull(self);
        Assert.Equal(self, ProcFs.StartTime(Environment.ProcessId));

        using var sh = StartShell("exec sleep 30");
        try
        {
            var child = ProcFs.StartTime(sh.Id);
            Assert.NotNull(child);
            Assert.True(child > self, $"child started at tick {child}, this process at {self}");
            Assert.Equal(Environment.ProcessId, ProcFs.ParentPid(sh.Id));
        }
        finally
        {
            await KillAsync(sh, ct);
        }
    }

    [Fact]
    public async Task An_exited_and_reaped_child_is_not_running_and_has_no_stat()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sh = StartShell("exit 0");
        var pid = sh.Id;
        await sh.WaitForExitAsync(ct).WaitAsync(Deadline, ct);

        Assert.False(ProcFs.IsRunning(pid));
        Assert.Null(ProcFs.StartTime(pid));
        Assert.Null(ProcFs.ParentPid(pid));
        Assert.Null(ProcFs.ProcessGroup(pid));
    }

    [Fact]
    public async Task A_zombie_exists_but_is_not_running()
    {
        var ct = TestContext.Current.CancellationToken;
        // `true &` exits at once; its parent then becomes `sleep`, which never reaps it.
        using var sh = StartShell("true & exec sleep 30");
        try
        {
            var zombies = await PollAsync(
                () => ProcFs.Descendants(sh.Id),
                found => found.Count == 1 && ProcFs.StartTime(found[0]) is not null && !ProcFs.IsRunning(found[0]),
                ct);

            Assert.Equal('Z', ProcFs.ReadStat(zombies[0])?.State);
            Assert.True(ProcFs.IsRunning(sh.Id));
        }
        finally
        {
            await KillAsync(sh, ct);
        }
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(0)]
    [InlineData(-1)]
    public void A_pid_that_does_not_exist_has_nothing(int pid)
    {
        Assert.False(ProcFs.IsRunning(pid));
        Assert.Null(ProcFs.StartTime(pid));
        Assert.Null(ProcFs.ParentPid(pid));
        Assert.Null(ProcFs.ProcessGroup(pid));
    }

    [Fact]
    public void This_process_is_running()
    {
        Assert.True(ProcFs.IsRunning(Environment.ProcessId));
        Assert.NotNull(ProcFs.ParentPid(Environment.ProcessId));
        Assert.NotNull(ProcFs.ProcessGroup(Environment.ProcessId));
    }

    private static Process StartShell(string script)
    {
        var info = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        return Process.Start(info) ?? throw new InvalidOperationException("/bin/sh did not start");
    }

    private static async Task<IReadOnlyList<int>> PollAsync(
        Func<IReadOnlyList<int>> read, Func<IReadOnlyList<int>, bool> done, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var value = read();
            if (done(value))
                return value;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"Still [{string.Join(", ", value)}] after {Deadline.TotalSeconds} s.");
            await Task.Delay(20, ct);
        }
    }

    private static async Task KillAsync(Process process, CancellationToken ct)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }

        await process.WaitForExitAsync(ct).WaitAsync(Deadline, ct);
    }
}
