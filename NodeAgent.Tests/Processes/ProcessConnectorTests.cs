using System.Diagnostics;
using NodeAgent.Processes;

namespace NodeAgent.Tests.Processes;

/// <summary>The kernel's process-event connector, read for real: processes started here are seen exec'ing and exiting.</summary>
public sealed class ProcessConnectorTests
{
    /// <summary>Listens while <paramref name="run"/> runs processes (returning their pids), until each one's exit is seen.</summary>
    private static async Task<List<ProcessEvent>> WatchAsync(Func<Task<int[]>> run)
    {
        using var connector = ProcessConnector.Open(4 << 20);
        var events = new List<ProcessEvent>();
        var buffer = new byte[64 * 1024];
        var pids = await run();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        bool Done() => pids.All(p => events.Any(e => e.IsProcessExit && e.Pid == p));
        while (!Done() && DateTime.UtcNow < deadline)
        {
            connector.Receive(buffer, 50, events);
        }

        Assert.True(Done(), $"exits not seen for all of {string.Join(", ", pids)} among {events.Count} events");
        return events;
    }

    private static async Task<int> RunAsync(string file, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await process.WaitForExitAsync();
        return process.Id;
    }

    [Fact]
    public async Task Exit_code_and_killing_signal_are_told_apart_never_a_signal_death_as_exit_0()
    {
        int exits = 0, segfaults = 0, kills = 0;
        var events = await WatchAsync(async () =>
        [
            exits = await RunAsync("python3", "-c", "import sys; sys.exit(3)"),
            segfaults = await RunAsync("sh", "-c", "kill -SEGV $$"),
            kills = await RunAsync("sh", "-c", "kill -KILL $$"),
        ]);

        ProcessEvent ExitOf(int pid) => events.Single(e => e.IsProcessExit && e.Pid == pid);
        Assert.Equal((3, (int?)null), (ExitOf(exits).ExitCode, ExitOf(exits).Signal));
        Assert.Equal(((int?)null, 11), (ExitOf(segfaults).ExitCode, ExitOf(segfaults).Signal));
        Assert.Equal(((int?)null, 9), (ExitOf(kills).ExitCode, ExitOf(kills).Signal));
        Assert.All(new[] { exits, segfaults, kills }, pid => Assert.Contains(events, e => e.Kind == ProcessEventKind.Exec && e.Pid == pid));
    }

    [Fact]
    public async Task Threads_that_exit_first_do_not_end_the_process()
    {
        var pid = 0;
        var events = await WatchAsync(async () =>
        [
            pid = await RunAsync("python3", "-c",
                "import threading, time\nts = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]\n[t.start() for t in ts]\n[t.join() for t in ts]\ntime.sleep(0.1)"),
        ]);

        Assert.True(events.Count(e => e.Kind == ProcessEventKind.Exit && e.Tgid == pid && e.Pid != pid) >= 4);
        var end = Assert.Single(events, e => e.IsProcessExit && e.Pid == pid);
        Assert.Equal(0, end.ExitCode);
        // The whole process ends after its threads.
        Assert.True(events.IndexOf(end) > events.FindLastIndex(e => e.Kind == ProcessEventKind.Exit && e.Tgid == pid && e.Pid != pid));
    }
}
