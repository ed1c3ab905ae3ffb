using System.Globalization;
using System.Text;
using System.Text.Json;
using NodeAgent.Inventory;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Inventory;

public sealed class InventoryStoreTests : IAsyncLifetime
{
    private readonly TempTree _tree = new();
    private StoreHarness _db = null!;

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.Shared;
        _db = new StoreHarness(await server.CreateDatabaseAsync());
    }

    public async Task DisposeAsync()
    {
        await _db.DisposeAsync();
        _tree.Dispose();
    }

    [Fact]
    public async Task Seed_verification_query_shows_nodename_mountpath_filelist_collectedat()
    {
        _tree.File("report.txt");
        _tree.File("sub/data.csv");
        var first = StoreHarness.Scan(_tree.Root, "minikube", DateTimeOffset.UtcNow.AddMinutes(-1));
        var second = StoreHarness.Scan(_tree.Root, "minikube-m02");
        await _db.Store.StoreAsync(first, default);
        await _db.Store.StoreAsync(second, default);

        await using var command = _db.DataSource.CreateCommand("SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4;");
        await using var reader = await command.ExecuteReaderAsync();
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToArray();
        var rows = new List<(string Node, string Mount, string List, DateTime At)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetDateTime(3)));
        }

        Assert.Equal(["nodename", "mountpath", "filelist", "collectedat"], columns);
        Assert.Equal("timestamp with time zone", reader.GetDataTypeName(3));
        Assert.Equal(["minikube-m02", "minikube"], rows.Select(r => r.Node));
        Assert.All(rows, r => Assert.Equal(_tree.Root, r.Mount));
        Assert.Equal(["report.txt", "sub", "sub/data.csv"], JsonSerializer.Deserialize<string[]>(rows[0].List)!);
        Assert.Equal(second.CollectedAt.UtcDateTime, rows[0].At, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task Unchanged_rescan_stores_one_small_row_and_not_the_list_again()
    {
        _tree.Populate(2000);
        await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root), default);
        const string StoredEntries = "SELECT coalesce(sum(cardinality(paths)), 0)::bigint FROM file_list_chunks";
        var entriesBefore = await _db.ScalarAsync<long>(StoredEntries);

        for (var i = 0; i < 5; i++)
        {
            var outcome = await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root), default);
            Assert.False(outcome.NewList);
            Assert.Equal(0, outcome.EntryBytes);
        }

        Assert.Equal(2002L, entriesBefore);
        Assert.Equal(entriesBefore, await _db.ScalarAsync<long>(StoredEntries));
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_lists"));
        Assert.Equal(6L, await _db.ScalarAsync<long>("SELECT count(*) FROM scans"));
        Assert.True(await _db.ScalarAsync<int>("SELECT max(pg_column_size(s.*)) FROM scans s") < 200);
    }

    [Fact]
    public async Task Changed_scan_stores_a_new_list_and_both_scans_show_their_own_lists()
    {
        _tree.File("a.txt");
        await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root, at: DateTimeOffset.UtcNow.AddSeconds(-10)), default);
        _tree.File("b.txt");
        var outcome = await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root), default);

        var lists = (await _db.RowsAsync("SELECT filelist::text FROM file_monitor ORDER BY collectedat")).Select(r => (string)r[0]!).ToList();

        Assert.True(outcome.NewList);
        Assert.Equal(["[\"a.txt\"]", "[\"a.txt\", \"b.txt\"]"], lists);
    }

    [Fact]
    public async Task A_list_larger_than_one_chunk_comes_back_whole_and_in_order()
    {
        _tree.Populate(3 * InventoryStore.ChunkSize, perDirectory: 500);
        var scan = StoreHarness.Scan(_tree.Root);
        await _db.Store.StoreAsync(scan, default);

        var rows = await _db.RowsAsync("SELECT ordinal, path, entry_type, size FROM file_entries ORDER BY ordinal");
        var list = JsonSerializer.Deserialize<string[]>(await _db.ScalarAsync<string>("SELECT filelist::text FROM file_monitor"))!;

        Assert.Equal(scan.Result.Snapshot.Count, rows.Count);
        Assert.True(await _db.ScalarAsync<long>("SELECT count(*) FROM file_list_chunks") >= 3);
        Assert.Equal(Enumerable.Range(0, rows.Count), rows.Select(r => (int)r[0]!));
        Assert.Equal(scan.Result.Snapshot.Entries().Select(e => e.Path), list);
        Assert.Equal(list, rows.Select(r => (string)r[1]!));
        Assert.Equal("d", rows[0][2]);
        Assert.Equal("f", rows[1][2]);
    }

    [Fact]
    public async Task Every_entry_comes_back_with_the_type_size_time_and_mode_it_was_scanned_with_across_chunks()
    {
        // Times before 1970 and before 2000 with parts of a microsecond (truncated towards 2000, as Npgsql writes a
        // DateTime), far in the future; every kind of entry; set-id, sticky and empty modes; a name that is not UTF-8
        // in the middle of a chunk, so that the chunk's other names carry no bytes of their own.
        _tree.Populate(InventoryStore.ChunkSize + 300, perDirectory: 700);
        _tree.Shell("""
            mkdir -p odd/dir && touch -d '1969-07-20 20:17:40.1234567 UTC' odd/moon && touch -d '1999-12-31 23:59:59.9999995 UTC' odd/y2k
            touch -d '2300-01-01 00:00:00.000001 UTC' odd/future && head -c 70000 /dev/zero > odd/big && chmod 4755 odd/big && chmod 1777 odd/dir
            touch odd/none && chmod 0 odd/none && ln -s /nowhere odd/link && mkfifo odd/fifo && touch $'odd/bad\xff' && touch -d '1901-12-13 20:45:52 UTC' odd/dir
            """);
        var scan = StoreHarness.Scan(_tree.Root);
        await _db.Store.StoreAsync(scan, default);

        var stored = (await _db.RowsAsync("SELECT path_bytes, entry_type, size, modified_at, mode FROM file_entries ORDER BY ordinal"))
            .Select(r => ((byte[])r[0]!, (string)r[1]!, (long)r[2]!, (DateTime)r[3]!, (int)r[4]!)).ToList();
        var expected = scan.Result.Snapshot.Entries()
            .Select(e => (e.PathBytes, ((char)e.Type).ToString(), e.Size, e.ModifiedAsStored, e.Permissions))
            .ToList();

        Assert.True(await _db.ScalarAsync<long>("SELECT count(*) FROM file_list_chunks") >= 2);
        Assert.Equal(expected.Count, stored.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].PathBytes, stored[i].Item1);
            Assert.Equal((expected[i].Item2, expected[i].Size, expected[i].Item4, expected[i].Permissions), (stored[i].Item2, stored[i].Item3, stored[i].Item4, stored[i].Item5));
        }

        var odd = stored.Where(r => r.Item1.AsSpan().StartsWith("odd/"u8)).ToDictionary(r => Encoding.Latin1.GetString(r.Item1[4..]));
        Assert.Equal(new DateTime(1969, 7, 20, 20, 17, 40, 123, 457, DateTimeKind.Utc), odd["moon"].Item4);
        Assert.Equal(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc), odd["y2k"].Item4);
        Assert.Equal(new DateTime(2300, 1, 1, 0, 0, 0, 0, 1, DateTimeKind.Utc), odd["future"].Item4);
        Assert.Equal(new DateTime(1901, 12, 13, 20, 45, 52, DateTimeKind.Utc), odd["dir"].Item4);
        Assert.Equal(("f", 70000L, 0x9ED), (odd["big"].Item2, odd["big"].Item3, odd["big"].Item5));
        Assert.Equal(("d", 0x3FF), (odd["dir"].Item2, odd["dir"].Item5));
        Assert.Equal(("f", 0), (odd["none"].Item2, odd["none"].Item5));
        Assert.Equal(("l", 8L), (odd["link"].Item2, odd["link"].Item3));
        Assert.Equal("p", odd["fifo"].Item2);
        Assert.Contains("\"odd/bad\\\\xff\"", await _db.ScalarAsync<string>("SELECT filelist::text FROM file_monitor"));
    }

    [Fact]
    public async Task Identical_trees_on_two_nodes_share_one_stored_list()
    {
        _tree.File("same.txt");
        await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root, "node-a"), default);
        await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root, "node-b"), default);

        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_lists"));
        Assert.Equal(2L, await _db.ScalarAsync<long>("SELECT count(DISTINCT nodename) FROM file_monitor"));
    }

    [Fact]
    public async Task Storing_the_same_scan_twice_keeps_one_row()
    {
        _tree.File("a.txt");
        var scan = StoreHarness.Scan(_tree.Root);

        var first = await _db.Store.StoreAsync(scan, default);
        var retry = await _db.Store.StoreAsync(scan, default);

        Assert.True(first.Inserted);
        Assert.False(retry.Inserted);
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM scans"));
    }

    [Fact]
    public async Task A_scan_that_fails_to_store_leaves_nothing_behind()
    {
        _tree.Populate(500);
        await _db.Migrator.MigrateAsync(default);
        // PostgreSQL rejects a NUL character in text: the scan row fails after its list was copied.
        var scan = StoreHarness.Scan(_tree.Root, "bad\0node");

        await Assert.ThrowsAnyAsync<Exception>(() => _db.Store.StoreAsync(scan, default));

        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_lists"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_list_chunks"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("SELECT count(*) FROM scans"));
    }

    [Fact]
    public async Task Names_that_are_not_utf8_are_stored_so_their_exact_bytes_can_be_recovered()
    {
        _tree.Shell("touch $'bad\\xff\\xfename' 'plain' 'back\\xffslash'");
        await _db.Store.StoreAsync(StoreHarness.Scan(_tree.Root), default);

        var rows = await _db.RowsAsync("SELECT path, path_bytes FROM file_entries ORDER BY path_bytes");
        var lists = await _db.RowsAsync("SELECT filelist::text FROM file_monitor");

        Assert.Equal(3, rows.Count);
        Assert.Equal((byte[])[.. "back\\xffslash"u8], rows[0][1]);
        Assert.Equal("back\\xffslash", rows[0][0]);
        Assert.Equal((byte[])[.. "bad"u8, 0xff, 0xfe, .. "name"u8], rows[1][1]);
        Assert.Equal("bad\\xff\\xfename", rows[1][0]);
        Assert.Equal((byte[])[.. "plain"u8], rows[2][1]);
        // Only the invalid name carries its bytes; the one that merely looks escaped is stored as it is.
        Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_list_chunks c CROSS JOIN LATERAL unnest(c.path_bytes) b WHERE b IS NOT NULL"));
        Assert.Equal("[\"back\\\\xffslash\", \"bad\\\\xff\\\\xfename\", \"plain\"]", lists[0][0]);
    }

    [Fact]
    public async Task Twenty_agents_migrating_an_empty_database_at_once_all_succeed()
    {
        var harnesses = Enumerable.Range(0, 20).Select(_ => new StoreHarness(_db.ConnectionString)).ToList();
        try
        {
            using var go = new ManualResetEventSlim();
            var migrations = harnesses.Select(h => Task.Run(async () =>
            {
                go.Wait();
                await h.Migrator.MigrateAsync(default);
            })).ToList();
            go.Set();
            await Task.WhenAll(migrations);

            Assert.Equal((long)SchemaMigrator.Migrations.Count, await _db.ScalarAsync<long>("SELECT count(*) FROM node_monitor_migrations"));
            Assert.Equal(SchemaMigrator.Migrations.Max(m => m.Version), await _db.ScalarAsync<int>("SELECT max(version) FROM node_monitor_migrations"));
        }
        finally
        {
            foreach (var harness in harnesses)
            {
                await harness.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Twenty_agents_storing_their_first_scan_into_an_empty_database_at_once_all_succeed()
    {
        _tree.File("shared.txt");
        var harnesses = Enumerable.Range(0, 20).Select(_ => new StoreHarness(_db.ConnectionString)).ToList();
        try
        {
            await Task.WhenAll(harnesses.Select((h, i) => Task.Run(() => h.Store.StoreAsync(StoreHarness.Scan(_tree.Root, $"node-{i}"), default))));

            Assert.Equal(20L, await _db.ScalarAsync<long>("SELECT count(*) FROM scans"));
            Assert.Equal(1L, await _db.ScalarAsync<long>("SELECT count(*) FROM file_lists"));
        }
        finally
        {
            foreach (var harness in harnesses)
            {
                await harness.DisposeAsync();
            }
        }
    }

    /// <summary>Less than two of these chunks take once compressed, more than the staging table's empty files.</summary>
    private const long StoredChunksBytes = 64 * 1024;

    [Fact]
    public async Task Chunks_copied_while_the_tree_is_walked_are_stored_as_they_arrive_not_all_when_the_walk_ends()
    {
        _tree.Populate(5 * InventoryStore.ChunkSize);
        var scan = StoreHarness.Scan(_tree.Root);
        var segments = new ScanSegments();
        var staging = _db.Store.StageAsync(scan.NodeName, segments, _db.Store.PrepareAsync(default), default);

        // Three chunks' worth of the tree is walked; the rest is still to come.
        var all = scan.Result.Snapshot.Segments;
        var handedOut = 0;
        for (var entries = 0; entries <= 3 * InventoryStore.ChunkSize; entries += all[handedOut++].Count)
        {
            segments.Publish(all[handedOut]);
        }

        // Stored rows are in the files of the staging table (a temporary table's are named t<backend>_<file> in its
        // database's directory); rows held back for later are in the server's memory only.
        var directory = Path.Combine(await _db.ScalarAsync<string>("SHOW data_directory"), "base",
            (await _db.ScalarAsync<uint>("SELECT oid FROM pg_database WHERE datname = current_database()")).ToString(CultureInfo.InvariantCulture));
        long StagedBytes() => Directory.EnumerateFiles(directory, "t*_*").Sum(file => new FileInfo(file).Length);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (StagedBytes() < StoredChunksBytes && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(StagedBytes() >= StoredChunksBytes, $"the staged rows take {StagedBytes()} bytes on disk before the copy ends");
        foreach (var segment in all.Skip(handedOut))
        {
            segments.Publish(segment);
        }

        segments.Complete();
        await _db.Store.StoreAsync(scan, await staging, default);
        Assert.Equal(scan.Result.Snapshot.Count, await _db.ScalarAsync<long>("SELECT sum(cardinality(paths))::bigint FROM file_list_chunks"));
    }
}
