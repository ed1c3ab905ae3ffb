using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelLimits
{
    /// <summary>Tests that lower a machine-wide inotify limit for a moment run alone.</summary>
    public const string Name = "Kernel limits";
}

/// <summary>
/// When the kernel's inotify limits are reached (queue overflow, out of watches), the agent rescans instead of losing
/// changes, says so once with what to raise, and ends with the stored state equal to the disk.
/// </summary>
[Collection(KernelLimits.Name)]
public sealed class KernelLimitTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Queue_overflow_starts_a_rescan_and_the_stored_state_ends_equal_to_the_disk()
    {
        WatchedTree watched;
        // The queue length is fixed when the agent creates its inotify instance: lowered only around its start.
        using (Sysctl.Set("/proc/sys/fs/inotify/max_queued_events", "4"))
        {
            watched = await WatchedTree.StartAsync(_tree);
        }

        await using (watched)
        {
            _tree.Populate(3000, perDirectory: 300);
            await watched.WaitUntilStoredStateEqualsDiskAsync();

            Assert.True(await watched.MetricAsync("nodemonitor_changes_overflows_total") >= 1, "no overflow counted");
            Assert.True(await watched.MetricAsync("nodemonitor_changes_rescans_total", "reason=\"overflow\"") >= 1, "no rescan counted");
            Assert.Contains(watched.Agent!.Lines, l => l.Contains("raise fs.inotify.max_queued_events", StringComparison.Ordinal));
            var events = await watched.EventsAsync();
            Assert.Equal(3000 + 10, events.Count(e => e.Type == "create"));
            Assert.Equal(events.Count, events.Select(e => (e.Type, e.Path)).Distinct().Count());
            Assert.Contains(events, e => e.Source == "scan");
        }
    }

    [Fact]
    public async Task Out_of_watches_is_said_once_and_the_unwatched_part_is_covered_by_the_periodic_scan()
    {
        for (var i = 0; i < 6; i++)
        {
            _tree.File($"d{i}/x.c", "x");
        }

        _tree.Shell("chmod -R a+rwX .");
        // Per user: the agent runs as nobody, who holds no other watch. The limit stays low until the end: raised, the
        // next scan would watch what is left.
        using (Sysctl.Set("/proc/sys/fs/inotify/max_user_watches", "3"))
        {
            await using var watched = await WatchedTree.StartAsync(_tree, server: null, runAs: "nobody", ("Agent__Inventory__ScanInterval", "00:00:01"));
            Assert.Equal(1, watched.Agent!.CountLines("Out of inotify watches"));
            Assert.Contains("Raise fs.inotify.max_user_watches", watched.Agent.Output, StringComparison.Ordinal);
            var watches = await watched.MetricAsync("nodemonitor_changes_watches");
            var unwatched = await watched.MetricAsync("nodemonitor_changes_unwatched_directories");
            Assert.True(unwatched >= 4, $"{unwatched} unwatched");
            Assert.Equal(7, watches + unwatched);

            _tree.File("d5/new.c", "seen by a scan");
            _tree.File("d0/other.c", "seen by the watch or a scan");
            await watched.WaitUntilStoredStateEqualsDiskAsync();
            Assert.Equal("scan", (await watched.EventsAsync()).Single(e => e.Path == "d5/new.c").Source);
            Assert.Equal(1, watched.Agent.CountLines("Out of inotify watches"));
        }
    }

    /// <summary>Sets a kernel parameter, and puts the old value back when disposed.</summary>
    private sealed class Sysctl : IDisposable
    {
        private readonly string _path;
        private readonly string _old;

        private Sysctl(string path, string value)
        {
            _path = path;
            _old = File.ReadAllText(path).Trim();
            File.WriteAllText(path, value);
        }

        public static Sysctl Set(string path, string value) => new(path, value);

        public void Dispose() => File.WriteAllText(_path, _old);
    }
}
