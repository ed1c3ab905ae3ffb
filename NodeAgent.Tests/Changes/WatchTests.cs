using System.Security.Cryptography;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>Real inotify on real trees, seen through what the real agent stores.</summary>
public sealed class WatchTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    private static bool Has(List<StoredEvent> events, string type, string path) => events.Any(e => e.Type == type && e.Path == path);

    [Fact]
    public async Task Each_event_type_is_stored_once_with_what_it_changed()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);

        _tree.File("hw1/main.c", "int main(void) { return 0; }\n");
        await watched.WaitForEventsAsync(e => Has(e, "create", "hw1/main.c"));
        File.AppendAllText(Path.Combine(_tree.Root, "hw1/main.c"), "// more\n");
        await watched.WaitForEventsAsync(e => Has(e, "modify", "hw1/main.c"));
        _tree.Shell("chmod 600 hw1/main.c");
        await watched.WaitForEventsAsync(e => Has(e, "attrib", "hw1/main.c"));
        _tree.Shell("mv hw1/main.c hw1/prog.c");
        await watched.WaitForEventsAsync(e => Has(e, "rename", "hw1/prog.c"));
        _tree.Shell("rm hw1/prog.c");
        var events = await watched.WaitForEventsAsync(e => Has(e, "delete", "hw1/prog.c"));
        await watched.SettleAsync();
        events = await watched.EventsAsync();

        Assert.Equal(
            ["create hw1", "create hw1/main.c", "modify hw1/main.c", "attrib hw1/main.c", "rename hw1/prog.c", "delete hw1/prog.c"],
            events.Select(e => $"{e.Type} {e.Path}"));
        Assert.All(events, e => Assert.Equal("watch", e.Source));
        var modify = events.Single(e => e.Type == "modify");
        Assert.Equal(37, modify.Size);
        var attrib = events.Single(e => e.Type == "attrib");
        Assert.Equal(Convert.ToInt32("600", 8), attrib.Mode);
        Assert.Equal(modify.Sha256, attrib.Sha256);
        Assert.Equal("hw1/main.c", events.Single(e => e.Type == "rename").OldPath);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        Assert.Equal(2, await watched.MetricAsync("file_events_total", "event_type=\"create\""));
        Assert.Equal(1, await watched.MetricAsync("file_events_total", "event_type=\"rename\""));
    }

    [Fact]
    public async Task Memory_held_for_the_state_is_reported_and_grows_with_the_paths_while_no_scan_is_held_once_it_is_compared()
    {
        _tree.File("first.c", "int x;\n");
        await using var watched = await WatchedTree.StartAsync(_tree);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        var few = await watched.MetricAsync("nodemonitor_changes_held_bytes", "part=\"state\"");

        _tree.Shell("mkdir many && cd many && for i in $(seq 3000); do echo \"int v$i;\" > file-$i.c; done");
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        await watched.SettleAsync();
        var many = await watched.MetricAsync("nodemonitor_changes_held_bytes", "part=\"state\"");

        Assert.NotNull(few);
        Assert.NotNull(many);
        // Each path's state is at least its SHA-256 and a few bytes of name and numbers.
        Assert.True(many - few >= 3000 * 40, $"state {few} bytes for 2 paths, {many} bytes for 3,002");
        Assert.Equal(0, await watched.MetricAsync("nodemonitor_changes_held_bytes", "part=\"scan\""));
    }

    [Fact]
    public async Task Hash_of_each_regular_file_matches_sha256sum()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);
        _tree.Shell("head -c 3000000 /dev/urandom > big.bin && printf 'hello\\n' > small.txt && : > empty");

        var events = await watched.WaitForEventsAsync(e => Has(e, "create", "big.bin") && Has(e, "create", "small.txt") && Has(e, "create", "empty"));

        foreach (var name in new[] { "big.bin", "small.txt", "empty" })
        {
            var expected = SumOf(Path.Combine(_tree.Root, name));
            Assert.Equal(expected, events.Last(e => e.Path == name).Sha256);
        }
    }

    [Fact]
    public async Task Editor_style_save_is_one_modify_event()
    {
        _tree.File("src/app.py", "print(1)\n");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        // What editors do: write a new file beside it, then rename it over the old one.
        _tree.Shell("printf 'print(2)\\n' > src/.app.py.swp && mv src/.app.py.swp src/app.py");
        await watched.WaitForEventsAsync(e => e.Count > before);
        await watched.SettleAsync();
        var events = (await watched.EventsAsync()).Skip(before).ToList();

        var save = Assert.Single(events);
        Assert.Equal(("modify", "src/app.py"), (save.Type, save.Path));
        Assert.Equal(SumOf(Path.Combine(_tree.Root, "src/app.py")), save.Sha256);
    }

    [Fact]
    public async Task Rename_across_directories_links_old_and_new_path()
    {
        _tree.File("a/one.c", "1");
        _tree.Dir("b");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        _tree.Shell("mv a/one.c b/two.c");
        var events = await watched.WaitForEventsAsync(e => e.Count > before);
        await watched.SettleAsync();

        var rename = Assert.Single((await watched.EventsAsync()).Skip(before));
        Assert.Equal(("rename", "b/two.c", "a/one.c"), (rename.Type, rename.Path, rename.OldPath));
        Assert.Equal(SumOf(Path.Combine(_tree.Root, "b/two.c")), rename.Sha256);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
    }

    [Fact]
    public async Task After_a_restart_renames_deletes_and_mode_changes_carry_the_stored_SHA_256_on()
    {
        _tree.File("hw/a.c", "int a;\n");
        _tree.File("hw/b.c", "int bb;\n");
        _tree.File("course/x.c", "int x;\n");
        _tree.File("course/deep/y.c", "int y;\n");
        _tree.File("old.c", "int old;\n");
        var sums = new[] { "hw/a.c", "hw/b.c", "old.c" }.ToDictionary(p => p, p => SumOf(Path.Combine(_tree.Root, p)));
        await using var watched = await WatchedTree.StartAsync(_tree);
        await watched.BaselineAsync();
        // Started again, the agent holds the state as loaded from the database, packed and without hashes: each event
        // below takes its hash from the stored row of the path it came from.
        await watched.StopAgentAsync();
        await watched.StartAgentAsync();
        var before = await watched.SettleAsync();

        _tree.Shell("chmod 600 hw/a.c && mv hw/b.c hw/c.c && mv course course-final && rm old.c");
        await watched.WaitForEventsAsync(e =>
            Has(e, "attrib", "hw/a.c") && Has(e, "rename", "hw/c.c") && Has(e, "rename", "course-final") && Has(e, "delete", "old.c"));
        // Moved twice in one batch, then swapped with another: the hash follows the file, not the name.
        _tree.Shell("mv hw/c.c hw/d.c && mv hw/d.c hw/e.c && mv hw/a.c hw/t.c && mv hw/e.c hw/a.c && mv hw/t.c hw/e.c");
        await watched.WaitForEventsAsync(e => Has(e, "rename", "hw/e.c") && e.Count(x => x.Type == "rename" && x.Path == "hw/a.c") == 1);
        await watched.SettleAsync();

        var events = (await watched.EventsAsync()).Skip(before).ToList();
        Assert.Equal(sums["hw/a.c"], events.Single(e => e.Type == "attrib").Sha256);
        Assert.Equal(sums["hw/b.c"], events.Single(e => e.Path == "hw/c.c").Sha256);
        Assert.Equal(sums["old.c"], events.Single(e => e.Type == "delete").Sha256);
        Assert.Equal(sums["hw/b.c"], events.Single(e => e.Type == "rename" && e.Path == "hw/a.c").Sha256);
        Assert.Equal(sums["hw/a.c"], events.Last(e => e.Type == "rename" && e.Path == "hw/e.c").Sha256);
        // Every stored row has its file's hash, the ones below the renamed directory included.
        await watched.WaitUntilStoredStateEqualsDiskAsync();
    }

    [Fact]
    public async Task Renamed_directory_renames_everything_below_it_and_stays_watched()
    {
        _tree.File("course/hw1/a.c", "a");
        _tree.File("course/hw1/deep/b.c", "b");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        _tree.Shell("mv course/hw1 course/hw1-final");
        await watched.WaitForEventsAsync(e => Has(e, "rename", "course/hw1-final"));
        // The moved directory is still watched under its new name.
        _tree.File("course/hw1-final/deep/c.c", "c");
        await watched.WaitForEventsAsync(e => Has(e, "create", "course/hw1-final/deep/c.c"));
        await watched.SettleAsync();

        var events = (await watched.EventsAsync()).Skip(before).Select(e => $"{e.Type} {e.Path}").ToList();
        Assert.Equal(["rename course/hw1-final", "create course/hw1-final/deep/c.c"], events);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
    }

    [Fact]
    public async Task Tree_moved_in_becomes_create_events_and_is_watched()
    {
        using var outside = new TempTree();
        outside.File("incoming/x/1.c", "1");
        outside.File("incoming/x/y/2.c", "2");
        outside.File("incoming/3.txt", "3");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        _tree.Shell($"mv '{outside.Root}/incoming' ./incoming");
        await watched.WaitForEventsAsync(e => Has(e, "create", "incoming/x/y/2.c"));
        _tree.File("incoming/x/y/4.c", "4");
        await watched.WaitForEventsAsync(e => Has(e, "create", "incoming/x/y/4.c"));
        await watched.SettleAsync();

        var created = (await watched.EventsAsync()).Skip(before).Select(e => $"{e.Type} {e.Path}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            ["create incoming", "create incoming/3.txt", "create incoming/x", "create incoming/x/1.c", "create incoming/x/y", "create incoming/x/y/2.c", "create incoming/x/y/4.c"],
            created);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
    }

    [Fact]
    public async Task Tree_copied_in_at_once_becomes_create_events()
    {
        using var outside = new TempTree();
        outside.Populate(300, perDirectory: 50);
        await using var watched = await WatchedTree.StartAsync(_tree);

        _tree.Shell($"cp -r '{outside.Root}' ./copy");
        await watched.WaitUntilStoredStateEqualsDiskAsync();

        var events = await watched.EventsAsync();
        Assert.Equal(300 + 6 + 1, events.Count(e => e.Type == "create"));
        Assert.All(events, e => Assert.Equal("watch", e.Source));
    }

    [Fact]
    public async Task Deleting_a_whole_tree_deletes_every_path_below_it()
    {
        _tree.File("gone/a/1.c", "1");
        _tree.File("gone/a/b/2.c", "2");
        _tree.File("kept.c", "k");
        await using var watched = await WatchedTree.StartAsync(_tree);
        var before = await watched.BaselineAsync();

        _tree.Shell("rm -rf gone");
        await watched.WaitForEventsAsync(e => Has(e, "delete", "gone"));
        await watched.SettleAsync();

        var deleted = (await watched.EventsAsync()).Skip(before).Select(e => $"{e.Type} {e.Path}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["delete gone", "delete gone/a", "delete gone/a/1.c", "delete gone/a/b", "delete gone/a/b/2.c"], deleted);
        await watched.WaitUntilStoredStateEqualsDiskAsync();
    }

    [Fact]
    public async Task Excluded_trees_are_neither_watched_nor_reported()
    {
        _tree.File("repo/.git/HEAD", "ref");
        _tree.File("repo/node_modules/m/index.js", "js");
        await using var watched = await WatchedTree.StartAsync(_tree);

        _tree.File("repo/.git/objects/ab", "obj");
        _tree.File("repo/node_modules/m/more.js", "js");
        _tree.File("repo/main.py", "print()");
        await watched.WaitForEventsAsync(e => Has(e, "create", "repo/main.py"));
        await watched.SettleAsync();

        var paths = (await watched.EventsAsync()).Select(e => e.Path).ToList();
        Assert.DoesNotContain(paths, p => p.Contains(".git", StringComparison.Ordinal) || p.Contains("node_modules", StringComparison.Ordinal));
        // Only the directories that are not excluded cost a watch: the root and repo.
        Assert.Equal(2, await watched.MetricAsync("nodemonitor_changes_watches"));
        await watched.WaitUntilStoredStateEqualsDiskAsync(null, "repo/.git", "repo/node_modules");
    }

    [Fact]
    public async Task Odd_names_are_kept_as_their_exact_bytes()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);

        _tree.Shell("printf 'x' > \"$(printf 'bad\\377name.c')\" && printf 'y' > 'with space and ünïcode.c'");
        var events = await watched.WaitForEventsAsync(e => e.Count(x => x.Type == "create") == 2);

        var odd = events.Single(e => e.Path == "bad\\xffname.c");
        Assert.Equal([.. "bad"u8, 0xFF, .. "name.c"u8], odd.PathBytes);
        var unicode = events.Single(e => e.Path == "with space and ünïcode.c");
        Assert.Null(unicode.PathBytes);
    }

    private static string SumOf(string path)
    {
        var output = new System.Diagnostics.ProcessStartInfo("sha256sum", [path]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(output)!;
        var line = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return line.Split(' ')[0];
    }
}
