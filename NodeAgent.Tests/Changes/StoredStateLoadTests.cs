using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Tests.Changes;

public sealed class StoredStateLoadTests : IAsyncLifetime
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private StoreHarness _db = null!;

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.Shared;
        _db = new StoreHarness(await server.CreateDatabaseAsync());
        await _db.Migrator.EnsureCurrentAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _db.DisposeAsync();
        await _services.DisposeAsync();
    }

    [Fact]
    public async Task The_stored_state_comes_from_the_server_in_tree_order_and_loads_packed_with_only_inexact_paths_aside()
    {
        // Names with bytes that sort before '/' ("a-x", "a.c", "a b") beside a directory "a", at every level, and one
        // path that is not UTF-8 (its text is not its bytes, so the server may sort it elsewhere).
        var paths = new List<byte[]>();
        foreach (var top in new[] { "a", "a-x", "a.c", "a b", "a0", "A", "é" })
        {
            paths.Add(Encoding.UTF8.GetBytes(top));
            for (var i = 0; i < 300; i++)
            {
                paths.Add(Encoding.UTF8.GetBytes($"{top}/hw{i % 7}{(i % 3 == 0 ? "-old" : i % 3 == 1 ? ".zip" : "")}"));
                paths.Add(Encoding.UTF8.GetBytes($"{top}/hw{i % 7}/ex{i:000}.c"));
            }
        }

        paths.Add([(byte)'b', 0xFF, (byte)'/', (byte)'x']);
        paths = [.. paths.DistinctBy(Convert.ToHexString)];
        await using (var insert = _db.DataSource.CreateCommand(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, sha256, last_event_id, updated_at)
            SELECT 'node-a', '/mnt/data', p.bytes, p.text, 'f', p.size, now(), 420, p.hash, gen_random_uuid(), now()
              FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::bytea[]) AS p(bytes, text, size, hash)
            """))
        {
            insert.Parameters.AddWithValue(paths.ToArray());
            insert.Parameters.AddWithValue(paths.Select(p => PathText.ToText(p)).ToArray());
            insert.Parameters.AddWithValue(paths.Select(p => (long)p.Length).ToArray());
            insert.Parameters.Add(new NpgsqlParameter { Value = paths.Select(p => p.Length % 5 == 0 ? null : SHA256.HashData(p)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            Assert.Equal(paths.Count, await insert.ExecuteNonQueryAsync());
        }

        using var diagnostics = new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>());
        var store = new ChangeStore(_db.DataSource, _db.Migrator, new ChangesMetrics(diagnostics), TimeProvider.System, NullLogger<ChangeStore>.Instance);
        var state = await store.LoadStateAsync("node-a", "/mnt/data", default);

        Assert.Equal(paths.Count, state.Count);
        Assert.InRange(state.OverlayCount, 0, 1);
        foreach (var path in paths)
        {
            Assert.True(state.TryGet(path, out var meta), $"{PathText.ToText(path)} not loaded");
            Assert.Equal(path.Length, meta.Size);
            Assert.Equal(420, meta.Mode);
            // Whether it is hashed, not the hash: that stays in the row, for the events that carry it on.
            Assert.Equal(path.Length % 5 != 0, meta.Hashed);
            Assert.False(meta.HashHeld);
        }
    }

    [Fact]
    public async Task A_hash_carried_on_is_taken_only_from_a_stored_row_of_the_same_size_and_time_else_the_file_is_not_hashed()
    {
        var at = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Utc).AddTicks(1234560);
        var same = SHA256.HashData("same"u8);
        var other = SHA256.HashData("other"u8);
        await using (var insert = _db.DataSource.CreateCommand(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, sha256, last_event_id, updated_at)
            VALUES ('node-a', '/mnt/data', 'same.c', 'same.c', 'f', 7, $1, 420, $2, gen_random_uuid(), now()),
                   ('node-a', '/mnt/data', 'changed.c', 'changed.c', 'f', 7, $1, 420, $3, gen_random_uuid(), now())
            """))
        {
            insert.Parameters.AddWithValue(at);
            insert.Parameters.AddWithValue(same);
            insert.Parameters.AddWithValue(other);
            await insert.ExecuteNonQueryAsync();
        }

        // Modes changed; "changed.c" also has another size than its row (a batch that changed it was lost).
        var micros = (at.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        var events = new List<FileEvent>();
        var state = new Dictionary<byte[], FileMeta?>(PathComparer.Instance);
        var hashFrom = new Dictionary<byte[], byte[]>(PathComparer.Instance);
        foreach (var (name, size) in new[] { ("same.c", 7L), ("changed.c", 9L) })
        {
            var path = Encoding.UTF8.GetBytes(name);
            var meta = new FileMeta { Type = EntryType.File, Mode = 384, Size = size, MtimeMicros = micros, Hashed = true };
            events.Add(new FileEvent(Guid.CreateVersion7(), FileEventType.Attrib, path, null, DateTimeOffset.UtcNow, meta, ChangeSource.Watch,
                FileFlags.None, null, 0) { HashFrom = path });
            state[path] = meta;
            hashFrom[path] = path;
        }

        using var diagnostics = new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>());
        var store = new ChangeStore(_db.DataSource, _db.Migrator, new ChangesMetrics(diagnostics), TimeProvider.System, NullLogger<ChangeStore>.Instance);
        await store.StoreAsync(new FileEventBatch("node-a", "/mnt/data", events, state, hashFrom), default);

        Assert.Equal([["changed.c", null, true], ["same.c", same, false]],
            await _db.RowsAsync("SELECT path, sha256, not_hashed FROM file_events ORDER BY path"));
        Assert.Equal([["changed.c", null, 9L, 384], ["same.c", same, 7L, 384]],
            await _db.RowsAsync("SELECT path, sha256, size, mode FROM file_state ORDER BY path"));
    }
}
