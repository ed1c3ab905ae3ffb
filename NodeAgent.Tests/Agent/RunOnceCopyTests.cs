using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Agent;

/// <summary>
/// Run-once copies the entries into PostgreSQL while it walks the tree: what it stores must be exactly what a scan
/// finds, in order, across chunks and top-level directories, with the DaemonSet's least-privileged role.
/// </summary>
public sealed class RunOnceCopyTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();
    private HelmRoleDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _db = await HelmRoleDatabase.CreateAsync("run_once_copy");
        await _db.MigrateAsOwnerAsync();

        // Many top-level directories of uneven size (walked in parallel, published in tree order), more than a chunk.
        _tree.Populate(2 * 4096 + 777, perDirectory: 300);
        _tree.Shell("""
            mkdir -p 'z last/deep/er' && touch -d '1969-07-20 20:17:40.1234567 UTC' 'z last/deep/er/moon' && touch $'z last/bad\xff' top.txt
            ln -s nowhere link && mkfifo fifo && chmod 4711 top.txt && head -c 5000 /dev/zero > 'z last/deep/size'
            """);
    }

    public async Task DisposeAsync()
    {
        await _db.DisposeAsync();
        _tree.Dispose();
    }

    [Fact]
    public async Task Run_once_copies_the_entries_while_it_walks_and_stores_exactly_what_a_scan_finds()
    {
        var first = await RunOnceAsync();

        Assert.Contains(first.Lines, l => l.Contains("(new list, copied during the scan,", StringComparison.Ordinal));
        await AssertStoredEqualsScanAsync();

        // Unchanged: the copy is dropped with its transaction, and the list is not stored again.
        var again = await RunOnceAsync();

        Assert.Contains(again.Lines, l => l.Contains("(list unchanged,", StringComparison.Ordinal));
        Assert.Equal((1L, 2L), (await ScalarAsync("SELECT count(*) FROM file_lists"), await ScalarAsync("SELECT count(*) FROM scans")));
        Assert.Equal(await ScalarAsync("SELECT entry_count FROM file_lists"), await ScalarAsync("SELECT sum(cardinality(paths)) FROM file_list_chunks"));
    }

    [Fact]
    public async Task Where_the_role_may_not_create_temporary_tables_run_once_stores_the_scan_after_the_walk_and_says_why()
    {
        var database = new NpgsqlConnectionStringBuilder(_db.AdminConnectionString).Database;
        await _db.Admin.RowsAsync($"REVOKE TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC");

        var agent = await RunOnceAsync();

        var why = Assert.Single(agent.Lines, l => l.Contains("The entries were not copied while the tree was walked", StringComparison.Ordinal));
        Assert.Contains("permission denied", why, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(agent.Lines, l => l.Contains("(new list,", StringComparison.Ordinal) && !l.Contains("copied during the scan", StringComparison.Ordinal));
        await AssertStoredEqualsScanAsync();
    }

    private async Task<AgentProcess> RunOnceAsync()
    {
        var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(_db.As(_db.AgentRole), _tree.Root, ("Agent__RunOnce", "true")));
        await using (agent)
        {
            Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
            return agent;
        }
    }

    private async Task AssertStoredEqualsScanAsync()
    {
        var scanned = StoreHarness.Scan(_tree.Root).Result.Snapshot.Entries();
        var stored = await _db.Admin.RowsAsync("SELECT ordinal, path_bytes, entry_type, size, modified_at, mode FROM file_entries ORDER BY ordinal");

        Assert.Equal(scanned.Count, stored.Count);
        Assert.True(await ScalarAsync("SELECT count(*) FROM file_list_chunks") >= 3);
        for (var i = 0; i < scanned.Count; i++)
        {
            var e = scanned[i];
            var row = stored[i];
            Assert.Equal(e.PathBytes, (byte[])row[1]!);
            Assert.Equal(
                (i, ((char)e.Type).ToString(), e.Size, e.ModifiedAsStored, e.Permissions),
                ((int)row[0]!, (string)row[2]!, (long)row[3]!, (DateTime)row[4]!, (int)row[5]!));
        }
    }

    private async Task<long> ScalarAsync(string sql) => Convert.ToInt64((await _db.Admin.RowsAsync(sql))[0][0], System.Globalization.CultureInfo.InvariantCulture);
}
