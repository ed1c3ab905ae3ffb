using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>What the watch cannot see is found by comparing scans with the stored state, and recorded as seen by the scan.</summary>
public sealed class ReconcileTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task First_start_records_what_is_there_as_create_events_seen_by_the_scan()
    {
        _tree.File("a/one.c", "1");
        _tree.File("two.py", "2");

        await using var watched = await WatchedTree.StartAsync(_tree);
        await watched.WaitUntilStoredStateEqualsDiskAsync();

        var events = await watched.EventsAsync();
        Assert.Equal(["create a", "create a/one.c", "create two.py"], events.Select(e => $"{e.Type} {e.Path}"));
        Assert.All(events, e => Assert.Equal("scan", e.Source));
    }

    [Fact]
    public async Task Changes_made_while_the_agent_was_stopped_are_found_at_start_against_the_stored_state()
    {
        _tree.File("kept.c", "same");
        _tree.File("edited.c", "before");
        _tree.File("removed.c", "gone soon");
        await using var watched = await WatchedTree.StartAsync(_tree);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        var before = await watched.BaselineAsync();
        await watched.StopAgentAsync();

        _tree.File("edited.c", "after the agent stopped");
        File.Delete(Path.Combine(_tree.Root, "removed.c"));
        _tree.File("added.c", "new");
        await watched.StartAgentAsync();
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        await watched.SettleAsync();

        var events = (await watched.EventsAsync()).Skip(before).Select(e => $"{e.Type} {e.Path} {e.Source}").Order(StringComparer.Ordinal);
        Assert.Equal(["create added.c scan", "delete removed.c scan", "modify edited.c scan"], events);
    }

    [Fact]
    public async Task Periodic_scan_finds_what_the_watch_missed_in_a_directory_it_could_not_watch()
    {
        // Root reads every directory; the agent runs as nobody so that one directory can be made unwatchable
        // (no search permission) and then opened again without the watch being told.
        _tree.File("open/a.c", "a");
        _tree.File("shut/b.c", "b");
        _tree.Shell("chmod -R a+rwX . && chmod 0 shut");
        await using var watched = await WatchedTree.StartAsync(_tree, server: null, runAs: "nobody", ("Agent__Inventory__ScanInterval", "00:00:01"));
        await watched.WaitForEventsAsync(e => e.Any(x => x.Path == "open/a.c"));

        _tree.Shell("chmod 755 shut");
        await watched.WaitUntilStoredStateEqualsDiskAsync();

        var found = (await watched.EventsAsync()).Single(e => e.Path == "shut/b.c");
        Assert.Equal(("create", "scan"), (found.Type, found.Source));
        // Now watched, its next change is seen by the watch.
        _tree.File("shut/c.c", "c");
        var events = await watched.WaitForEventsAsync(e => e.Any(x => x.Path == "shut/c.c"));
        Assert.Equal("watch", events.Single(e => e.Path == "shut/c.c").Source);
    }
}
