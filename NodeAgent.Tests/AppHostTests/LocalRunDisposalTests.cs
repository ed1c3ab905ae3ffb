using System.Net.Sockets;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Xunit.Abstractions;

namespace NodeAgent.AppHostTests;

/// <summary>What a local run leaves behind once it is disposed: nothing running, nothing listening, no orchestrator state.</summary>
[Collection(LocalAppHost.Collection)]
public sealed class LocalRunDisposalTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Disposed_run_leaves_no_process_port_or_orchestrator_directory_and_the_cluster_shut_down_cleanly()
    {
        await using var host = new DisposableHost();
        await host.Local.InitializeAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var app = host.Local.App;

        var resourcePids = new List<int>();
        foreach (var name in new[] { "postgres", "node-1", "node-2" })
        {
            var running = await app.ResourceNotifications.WaitForResourceAsync(name, e => e.Snapshot.State?.Text == KnownResourceStates.Running, cts.Token);
            resourcePids.Add(Convert.ToInt32(running.Snapshot.Properties.Single(p => p.Name == "executable.pid").Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        var processes = ProcessTable.Read();
        // The orchestrator (dcp) detaches from this process and watches it with --monitor <pid>.
        var started = processes.DescendantsOf(Environment.ProcessId)
            .Concat(processes.MonitorsOf(Environment.ProcessId))
            .Concat(resourcePids.SelectMany(processes.WithDescendants))
            .ToHashSet();
        Assert.Contains(started, p => p.Command.Contains("postgres", StringComparison.Ordinal));
        Assert.Contains(started, p => p.Command.Contains("dcp", StringComparison.Ordinal));
        var orchestratorDirectories = started.Select(p => p.Argument("--kubeconfig")).OfType<string>().Select(Path.GetDirectoryName).Distinct().ToList();
        Assert.NotEmpty(orchestratorDirectories);
        Uri[] endpoints =
        [
            app.GetEndpoint("postgres", "tcp"), app.GetEndpoint("node-1", "http"), app.GetEndpoint("node-2", "http"), host.Local.DashboardUrl,
        ];
        Assert.All(endpoints, endpoint => Assert.True(Accepts(endpoint), $"{endpoint} should be listening while the app runs"));

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await host.Local.StopAsync();
        var disposed = stopping.Elapsed;

        // The orchestrator finishes its own cleanup in the background after disposal returns: give it a bounded time.
        List<ProcessTable.Entry> left;
        while ((left = ProcessTable.Read().Alive(started).ToList()).Count > 0 && stopping.Elapsed < CleanupTimeout)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }

        output.WriteLine($"disposal returned after {disposed.TotalSeconds:F1} s; every process was gone after {stopping.Elapsed.TotalSeconds:F1} s");
        Assert.True(left.Count == 0, "still running: " + string.Join("; ", left.Select(p => $"{p.Pid} {p.Command}")));
        Assert.All(endpoints, endpoint => Assert.False(Accepts(endpoint), $"{endpoint} is still listening"));
        Assert.All(orchestratorDirectories, directory => Assert.False(Directory.Exists(directory), $"{directory} was left behind"));
        // The postmaster removes its pid file when it shuts down cleanly (not when it is killed).
        Assert.True(File.Exists(Path.Combine(host.Local.DataDirectory, "PG_VERSION")), "the cluster was not created where configured");
        Assert.False(File.Exists(Path.Combine(host.Local.DataDirectory, "postmaster.pid")), "PostgreSQL did not shut down cleanly");
    }

    private static bool Accepts(Uri endpoint)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(endpoint.Host == "localhost" ? "127.0.0.1" : endpoint.Host, endpoint.Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private sealed class DisposableHost : IAsyncDisposable
    {
        public LocalAppHost Local { get; } = new();

        public ValueTask DisposeAsync() => new(Local.DisposeAsync());
    }
}

/// <summary>The processes of this machine from /proc: id, parent, start time (to tell a reused id apart) and command line.</summary>
internal sealed class ProcessTable(IReadOnlyList<ProcessTable.Entry> entries)
{
    public sealed record Entry(int Pid, int ParentPid, long StartTicks, string Command)
    {
        public string? Argument(string name)
        {
            var parts = Command.Split(' ');
            var index = Array.IndexOf(parts, name);
            return index >= 0 && index + 1 < parts.Length ? parts[index + 1] : null;
        }
    }

    public static ProcessTable Read()
    {
        var entries = new List<Entry>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                // Fields after the command name, which is in parentheses and may contain spaces.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var command = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ').Trim();
                entries.Add(new Entry(pid, int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture),
                    long.Parse(fields[19], System.Globalization.CultureInfo.InvariantCulture), command));
            }
            catch (IOException)
            {
                // Exited while being read.
            }
        }

        return new ProcessTable(entries);
    }

    public IEnumerable<Entry> DescendantsOf(int pid)
    {
        foreach (var child in entries.Where(e => e.ParentPid == pid))
        {
            yield return child;
            foreach (var descendant in DescendantsOf(child.Pid))
            {
                yield return descendant;
            }
        }
    }

    /// <summary>Processes started with <c>--monitor &lt;pid&gt;</c> (and so on down the chain), with their descendants.</summary>
    public IEnumerable<Entry> MonitorsOf(int pid)
    {
        foreach (var monitor in entries.Where(e => e.Argument("--monitor") == pid.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            foreach (var entry in WithDescendants(monitor.Pid).Concat(MonitorsOf(monitor.Pid)))
            {
                yield return entry;
            }
        }
    }

    public IEnumerable<Entry> WithDescendants(int pid) => entries.Where(e => e.Pid == pid).Concat(DescendantsOf(pid));

    /// <summary>Those of <paramref name="earlier"/> that still run (same id and start time).</summary>
    public IEnumerable<Entry> Alive(IEnumerable<Entry> earlier) =>
        earlier.Where(e => entries.Any(now => now.Pid == e.Pid && now.StartTicks == e.StartTicks));
}
