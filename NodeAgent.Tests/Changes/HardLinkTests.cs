using System.Security.Cryptography;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>
/// Hard links share one file: a write through one changes every link's size and hash, while inotify reports only the
/// path written through. The agent looks again at the other links it knows, without waiting for a scan.
/// </summary>
public sealed class HardLinkTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    private string Sha(string relativePath) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(_tree.Root, relativePath))));

    [Fact]
    public async Task Write_through_one_hard_link_updates_the_other_links_in_state_without_a_scan()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);
        _tree.File("data/a.txt", "first");
        _tree.Shell("ln data/a.txt data/b.txt && mkdir other && ln data/a.txt other/c.txt");
        await watched.WaitUntilStoredStateEqualsDiskAsync(TimeSpan.FromSeconds(20));
        var before = await watched.SettleAsync();

        File.AppendAllText(Path.Combine(_tree.Root, "data/a.txt"), " and more");
        await watched.WaitForEventsAsync(e => e.Skip(before).Count(x => x.Type == "modify") == 3, TimeSpan.FromSeconds(20));
        await watched.SettleAsync();

        var modified = (await watched.EventsAsync()).Skip(before).ToList();
        Assert.Equal(["data/a.txt", "data/b.txt", "other/c.txt"], modified.Select(e => e.Path).Order(StringComparer.Ordinal));
        Assert.All(modified, e => Assert.Equal(("modify", "watch", 14L, Sha("data/a.txt")), (e.Type, e.Source, e.Size!.Value, e.Sha256)));
        var state = await watched.StoredStateAsync();
        Assert.Equal(state["data/a.txt"], state["data/b.txt"]);
        Assert.Equal(state["data/a.txt"], state["other/c.txt"]);
        await watched.WaitUntilStoredStateEqualsDiskAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Write_through_a_link_outside_the_tree_is_not_seen_until_a_scan()
    {
        using var outside = new TempTree();
        _tree.File("shared.txt", "first");
        await using var watched = await WatchedTree.StartAsync(_tree);
        _tree.Shell($"ln shared.txt '{outside.Root}/shared.txt'");
        var before = await watched.BaselineAsync();

        // inotify reports nothing in the tree for a write at a path outside it.
        File.AppendAllText(Path.Combine(outside.Root, "shared.txt"), " and more");
        await watched.SettleAsync();

        Assert.Empty((await watched.EventsAsync()).Skip(before));
    }
}
