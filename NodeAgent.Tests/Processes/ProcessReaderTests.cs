using System.Diagnostics;
using System.Text;
using NodeAgent.Processes;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Processes;

/// <summary>What is read of a running process from /proc: real processes, real cgroups.</summary>
public sealed class ProcessReaderTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Arguments_with_spaces_quotes_and_odd_bytes_are_read_exactly_with_cwd_and_ids()
    {
        var odd = new byte[] { (byte)'x', 0xFF, (byte)'y' };
        using var process = StartSleeper(_tree.Dir("work dir"), "a b", "\"quoted\" 'too'", odd);

        var details = new ProcessReader().Read(process.Id, 32 * 1024);

        Assert.Equal(PythonExecutable(), Encoding.UTF8.GetString(details.Executable!));
        Assert.Equal(["a b", "\"quoted\" 'too'"], details.Arguments!.Skip(4).Take(2).Select(a => Encoding.UTF8.GetString(a)));
        Assert.Equal(odd, details.Arguments![^1]);
        Assert.False(details.ArgumentsCut);
        Assert.Equal(Path.Combine(_tree.Root, "work dir"), Encoding.UTF8.GetString(details.WorkingDirectory!));
        Assert.Equal((0, 0, Environment.ProcessId), (details.Uid, details.Gid, details.ParentPid));
        Assert.Equal(ProcessReadFlags.None, details.Missing);
        await Task.CompletedTask;
    }

    [Fact]
    public void User_group_and_parent_are_the_real_ones_of_a_process_run_as_another_user()
    {
        using var process = Process.Start(new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65533", "--clear-groups", "sleep", "30"]))!;
        try
        {
            // setpriv changes its ids and then becomes sleep: wait until it has.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            var details = new ProcessReader().Read(process.Id, 4096);
            while (details.Uid != 65534 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(10);
                details = new ProcessReader().Read(process.Id, 4096);
            }

            Assert.Equal((65534, 65533, Environment.ProcessId), (details.Uid, details.Gid, details.ParentPid));
        }
        finally
        {
            process.Kill();
            process.WaitForExit();
        }
    }

    [Fact]
    public void Arguments_longer_than_the_bound_are_cut_and_flagged()
    {
        using var process = StartSleeper(_tree.Root, new string('a', 5000));

        var details = new ProcessReader().Read(process.Id, 1000);

        Assert.True(details.ArgumentsCut);
        Assert.True(details.Arguments!.Sum(a => a.Length + 1) <= 1001);
    }

    [Fact]
    public void Process_gone_before_it_is_read_is_flagged_not_guessed()
    {
        using var process = Process.Start("true")!;
        process.WaitForExit();

        var details = new ProcessReader().Read(process.Id, 1000);

        Assert.True(details.Missing.HasFlag(ProcessReadFlags.Executable));
        Assert.Null(details.Executable);
        Assert.Null(details.ContainerId);
    }

    [Fact]
    public void Process_in_a_pod_container_cgroup_is_attributed_to_its_container_and_pod()
    {
        const string Pod = "0b5a3c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b";
        var container = string.Concat(Enumerable.Repeat("ab12cd34", 8));
        var controller = Directory.Exists("/sys/fs/cgroup/pids") ? "/sys/fs/cgroup/pids" : "/sys/fs/cgroup";
        var cgroup = Path.Combine(controller, $"nodemonitor-test-{Environment.ProcessId}", $"pod{Pod}", container);
        using var process = StartSleeper(_tree.Root);
        Directory.CreateDirectory(cgroup);
        try
        {
            File.WriteAllText(Path.Combine(cgroup, "cgroup.procs"), process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

            var details = new ProcessReader().Read(process.Id, 1000);

            Assert.Equal(container, details.ContainerId);
            Assert.Equal(Pod, details.PodUid);
        }
        finally
        {
            process.Kill();
            process.WaitForExit();
            foreach (var directory in new[] { cgroup, Path.GetDirectoryName(cgroup)!, Path.GetDirectoryName(Path.GetDirectoryName(cgroup))! })
            {
                for (var attempt = 0; attempt < 50 && Directory.Exists(directory); attempt++)
                {
                    try
                    {
                        Directory.Delete(directory);
                    }
                    catch (IOException)
                    {
                        Thread.Sleep(20);
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5a3c3e_1f2d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-ID.scope", true)]
    [InlineData("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b5a3c3e_1f2d_4e5f_8a9b_0c1d2e3f4a5b.slice/crio-ID.scope", true)]
    [InlineData("12:pids:/kubepods/burstable/pod0b5a3c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b/ID\n0::/", true)]
    [InlineData("0::/system.slice/docker-ID.scope", false)]
    [InlineData("0::/docker/ID", false)]
    public void Container_and_pod_are_found_in_every_runtime_and_driver_naming(string line, bool inPod)
    {
        var id = string.Concat(Enumerable.Repeat("0123456789abcdef", 4));

        var (container, pod) = Cgroups.Parse(line.Replace("ID", id, StringComparison.Ordinal));

        Assert.Equal(id, container);
        Assert.Equal(inPod ? "0b5a3c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b" : null, pod);
    }

    [Fact]
    public void Host_process_has_no_container()
    {
        Assert.Equal((null, null), Cgroups.Parse("0::/user.slice/user-1000.slice/session-3.scope\n1:name=systemd:/"));
    }

    /// <summary>The file python3 runs as, links and version shims resolved (what /proc/&lt;pid&gt;/exe names).</summary>
    private static string PythonExecutable()
    {
        using var python = Process.Start(new ProcessStartInfo("python3", ["-c", "import os, sys; print(os.path.realpath(sys.executable))"]) { RedirectStandardOutput = true })!;
        var path = python.StandardOutput.ReadToEnd().Trim();
        python.WaitForExit();
        return path;
    }

    /// <summary>A python3 that sleeps, started in <paramref name="cwd"/> with the given arguments (text or exact bytes).</summary>
    private static Process StartSleeper(string cwd, params object[] arguments)
    {
        // Bytes that are not UTF-8 cannot pass through .NET's argument list: a shell builds them with printf.
        var script = new StringBuilder("exec python3 -c 'import time; time.sleep(30)' --");
        foreach (var argument in arguments)
        {
            script.Append(argument is byte[] bytes
                ? $" \"$(printf '{string.Concat(bytes.Select(b => $"\\{Convert.ToString(b, 8).PadLeft(3, '0')}"))}')\""
                : $" '{((string)argument).Replace("'", "'\\''", StringComparison.Ordinal)}'");
        }

        var process = Process.Start(new ProcessStartInfo("bash", ["-c", script.ToString()]) { WorkingDirectory = cwd })!;
        // Wait for the exec into python3.
        for (var i = 0; i < 100 && !File.ReadAllText($"/proc/{process.Id}/cmdline").StartsWith("python3", StringComparison.Ordinal); i++)
        {
            Thread.Sleep(20);
        }

        return process;
    }
}
