using System.Diagnostics;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>What an event says of a file's content: its hash, whether it was torn, and the snapshot kept of it.</summary>
public sealed class ContentTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Each_distinct_content_is_stored_once_and_every_version_can_be_read_back()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);

        _tree.File("hw2/main.c", "version A\n");
        await watched.WaitForEventsAsync(e => e.Any(x => x.Path == "hw2/main.c"));
        _tree.File("hw2/main.c", "version B, longer\n");
        await watched.WaitForEventsAsync(e => e.Count(x => x.Path == "hw2/main.c") == 2);
        _tree.File("hw2/main.c", "version A\n");
        await watched.WaitForEventsAsync(e => e.Count(x => x.Path == "hw2/main.c") == 3);
        // The same content under another name is stored once too.
        _tree.File("hw2/copy.c", "version A\n");
        await watched.WaitForEventsAsync(e => e.Any(x => x.Path == "hw2/copy.c"));

        await using var command = watched.Database.CreateCommand(
            "SELECT convert_from(content, 'UTF8') FROM file_versions WHERE path = 'hw2/main.c' ORDER BY event_id");
        var versions = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                versions.Add(reader.GetString(0));
            }
        }

        Assert.Equal(["version A\n", "version B, longer\n", "version A\n"], versions);
        await using var count = watched.Database.CreateCommand("SELECT count(*) FROM file_contents");
        Assert.Equal(2L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_first_start_keeps_the_exact_content_of_every_source_file_across_many_batches()
    {
        // About 3 MiB of sources (what a scan finds goes into batches of 1 MiB), a few of them of 40 KB.
        var expected = new Dictionary<string, byte[]>();
        for (var i = 0; i < 400; i++)
        {
            var size = i % 50 == 0 ? 40_000 + i : 3_000 + i * 17 % 5_000;
            var content = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, size / 12 + 1).Select(k => $"/* {i:000} {k:0000}*/")))[..size];
            var path = $"s{i % 20:00}/hw{i / 20:00}.c";
            _tree.File(path, System.Text.Encoding.ASCII.GetString(content));
            expected[path] = content;
        }

        await using var watched = await WatchedTree.StartAsync(_tree);
        await watched.WaitUntilStoredStateEqualsDiskAsync();

        var stored = (await watched.Database.RowsAsync("SELECT path, content FROM file_versions"))
            .ToDictionary(r => (string)r[0]!, r => (byte[])r[1]!);
        Assert.Equal(expected.Keys.Order(), stored.Keys.Order());
        Assert.All(expected, e => Assert.True(e.Value.AsSpan().SequenceEqual(stored[e.Key]), $"{e.Key}: stored content differs"));
        Assert.True(await watched.MetricAsync("nodemonitor_changes_store_duration_seconds_count") >= 3, "stored in at least three batches");
        Assert.Equal([[0L]], await watched.Database.RowsAsync("SELECT count(*) FROM file_contents WHERE sha256 <> sha256(content)"));
    }

    [Fact]
    public async Task Large_or_unlisted_files_get_their_event_and_hash_but_no_snapshot()
    {
        await using var watched = await WatchedTree.StartAsync(_tree,
            ("Agent__Changes__SnapshotMaxBytes", "1000"), ("Agent__Changes__HashMaxBytes", "100000"));

        _tree.File("big.c", new string('x', 5000));
        _tree.File("notes.txt", "not a source file");
        _tree.Shell("head -c 200000 /dev/zero > huge.c");
        var events = await watched.WaitForEventsAsync(e => e.Count(x => x.Type == "create") == 3);

        var big = events.Single(e => e.Path == "big.c");
        Assert.True(big.TooLarge);
        Assert.Null(big.Snapshot);
        Assert.NotNull(big.Sha256);
        var notes = events.Single(e => e.Path == "notes.txt");
        Assert.False(notes.TooLarge);
        Assert.Null(notes.Snapshot);
        Assert.NotNull(notes.Sha256);
        var huge = events.Single(e => e.Path == "huge.c");
        Assert.True(huge.NotHashed);
        Assert.True(huge.TooLarge);
        Assert.Null(huge.Sha256);
        Assert.Equal(200000, huge.Size);
    }

    [Fact]
    public async Task File_that_changes_while_it_is_read_is_read_again_then_marked_torn_never_dropped()
    {
        _tree.Shell("head -c 60000000 /dev/urandom > growing.log");
        await using var watched = await WatchedTree.StartAsync(_tree, ("Agent__Changes__MaxWait", "00:00:00.3"));
        var before = await watched.BaselineAsync();

        // Appends every millisecond for three seconds: reading 60 MB takes longer than the gap between two appends.
        using (var writer = Process.Start(new ProcessStartInfo("python3", ["-c",
            "import time,sys\nf=open(sys.argv[1],'ab',0)\nend=time.time()+3\nwhile time.time()<end:\n f.write(b'x'*100); time.sleep(0.001)\n",
            Path.Combine(_tree.Root, "growing.log")]))!)
        {
            await writer.WaitForExitAsync();
        }

        var events = await watched.WaitForEventsAsync(e => e.Skip(before).Any(x => x.Path == "growing.log" && x.Torn));
        // Once it is quiet, it is read whole: the last event's hash is the file's.
        var sum = await Sha256SumAsync(Path.Combine(_tree.Root, "growing.log"));
        events = await watched.WaitForEventsAsync(e => e.Last(x => x.Path == "growing.log").Sha256 == sum);
        Assert.False(events.Last(x => x.Path == "growing.log").Torn);
        Assert.All(events.Skip(before), e => Assert.Equal("modify", e.Type));
    }

    private static async Task<string> Sha256SumAsync(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("sha256sum", [path]) { RedirectStandardOutput = true })!;
        var line = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return line.Split(' ')[0];
    }
}
