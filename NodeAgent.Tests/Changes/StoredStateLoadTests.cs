using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

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
            insert.Parameters.AddWithValue(paths.Select(p => SHA256.HashData(p)).ToArray());
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
            Assert.Equal(SHA256.HashData(path), meta.Sha256.ToArray());
        }
    }
}
