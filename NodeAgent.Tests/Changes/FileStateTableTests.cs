using System.Security.Cryptography;
using System.Text;
using NodeAgent.Changes;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Tests.Changes;

public sealed class FileStateTableTests
{
    /// <summary>Paths of every awkward kind: not UTF-8, control bytes, bytes sorting before '/', long, deep, and a path that is a prefix of others.</summary>
    private static List<byte[]> OddPaths()
    {
        var paths = new List<byte[]>
        {
            "a"u8.ToArray(), "a-x"u8.ToArray(), "a.c"u8.ToArray(), "a/b"u8.ToArray(), "a/b/c"u8.ToArray(), "a0"u8.ToArray(),
            new byte[] { 0xFF, 0xFE, (byte)'x' }, new byte[] { (byte)'n', 0x01, 0x1F, (byte)' ', (byte)'!' }, new byte[] { 0xE9 }, "é/ü/ß"u8.ToArray(),
            Encoding.UTF8.GetBytes(new string('d', 255) + "/" + new string('e', 255)),
            Encoding.UTF8.GetBytes(string.Join('/', Enumerable.Range(0, 200).Select(i => $"level{i}"))),
        };
        paths.Add(paths[^1].Concat("/tail"u8.ToArray()).ToArray());
        return paths;
    }

    private static FileMeta Meta(int i) => new()
    {
        Type = i % 7 == 0 ? EntryType.Directory : EntryType.File,
        Mode = i % 4096,
        Size = i % 5 == 0 ? 0 : (long)i * 7919 << (i % 40),
        MtimeMicros = 1_700_000_000_000_000L + (i % 3 == 0 ? -i * 1_000_003L : i * 999_983L),
        Sha256 = i % 7 == 0 ? default : Sha256Value.From(SHA256.HashData(BitConverter.GetBytes(i))),
        Hashed = i % 7 != 0,
        HashHeld = i % 7 != 0,
    };

    private static Dictionary<string, (byte[] Path, FileMeta Meta)> ManyPaths(int count)
    {
        var expected = new Dictionary<string, (byte[], FileMeta)>();
        var odd = OddPaths();
        for (var i = 0; i < count; i++)
        {
            var path = i < odd.Count ? odd[i] : Encoding.UTF8.GetBytes($"s{i % 400:000}/hw{i / 400 % 12}/ex{i:0000000}.{(i % 2 == 0 ? "c" : "py")}");
            expected[Convert.ToHexString(path)] = (path, Meta(i));
        }

        return expected;
    }

    private static void AssertEqualMeta(FileMeta expected, FileMeta actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.Mode, actual.Mode);
        Assert.Equal(expected.Size, actual.Size);
        Assert.Equal(expected.MtimeMicros, actual.MtimeMicros);
        Assert.Equal(expected.Hashed, actual.Hashed);
        // The packed run keeps whether a file is hashed, not its hash (that is in its stored row); a recent change holds it.
        if (actual.HashHeld)
        {
            Assert.Equal(expected.Sha256.ToArray(), actual.Sha256.ToArray());
        }
    }

    private static List<(byte[] Path, FileMeta Meta)> ReadAll(FileStateTable table)
    {
        var all = new List<(byte[], FileMeta)>();
        var reader = table.ReadAll();
        while (reader.MoveNext())
        {
            all.Add((reader.Path.ToArray(), reader.Meta));
        }

        return all;
    }

    [Fact]
    public void A_state_of_many_paths_with_odd_bytes_round_trips_exactly_through_the_packed_form()
    {
        var expected = ManyPaths(100_000);
        var shuffled = expected.Values.OrderBy(v => Convert.ToHexString(SHA256.HashData(v.Path))).ToList();

        // Loaded in any order (most of it comes sorted from the database; this comes in no order at all).
        var builder = new FileStateTable.Builder();
        foreach (var (path, meta) in shuffled)
        {
            builder.Add(path, meta);
        }

        var table = builder.Build();

        Assert.Equal(expected.Count, table.Count);
        foreach (var (path, meta) in expected.Values)
        {
            Assert.True(table.TryGet(path, out var found), $"{Convert.ToHexString(path)} not found");
            AssertEqualMeta(meta, found);
        }

        Assert.False(table.TryGet("a/b/c/d"u8, out _));
        Assert.False(table.TryGet([0xFF, 0xFE], out _));
        Assert.False(table.TryGet(""u8, out _));

        var all = ReadAll(table);
        Assert.Equal(expected.Count, all.Count);
        Assert.Equal(expected.Values.Select(v => v.Path).OrderBy(p => p, TreeOrder.Instance).Select(Convert.ToHexString), all.Select(a => Convert.ToHexString(a.Path)));
        foreach (var (path, meta) in all)
        {
            AssertEqualMeta(expected[Convert.ToHexString(path)].Meta, meta);
            Assert.False(meta.HashHeld, "the packed state holds no SHA-256");
        }

        // Far smaller than a dictionary of arrays (about 150 bytes a path and more), and than the 32 bytes of a SHA-256.
        Assert.InRange(table.ApproximateBytes / table.Count, 8, 31);
    }

    [Fact]
    public void Changes_removals_and_merges_keep_the_state_equal_to_a_plain_dictionary()
    {
        var expected = ManyPaths(30_000);
        var builder = new FileStateTable.Builder();
        foreach (var (path, meta) in expected.Values.OrderBy(v => v.Path, TreeOrder.Instance))
        {
            builder.Add(path, meta);
        }

        var table = builder.Build();
        var random = new Random(17);
        var keys = expected.Keys.ToList();
        for (var step = 0; step < 60_000; step++)
        {
            var key = keys[random.Next(keys.Count)];
            switch (random.Next(3))
            {
                case 0:
                    var path = Convert.FromHexString(key);
                    var meta = Meta(random.Next());
                    table.Set(path, meta);
                    expected[key] = (path, meta);
                    break;
                case 1:
                    Assert.Equal(expected.Remove(key), table.Remove(Convert.FromHexString(key)));
                    break;
                default:
                    var added = Encoding.UTF8.GetBytes($"new/{step}/f");
                    table.Set(added, Meta(step));
                    expected[Convert.ToHexString(added)] = (added, Meta(step));
                    keys.Add(Convert.ToHexString(added));
                    break;
            }
        }

        Assert.Equal(expected.Count, table.Count);
        foreach (var key in keys)
        {
            Assert.Equal(expected.TryGetValue(key, out var want), table.TryGet(Convert.FromHexString(key), out var found));
            if (want.Path is not null)
            {
                AssertEqualMeta(want.Meta, found);
            }
        }

        // Read with the overlay merged in as it is, then merged into the packed run: the same paths in the same order.
        Assert.NotEqual(0, table.OverlayCount);
        var merged = ReadAll(table).Select(a => Convert.ToHexString(a.Path)).ToList();
        Assert.Equal(expected.Values.Select(v => v.Path).OrderBy(p => p, TreeOrder.Instance).Select(Convert.ToHexString), merged);
        table.Compact();
        Assert.Equal(0, table.OverlayCount);
        Assert.Equal(merged, ReadAll(table).Select(a => Convert.ToHexString(a.Path)));
        foreach (var (path, meta) in ReadAll(table))
        {
            AssertEqualMeta(expected[Convert.ToHexString(path)].Meta, meta);
        }
    }

    [Fact]
    public void Merging_changes_into_a_large_state_reuses_its_blocks_instead_of_allocating_a_second_run()
    {
        var builder = new FileStateTable.Builder();
        var paths = ManyPaths(100_000).Values.OrderBy(p => p.Path, TreeOrder.Instance).ToList();
        foreach (var (path, meta) in paths)
        {
            builder.Add(path, meta);
        }

        var table = builder.Build();
        for (var i = 0; i < 2_000; i++)
        {
            table.Set(paths[i * 50].Path, Meta(i + 1));
        }

        var runBytes = table.ApproximateBytes;
        var before = GC.GetAllocatedBytesForCurrentThread();
        table.Compact();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, table.OverlayCount);
        Assert.True(runBytes > 2_000_000, $"the run holds {runBytes} bytes");
        // What a merge allocates is the sorted changes and a few blocks of slack, not a copy of the run.
        Assert.True(allocated < runBytes / 8, $"merging a run of {runBytes} bytes allocated {allocated}");
        Assert.Equal(paths.Count, ReadAll(table).Count);
    }

    [Fact]
    public void Below_a_directory_lists_everything_under_it_deepest_first_and_nothing_beside_it()
    {
        var builder = new FileStateTable.Builder();
        foreach (var path in new[] { "a", "a/b", "a/b/c", "a/d", "a-x", "a.c", "ab", "b" })
        {
            builder.Add(Encoding.UTF8.GetBytes(path), Meta(1));
        }

        var table = builder.Build();
        table.Set("a/b/new"u8.ToArray(), Meta(2));
        table.Remove("a/d"u8);

        Assert.Equal(["a/b/new", "a/b/c", "a/b"], table.Below("a"u8).Select(Encoding.UTF8.GetString));
        Assert.Equal(["a/b/new", "a/b/c"], table.Below("a/b"u8).Select(Encoding.UTF8.GetString));
        Assert.Empty(table.Below("a-x"u8));
        Assert.Equal(9 - 1, table.Below(""u8).Count);
    }

    [Fact]
    public void Tree_order_puts_everything_below_a_directory_right_after_it()
    {
        var paths = new[] { "a.c", "a/z", "a", "a-x", "a/b/c", "a0", "A", "a/b" }.Select(Encoding.UTF8.GetBytes).ToList();
        paths.Sort(TreeOrder.Instance);

        Assert.Equal(["A", "a", "a/b", "a/b/c", "a/z", "a-x", "a.c", "a0"], paths.Select(Encoding.UTF8.GetString));
    }
}
