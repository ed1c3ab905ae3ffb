using NodeAgent.Shared.Tree;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Inventory;
using NodeAgent.Shared.Configuration;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Inventory;

public sealed class TreeScannerTests : IDisposable
{
    private readonly TempTree _tree = new();
    private readonly TreeScanner _scanner = new(NullLogger<TreeScanner>.Instance);

    public void Dispose() => _tree.Dispose();

    private ScanResult Scan() => _scanner.Scan(_tree.Root, CancellationToken.None);

    private static Dictionary<string, int> Index(TreeSnapshot snapshot) =>
        snapshot.Entries().Select((e, i) => (e.Path, i)).ToDictionary(p => p.Path, p => p.i);

    [Fact]
    public void A_scan_after_a_large_one_starts_by_collecting_the_oldest_generation_so_the_earlier_scans_memory_is_given_back()
    {
        _tree.File("a/one.txt", "1");
        // Every scan counts as large here (1 byte), and collections may follow each other at once.
        var scanner = new TreeScanner(NullLogger<TreeScanner>.Instance, collectAfterBytes: 1, collectEveryMilliseconds: 0);
        scanner.Scan(_tree.Root, CancellationToken.None);

        var before = GC.CollectionCount(GC.MaxGeneration);
        scanner.Scan(_tree.Root, CancellationToken.None);
        scanner.Scan(_tree.Root, CancellationToken.None);

        Assert.True(GC.CollectionCount(GC.MaxGeneration) - before >= 2, "each scan after a large one starts with a full collection");
    }

    [Fact]
    public async Task A_walk_hands_out_its_entries_in_tree_order_while_it_goes_and_they_are_the_scans_entries()
    {
        // Uneven top-level subtrees, walked in parallel, read by another thread while the walkers append to their lists.
        for (var d = 0; d < 40; d++)
        {
            for (var f = 0; f < (d % 7) * 20 + 1; f++)
            {
                _tree.File($"d{d:D2}/{(f % 3 == 0 ? "sub/" : "")}f{f:D4}", new string('x', f % 50));
            }

            _tree.File($"r{d:D2}.txt");
        }

        var segments = new ScanSegments();
        var read = Task.Run(async () =>
        {
            var entries = new List<ScannedEntry>();
            await foreach (var segment in segments.ReadAllAsync(CancellationToken.None))
            {
                for (var e = TreeSnapshot.Read(segment); e.MoveNext();)
                {
                    var entry = e.Current;
                    entries.Add(new ScannedEntry(entry.PathBytes.ToArray(), entry.Type, entry.Size, entry.ModifiedUtc, entry.Permissions));
                }
            }

            return entries;
        });
        var scan = await Task.Run(() => _scanner.Scan(_tree.Root, segments, CancellationToken.None));

        var handedOut = await read;
        var scanned = scan.Snapshot.Entries();
        Assert.Equal(scanned.Count, handedOut.Count);
        Assert.Equal(scanned.Select(e => e.Path), handedOut.Select(e => e.Path));
        Assert.Equal(scanned.Select(e => (e.Type, e.Size, e.ModifiedUtc, e.Permissions)), handedOut.Select(e => (e.Type, e.Size, e.ModifiedUtc, e.Permissions)));
    }

    [Fact]
    public void The_hash_taken_while_the_tree_is_walked_is_the_hash_of_the_scans_entries_in_tree_order()
    {
        // Uneven top-level subtrees finish out of order on parallel walkers; the root has entries between and after them.
        for (var d = 0; d < 40; d++)
        {
            for (var f = 0; f < (39 - d) % 9 * 25 + 1; f++)
            {
                _tree.File($"d{d:D2}/{(f % 4 == 0 ? "sub/" : "")}f{f:D4}", new string('y', f % 30));
            }

            _tree.File($"r{d:D2}.txt");
        }

        _tree.File("zz-last.txt");

        for (var scan = 0; scan < 5; scan++)
        {
            var snapshot = Scan().Snapshot;

            Assert.Equal(new TreeSnapshot(snapshot.Segments).ContentHash, snapshot.ContentHash);
        }
    }

    [Fact]
    public async Task A_walk_that_fails_ends_what_it_hands_out_with_its_error()
    {
        var segments = new ScanSegments();

        var error = Assert.Throws<MountPathException>(() => _scanner.Scan(Path.Combine(_tree.Root, "missing"), segments, CancellationToken.None));

        Assert.Same(error, await Assert.ThrowsAsync<MountPathException>(async () =>
        {
            await foreach (var _ in segments.ReadAllAsync(CancellationToken.None))
            {
            }
        }));
    }

    [Fact]
    public void Scan_records_every_entry_of_the_tree_with_relative_path_type_size_time_and_mode()
    {
        _tree.File("top.txt", "hello");
        _tree.File("a/b/c/deep.txt", "1234567890");
        _tree.Dir("empty");
        File.SetUnixFileMode(Path.Combine(_tree.Root, "top.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var modified = new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc).AddTicks(1234567);
        File.SetLastWriteTimeUtc(Path.Combine(_tree.Root, "top.txt"), modified);

        var result = Scan();
        var index = Index(result.Snapshot);

        Assert.Equal(["a", "a/b", "a/b/c", "a/b/c/deep.txt", "empty", "top.txt"], index.Keys.Order(StringComparer.Ordinal));
        var top = index["top.txt"];
        Assert.Equal(EntryType.File, result.Snapshot.Entries()[top].Type);
        Assert.Equal(5, result.Snapshot.Entries()[top].Size);
        Assert.Equal(modified, result.Snapshot.Entries()[top].ModifiedUtc);
        Assert.Equal(0b110_100_000, result.Snapshot.Entries()[top].Permissions);
        Assert.Equal(EntryType.Directory, result.Snapshot.Entries()[index["a/b"]].Type);
        Assert.Equal(10, result.Snapshot.Entries()[index["a/b/c/deep.txt"]].Size);
        Assert.Equal(0, result.Vanished + result.Unreadable);
    }

    [Fact]
    public void Scan_lists_entries_in_tree_order_with_siblings_in_byte_order()
    {
        _tree.File("b.txt");
        _tree.File("a/z.txt");
        _tree.File("A.txt");
        _tree.File("a.txt");

        var snapshot = Scan().Snapshot;
        var paths = snapshot.Entries().Select(e => e.Path).ToArray();

        Assert.Equal(["A.txt", "a", "a/z.txt", "a.txt", "b.txt"], paths);
    }

    [Fact]
    public void Siblings_come_in_byte_order_whatever_prefixes_and_lengths_they_share()
    {
        // Names equal in their first 8 or 16 bytes, prefixes of each other around those lengths, bytes above 0x7F.
        var random = new Random(7);
        var names = new HashSet<byte[]>(new ByteArrayEquality());
        foreach (var stem in new[] { "", "file-000", "file-0000000000a", "file-0000000000ab", "\u00e9t\u00e9" })
        {
            for (var i = 0; i < 60; i++)
            {
                var tail = new byte[random.Next(0, 20)];
                for (var j = 0; j < tail.Length; j++)
                {
                    tail[j] = (byte)(random.Next(2) == 0 ? random.Next('0', '3') : random.Next(0x7E, 0x100));
                }

                var name = (byte[])[.. Encoding.UTF8.GetBytes(stem), .. tail];
                if (name.Length > 0 && !name.Contains((byte)'/') && name is not [(byte)'.'] and not [(byte)'.', (byte)'.'])
                {
                    names.Add(name);
                }
            }
        }

        var dir = Directory.CreateDirectory(Path.Combine(_tree.Root, "d")).FullName;
        foreach (var name in names)
        {
            var fd = Creat([.. Encoding.UTF8.GetBytes(dir + "/"), .. name, 0]);
            Assert.True(fd >= 0 && Close(fd) == 0);
        }

        var listed = Scan().Snapshot.Entries().Skip(1).Select(e => e.PathBytes[2..]).ToList();

        Assert.Equal(names.Count, listed.Count);
        Assert.Equal(names.Order(Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b))), listed);
    }

    private sealed class ByteArrayEquality : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => obj.Length;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "creat")]
    private static extern int Creat(byte[] path, int mode = 420);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    [Fact]
    public void Scan_records_symlinks_without_following_them()
    {
        using var outside = new TempTree();
        outside.File("secret/inside.txt");
        _tree.File("real.txt");
        File.CreateSymbolicLink(Path.Combine(_tree.Root, "to-outside"), Path.Combine(outside.Root, "secret"));
        File.CreateSymbolicLink(Path.Combine(_tree.Root, "dangling"), "/does/not/exist");
        File.CreateSymbolicLink(Path.Combine(_tree.Root, "loop"), ".");

        var result = Scan();
        var index = Index(result.Snapshot);

        Assert.Equal(["dangling", "loop", "real.txt", "to-outside"], index.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(EntryType.Symlink, result.Snapshot.Entries()[index["to-outside"]].Type);
        Assert.Equal(EntryType.Symlink, result.Snapshot.Entries()[index["dangling"]].Type);
        Assert.Equal(0, result.Vanished + result.Unreadable);
    }

    [Fact]
    public async Task Scan_records_fifos_and_sockets_without_opening_them()
    {
        _tree.Shell("mkfifo pipe && python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.bind(\"sock\")'");

        // Opening a FIFO for reading would block until a writer appears: a finished scan proves it was not opened.
        var result = await Task.Run(Scan).WaitAsync(TimeSpan.FromSeconds(10));
        var index = Index(result.Snapshot);

        Assert.Equal(EntryType.Fifo, result.Snapshot.Entries()[index["pipe"]].Type);
        Assert.Equal(EntryType.Socket, result.Snapshot.Entries()[index["sock"]].Type);
    }

    [Fact]
    public void Scan_keeps_names_that_are_not_valid_utf8_as_their_exact_bytes()
    {
        _tree.Shell("touch $'bad\\xff\\xfename' $'caf\\xc3\\xa9' 'back\\x5cslash' && mkdir $'dir\\x80' && touch $'dir\\x80/inner'");

        var snapshot = Scan().Snapshot;
        var paths = snapshot.Entries().Select(e => e.PathBytes).ToList();

        byte[] bad = [.. "bad"u8, 0xff, 0xfe, .. "name"u8];
        byte[] inner = [.. "dir"u8, 0x80, (byte)'/', .. "inner"u8];
        Assert.Contains(paths, p => p.SequenceEqual(bad));
        Assert.Contains(paths, p => p.SequenceEqual(inner));
        Assert.Contains(paths, p => p.SequenceEqual("café"u8.ToArray()));
        Assert.Equal("bad\\xff\\xfename", PathText.ToText([.. "bad"u8, 0xff, 0xfe, .. "name"u8]));
        Assert.Equal("café", PathText.ToText("café"u8));
        Assert.True(PathText.IsExact("back\\x5cslash"u8));
        Assert.False(PathText.IsExact([.. "dir"u8, 0x80]));
    }

    [Fact]
    public void Scan_of_missing_mount_reports_clear_error()
    {
        var missing = Path.Combine(_tree.Root, "nope");

        var error = Assert.Throws<MountPathException>(() => _scanner.Scan(missing, CancellationToken.None));

        Assert.Equal($"Agent:MountPath '{missing}' does not exist (is the hostPath volume mounted?).", error.Message);
    }

    [Fact]
    public void Scan_of_a_file_as_mount_reports_clear_error()
    {
        var file = _tree.File("plain.txt");

        var error = Assert.Throws<MountPathException>(() => _scanner.Scan(file, CancellationToken.None));

        Assert.Equal($"Agent:MountPath '{file}' is not a directory.", error.Message);
    }

    [Fact]
    public async Task Scan_goes_on_past_entries_that_vanish_while_it_runs()
    {
        _tree.Populate(3000, perDirectory: 300);
        using var stop = new CancellationTokenSource();
        var churn = Task.Run(() =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var dir = Path.Combine(_tree.Root, $"churn{n++ % 50}");
                Directory.CreateDirectory(dir);
                for (var i = 0; i < 20; i++)
                {
                    File.WriteAllText(Path.Combine(dir, $"f{i}"), "x");
                }

                Directory.Delete(dir, recursive: true);
            }
        });

        try
        {
            for (var i = 0; i < 30; i++)
            {
                var result = Scan();
                var index = Index(result.Snapshot);
                // Everything that stayed is always there, whatever vanished around it.
                Assert.Contains("d0009/file-0002999.txt", index.Keys);
                Assert.Contains("d0000/file-0000000.txt", index.Keys);
                Assert.Equal(0, result.Unreadable);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await churn;
        }
    }

    [Fact]
    public void Scan_never_changes_the_tree()
    {
        _tree.File("a/b.txt", "content");
        _tree.Shell("mkfifo a/pipe");
        var before = Snapshot(_tree.Root);

        Scan();

        Assert.Equal(before, Snapshot(_tree.Root));

        static string Snapshot(string root)
        {
            var start = new ProcessStartInfo("find", [root, "-printf", "%P %y %s %T@ %C@ %m\n"]) { RedirectStandardOutput = true };
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return string.Join('\n', output.Split('\n').Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Unchanged_tree_gives_the_same_content_hash_and_any_change_a_different_one()
    {
        var file = _tree.File("a/b.txt", "one");
        var first = Scan().Snapshot.ContentHash;
        var again = Scan().Snapshot.ContentHash;

        File.WriteAllText(file, "two");
        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(5));
        var changed = Scan().Snapshot.ContentHash;
        File.SetUnixFileMode(file, UnixFileMode.UserRead);
        var chmodded = Scan().Snapshot.ContentHash;

        Assert.Equal(first, again);
        Assert.NotEqual(first, changed);
        Assert.NotEqual(changed, chmodded);
    }

    [Fact]
    public void Very_long_paths_are_recorded_and_trees_deeper_than_the_limit_are_cut_with_a_count()
    {
        // 140 levels of 250-byte names: paths far longer than PATH_MAX, reachable only level by level.
        var name = new string('n', 250);
        _tree.Shell($"d=long; mkdir $d; cd $d; for i in $(seq 140); do mkdir {name}; cd {name}; done; touch end.txt");
        _tree.Shell($"mkdir -p deep/{string.Join('/', Enumerable.Repeat("d", TreeScanner.MaxDepth + 5))}");

        var result = Scan();
        var paths = result.Snapshot.Entries().Select(e => e.Path).ToList();

        var end = Assert.Single(paths, p => p.EndsWith("/end.txt", StringComparison.Ordinal));
        Assert.Equal(4 + 140 * 251 + 8, end.Length);
        Assert.Equal(TreeScanner.MaxDepth, paths.Count(p => p.StartsWith("deep/", StringComparison.Ordinal)));
        Assert.Equal(1, result.Unreadable);
        Assert.NotEqual(Scan().Snapshot.ContentHash, new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(Path.Combine(_tree.Root, "deep"), CancellationToken.None).Snapshot.ContentHash);
    }

    [Fact]
    public void Scan_cancelled_by_shutdown_stops_promptly()
    {
        _tree.Populate(20_000);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => _scanner.Scan(_tree.Root, cancelled.Token));
    }
}
