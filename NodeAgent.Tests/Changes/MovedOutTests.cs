using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>
/// An entry renamed to somewhere outside the tree is reported by inotify only as the first half of a rename; the agent
/// records it as deleted from the watch, with everything below it, without waiting for a scan (scans are hours apart here).
/// </summary>
public sealed class MovedOutTests : IDisposable
{
    private readonly TempTree _tree = new();

    /// <summary>A sibling of the tree on the same file system, so that moving there is a rename.</summary>
    private readonly TempTree _outside = new();

    public void Dispose()
    {
        _tree.Dispose();
        _outside.Dispose();
    }

    private static bool Has(List<StoredEvent> events, string type, string path) => events.Any(e => e.Type == type && e.Path == path);

    [Fact]
    public async Task Directory_moved_out_of_the_tree_is_deleted_from_state_without_a_scan()
    {
        // 1,200 files in 4 × 5 nested directories, beside a file that stays.
        _tree.Shell("for a in 0 1 2 3; do for b in 0 1 2 3 4; do mkdir -p course/a$a/b$b && (cd course/a$a/b$b && touch $(seq -f 'f%03g.c' 1 60)); done; done");
        _tree.File("kept.c", "k");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();
        Assert.Equal(1 + 4 + 20 + 1_200 + 1, (await watched.StoredStateAsync()).Count);

        _tree.Shell($"mv course '{_outside.Root}/course'");
        await watched.WaitForEventsAsync(e => Has(e, "delete", "course"), TimeSpan.FromSeconds(20));
        await watched.SettleAsync();

        var events = (await watched.EventsAsync()).Skip(before).ToList();
        Assert.Equal(1 + 4 + 20 + 1_200, events.Count);
        Assert.All(events, e => Assert.Equal(("delete", "watch"), (e.Type, e.Source)));
        Assert.Contains(events, e => e.Path == "course/a3/b4/f060.c");
        Assert.Equal(["kept.c"], (await watched.StoredStateAsync()).Keys);

        // Its watches ended: what is done to it where it went is no change in the tree.
        Assert.Equal(1, await watched.MetricAsync("nodemonitor_changes_watches"));
        File.WriteAllText(Path.Combine(_outside.Root, "course/a0/b0/f001.c"), "written outside");
        _tree.File("marker.c", "m");
        await watched.WaitForEventsAsync(e => Has(e, "create", "marker.c"));
        await watched.SettleAsync();
        Assert.Equal(["create marker.c"], (await watched.EventsAsync()).Skip(before + events.Count).Select(e => $"{e.Type} {e.Path}"));
    }

    [Fact]
    public async Task File_moved_out_of_the_tree_is_deleted_from_state_without_a_scan()
    {
        _tree.File("hw1/main.c", "int main(void) { return 0; }\n");
        _tree.File("hw1/kept.c", "k");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        _tree.Shell($"mv hw1/main.c '{_outside.Root}/main.c'");
        await watched.WaitForEventsAsync(e => Has(e, "delete", "hw1/main.c"), TimeSpan.FromSeconds(20));
        await watched.SettleAsync();

        var deleted = Assert.Single((await watched.EventsAsync()).Skip(before));
        Assert.Equal(("delete", "hw1/main.c", "watch"), (deleted.Type, deleted.Path, deleted.Source));
        Assert.Equal(["hw1", "hw1/kept.c"], (await watched.StoredStateAsync()).Keys);
    }

    [Fact]
    public async Task Directory_moved_out_and_made_again_at_the_same_name_is_deleted_then_created()
    {
        _tree.File("build/old/1.o", "old one");
        _tree.File("build/old/2.o", "old two");
        _tree.File("build/same.o", "old same");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        // What a tool that swaps its output directory does: the old one is moved aside, a new one takes its name at once.
        _tree.Shell($"mv build '{_outside.Root}/build' && mkdir -p build/new && printf 'new same' > build/same.o && printf 'n' > build/new/3.o");
        await watched.WaitForEventsAsync(e => Has(e, "delete", "build/old/1.o") && Has(e, "create", "build/new/3.o"), TimeSpan.FromSeconds(20));
        await watched.SettleAsync();

        var events = (await watched.EventsAsync()).Skip(before).Select(e => $"{e.Type} {e.Path}").ToList();
        var deletes = events.TakeWhile(e => e.StartsWith("delete ", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        var creates = events.SkipWhile(e => e.StartsWith("delete ", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(["delete build", "delete build/old", "delete build/old/1.o", "delete build/old/2.o", "delete build/same.o"], deletes);
        Assert.Equal(["create build", "create build/new", "create build/new/3.o", "create build/same.o"], creates);
        await watched.WaitUntilStoredStateEqualsDiskAsync();

        // The new directory is the one watched.
        _tree.File("build/new/4.o", "4");
        await watched.WaitForEventsAsync(e => Has(e, "create", "build/new/4.o"));
    }
}
