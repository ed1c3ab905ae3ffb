using System.Text;
using NodeAgent.Shared.Native;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Inventory;

public sealed class PackedScanTests
{
    private static NativeMethods.Statx Status(uint mode, ulong size, long seconds, uint nanoseconds) => new()
    {
        Mode = (ushort)mode,
        Size = size,
        MtimeSeconds = seconds,
        MtimeNanoseconds = nanoseconds,
    };

    [Fact]
    public void Entries_with_odd_bytes_and_extreme_values_read_back_exactly_from_every_segment()
    {
        var random = new Random(5);
        var expected = new List<(byte[] Path, uint Mode, ulong Size, long Seconds, uint Nanoseconds)>();
        var lists = new[] { new EntryList(), new EntryList() };
        var segments = new List<TreeSnapshot.Segment>();
        for (var segment = 0; segment < 40; segment++)
        {
            var list = lists[segment % 2];
            var start = list.Mark();
            var count = random.Next(0, 5000);
            for (var i = 0; i < count; i++)
            {
                byte[] path = (i % 97) switch
                {
                    0 => [0xFF, 0x00 + 1, (byte)'/', 0xC3],
                    1 => Encoding.UTF8.GetBytes(new string('x', random.Next(1, 9000))),
                    _ => Encoding.UTF8.GetBytes($"s{segment:000}/hw{i / 50}/é{i:00000}.{(i % 3 == 0 ? "c" : "py")}"),
                };
                var mode = (uint)((i % 5 == 0 ? 0x4000 : 0x8000) | random.Next(0, 0xFFF));
                var size = (i % 11) switch { 0 => 0UL, 1 => ulong.MaxValue >> 1, _ => (ulong)random.Next() };
                var seconds = (i % 13) switch { 0 => long.MinValue / 2, 1 => long.MaxValue / 2, 2 => -1, _ => 1_700_000_000L + random.Next(-10_000, 10_000) };
                var nanoseconds = (uint)random.Next(0, 1_000_000_000);
                list.Add(path, Status(mode, size, seconds, nanoseconds));
                expected.Add((path, mode, size, seconds, nanoseconds));
            }

            segments.Add(list.Since(start));
        }

        var snapshot = new TreeSnapshot(segments);
        var read = 0;
        foreach (var entry in snapshot)
        {
            var want = expected[read++];
            Assert.True(want.Path.AsSpan().SequenceEqual(entry.PathBytes), $"entry {read}: path differs");
            Assert.Equal(EntryTypes.FromMode(want.Mode), entry.Type);
            Assert.Equal((int)(want.Mode & 0xFFF), entry.Permissions);
            Assert.Equal((long)want.Size, entry.Size);
            Assert.Equal(want.Seconds, entry.MtimeSeconds);
            Assert.Equal(want.Nanoseconds, entry.MtimeNanoseconds);
        }

        Assert.Equal(expected.Count, read);
        Assert.Equal(expected.Count, snapshot.Count);
        Assert.Equal(read, snapshot.Entries().Count);
    }

    [Fact]
    public void The_content_hash_depends_on_the_entries_not_on_where_they_sit_in_the_lists_blocks()
    {
        // The same entries behind another walker's earlier subtrees start mid-block and cross block ends elsewhere.
        static void Add(EntryList list, int i, uint nanoseconds = 5) =>
            list.Add(Encoding.UTF8.GetBytes($"s{i / 400:000}/hw/{new string('p', i % 300)}{i}.c"), Status(0x81A4, (ulong)i, 1_700_000_000 + i, nanoseconds));
        var alone = new EntryList();
        var behind = new EntryList();
        var changed = new EntryList();
        for (var i = 0; i < 3333; i++)
        {
            Add(behind, 100_000 + i);
        }

        var starts = (alone.Mark(), behind.Mark(), changed.Mark());
        for (var i = 0; i < 20_000; i++)
        {
            Add(alone, i);
            Add(behind, i);
            Add(changed, i, nanoseconds: i == 12_345 ? 6u : 5u);
        }

        var hash = new TreeSnapshot([alone.Since(starts.Item1)]).ContentHash;

        Assert.Equal(hash, new TreeSnapshot([behind.Since(starts.Item2)]).ContentHash);
        Assert.NotEqual(hash, new TreeSnapshot([changed.Since(starts.Item3)]).ContentHash);
        Assert.True(behind.ApproximateBytes > alone.ApproximateBytes);
    }

    [Fact]
    public void A_scan_of_many_similar_paths_takes_a_fraction_of_their_bytes()
    {
        var list = new EntryList();
        var start = list.Mark();
        long pathBytes = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var path = Encoding.UTF8.GetBytes($"student-{i / 500:0000}/assignment-{i / 50 % 10}/exercise-{i:000000}.c");
            pathBytes += path.Length;
            list.Add(path, Status(0x81A4, (ulong)(i % 4000), 1_700_000_000 + i, (uint)(i * 7919 % 1_000_000_000)));
        }

        var snapshot = new TreeSnapshot([list.Since(start)]);

        // A record and an array per entry took more than the paths themselves (40 bytes and a path of ~45 here).
        Assert.True(snapshot.ApproximateBytes < pathBytes / 2, $"{snapshot.ApproximateBytes} bytes for {pathBytes} bytes of paths");
    }
}
