using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Inventory;
using NodeAgent.Processes;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// What the agents' role of the CloudNativePG values may do once the owner has migrated, tried with that role on a real
/// server: it writes its own node's rows through the stores, and is refused everything else (SQLSTATE 42501, or another
/// node's rows are not there for it).
/// </summary>
public sealed class AgentRolePrivilegeTests : IAsyncLifetime
{
    private const string Node = "node-a";
    private const string OtherNode = "node-b";
    private static readonly DateTimeOffset At = new(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
    private static readonly Guid OtherProcess = Guid.CreateVersion7(At);
    private HelmRoleDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _db = await HelmRoleDatabase.CreateAsync("agent_role");
        await _db.MigrateAsOwnerAsync();

        // Another node's rows, as its agent stored them.
        await _db.OwnerData.RowsAsync(
            """
            WITH l AS (INSERT INTO file_lists (content_hash, entry_count) VALUES ('\x01', 0) RETURNING list_id)
            INSERT INTO scans (scan_id, node_name, mount_path, collected_at, list_id) SELECT gen_random_uuid(), $1, '/mnt/node-data', $2, list_id FROM l
            """, OtherNode, At);
        await _db.OwnerData.RowsAsync(
            """
            INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
            VALUES (gen_random_uuid(), $1, '/mnt/node-data', 'cs101-0042/hw1/main.c', 'create', 'f', $2, 3, 'watch')
            """, OtherNode, At);
        await _db.OwnerData.RowsAsync(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at)
            VALUES ($1, '/mnt/node-data', 'cs101-0042/hw1/main.c'::bytea, 'cs101-0042/hw1/main.c', 'f', 3, $2, 420, gen_random_uuid(), $2)
            """, OtherNode, At);
        await _db.OwnerData.RowsAsync(
            """
            INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, kind, started_at, mount_path)
            VALUES ($1, $2, 100, '/usr/bin/gcc', '{gcc,main.c}', '/mnt/node-data/cs101-0042/hw1', 'compile', $3, '/mnt/node-data')
            """, OtherProcess, OtherNode, At);
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public async Task Agent_role_cannot_forge_a_migration_record()
    {
        await RefusedAsync(Node, "INSERT INTO node_monitor_migrations (version, name) VALUES (9999, 'forged')");
        await RefusedAsync(Node, "UPDATE node_monitor_migrations SET name = 'forged'");
        await RefusedAsync(Node, "DELETE FROM node_monitor_migrations");

        Assert.Empty(await _db.Admin.RowsAsync("SELECT version FROM node_monitor_migrations WHERE version = 9999 OR name = 'forged'"));
    }

    [Theory]
    [InlineData("INSERT INTO attributions (subject_kind, subject, labels) VALUES ('path', 'cs101-0042/hw1/main.c', '{\"student\": \"0001\"}')")]
    [InlineData("INSERT INTO attributions (subject_kind, subject, labels) VALUES ('path', 'forged/path', '{\"student\": \"0001\"}')")]
    [InlineData("UPDATE attributions SET labels = '{\"student\": \"0001\"}'")]
    [InlineData("DELETE FROM attributions")]
    [InlineData("INSERT INTO attribution_templates (name, applies_to, pattern) VALUES ('forged', 'path', '{student}/**')")]
    [InlineData("INSERT INTO activity_hourly (subject_kind, subject, hour, builds) VALUES ('path', 'forged/path', now(), 1000)")]
    [InlineData("INSERT INTO activity_daily (labels, day, node_name, builds) VALUES ('{}', now(), 'node-b', 1000)")]
    [InlineData("INSERT INTO attribution_template_changes DEFAULT VALUES")]
    [InlineData("INSERT INTO attribution_relabel (one, phase) VALUES (false, 'idle')")]
    public async Task Agent_role_cannot_write_labels_templates_or_activity_counts(string sql)
    {
        await RefusedAsync(Node, sql);
    }

    [Theory]
    [InlineData("SELECT attributions_add('path', ARRAY['forged/path'])")]
    [InlineData("SELECT process_events_count(ARRAY(SELECT p FROM process_events p), '{}')")]
    public async Task Agent_role_cannot_call_the_owners_functions_that_write_labels_and_counts(string sql)
    {
        await RefusedAsync(Node, sql);
    }

    [Fact]
    public async Task Agent_role_cannot_update_or_delete_another_nodes_file_state()
    {
        await using (var connection = await _db.AgentData.OpenConnectionAsync())
        await using (var transaction = await NodeTransaction.BeginAsync(connection, Node, default))
        {
            Assert.Equal(0, await ExecuteAsync(connection, transaction, "UPDATE file_state SET size = 0 WHERE node_name = $1", OtherNode));
            Assert.Equal(0, await ExecuteAsync(connection, transaction, "DELETE FROM file_state WHERE node_name = $1", OtherNode));
            Assert.Equal(0, await ExecuteAsync(connection, transaction, "DELETE FROM file_state"));
            await transaction.CommitAsync();
        }

        // What the store's upsert would do with another node's row.
        await RefusedAsync(Node,
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at)
            VALUES ('node-b', '/mnt/node-data', 'cs101-0042/hw1/main.c'::bytea, 'cs101-0042/hw1/main.c', 'f', 0, now(), 420, gen_random_uuid(), now())
            ON CONFLICT (node_name, mount_path, path_bytes) DO UPDATE SET size = excluded.size
            """);
        // Its own row moved to another node.
        await _db.OwnerData.RowsAsync(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at)
            VALUES ('node-a', '/mnt/node-data', 'a.c'::bytea, 'a.c', 'f', 1, now(), 420, gen_random_uuid(), now())
            """);
        await RefusedAsync(Node, "UPDATE file_state SET node_name = 'node-b' WHERE node_name = 'node-a'");

        Assert.Equal([[3L]], await _db.Admin.RowsAsync("SELECT size FROM file_state WHERE node_name = $1", OtherNode));
    }

    [Fact]
    public async Task Agent_role_cannot_update_or_delete_another_nodes_process_events()
    {
        await RefusedAsync(Node, "UPDATE process_events SET ended_at = now(), exit_code = 1 WHERE node_name = 'node-b'");
        await RefusedAsync(Node, "UPDATE process_events SET ended_at = now(), exit_code = 1");
        await RefusedAsync(Node, "DELETE FROM process_events WHERE node_name = 'node-b'");

        Assert.Equal([[null, null]], await _db.Admin.RowsAsync("SELECT ended_at, exit_code FROM process_events WHERE process_id = $1", OtherProcess));
    }

    [Fact]
    public async Task Agent_role_can_complete_its_own_process_but_not_rewrite_what_it_ran()
    {
        await _db.OwnerData.RowsAsync(
            """
            INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, kind, started_at)
            VALUES (gen_random_uuid(), 'node-a', 200, '/usr/bin/python3', '{python3,run.py}', '/home/s', 'run', now())
            """);

        await RefusedAsync(Node, "UPDATE process_events SET argv = '{python3,forged.py}' WHERE node_name = 'node-a'");
        await RefusedAsync(Node, "UPDATE process_events SET node_name = 'node-b' WHERE node_name = 'node-a'");
        await using (var connection = await _db.AgentData.OpenConnectionAsync())
        await using (var transaction = await NodeTransaction.BeginAsync(connection, Node, default))
        {
            Assert.Equal(1, await ExecuteAsync(connection, transaction, "UPDATE process_events SET ended_at = now(), exit_code = 0 WHERE pid = 200"));
            await transaction.CommitAsync();
        }
    }

    [Theory]
    [InlineData("INSERT INTO scans (scan_id, node_name, mount_path, collected_at, list_id) SELECT gen_random_uuid(), 'node-b', '/mnt/node-data', now(), list_id FROM file_lists LIMIT 1")]
    [InlineData("INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, source) VALUES (gen_random_uuid(), 'node-b', '/m', 'x', 'create', 'f', now(), 'watch')")]
    [InlineData("INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at) VALUES ('node-b', '/m', 'x'::bytea, 'x', 'f', 0, now(), 420, gen_random_uuid(), now())")]
    [InlineData("INSERT INTO process_events (process_id, node_name, pid, kind, started_at) VALUES (gen_random_uuid(), 'node-b', 1, 'run', now())")]
    public async Task Agent_role_cannot_store_rows_under_another_nodes_name(string sql)
    {
        await RefusedAsync(Node, sql);
    }

    [Fact]
    public async Task Agent_role_cannot_copy_events_under_another_nodes_name()
    {
        await using var connection = await _db.AgentData.OpenConnectionAsync();
        await using var transaction = await NodeTransaction.BeginAsync(connection, Node, default);
        var refusal = await Assert.ThrowsAsync<PostgresException>(() => BinaryCopy.WriteAsync(
            connection, "file_events", ["event_id", "node_name", "mount_path", "path", "event_type", "entry_type", "occurred_at", "source"],
            [Node, OtherNode], (importer, node) =>
            {
                importer.Write(Guid.CreateVersion7(), NpgsqlDbType.Uuid);
                importer.Write(node, NpgsqlDbType.Text);
                importer.Write("/mnt/node-data", NpgsqlDbType.Text);
                importer.Write("copied.c", NpgsqlDbType.Text);
                importer.Write("create", NpgsqlDbType.Text);
                importer.Write("f", NpgsqlDbType.Text);
                importer.Write(At, NpgsqlDbType.TimestampTz);
                importer.Write("watch", NpgsqlDbType.Text);
            }, default));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refusal.SqlState);
        Assert.Contains("node-b", refusal.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Agent_role_that_declares_no_node_writes_nothing()
    {
        var refusal = await RefusedAsync(null,
            "INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, source) VALUES (gen_random_uuid(), 'node-a', '/m', 'x', 'create', 'f', now(), 'watch')");
        Assert.Contains("node_monitor.node_name", refusal.MessageText, StringComparison.Ordinal);
        await RefusedAsync(null,
            "INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at) VALUES ('node-a', '/m', 'x'::bytea, 'x', 'f', 0, now(), 420, gen_random_uuid(), now())");
    }

    [Fact]
    public async Task Agent_role_cannot_store_a_content_under_another_contents_hash()
    {
        await RefusedAsync(Node, "INSERT INTO file_contents (sha256, size, content) VALUES (sha256('int main() {}'), 6, 'forged')");

        await using var connection = await _db.AgentData.OpenConnectionAsync();
        await using var transaction = await NodeTransaction.BeginAsync(connection, Node, default);
        Assert.Equal(1, await ExecuteAsync(connection, transaction, "INSERT INTO file_contents (sha256, size, content) VALUES (sha256('real'), 4, 'real')"));
    }

    [Fact]
    public async Task Agent_role_stores_its_own_nodes_scans_changes_and_processes_with_their_labels_and_counts()
    {
        await _db.OwnerData.RowsAsync("INSERT INTO attribution_templates (name, applies_to, pattern) VALUES ('workspace', 'path', '{course}-{student}/{assignment}/**')");
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var diagnostics = new AgentDiagnostics(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        var migrator = new SchemaMigrator(_db.AgentData, NullLogger<SchemaMigrator>.Instance);
        using var tree = new TempTree();
        tree.File("cs101-0007/hw2/main.c", "int main() {}");

        var scan = StoreHarness.Scan(tree.Root, Node, At);
        Assert.True((await new InventoryStore(_db.AgentData, migrator, NullLogger<InventoryStore>.Instance).StoreAsync(scan, default)).Inserted);

        var changes = new ChangeStore(_db.AgentData, migrator, new ChangesMetrics(diagnostics), TimeProvider.System, NullLogger<ChangeStore>.Instance);
        var content = "int main() {}"u8.ToArray();
        await changes.StoreAsync(FileBatch(FileEventType.Create, content), default);
        await changes.StoreAsync(FileBatch(FileEventType.Delete, null), default);

        var processes = new ProcessStore(_db.AgentData, migrator, NullLogger<ProcessStore>.Instance);
        var gcc = new ProcessRow(Guid.CreateVersion7(At), 300, At,
            new ProcessDetails("/usr/bin/gcc"u8.ToArray(), ["gcc"u8.ToArray(), "main.c"u8.ToArray()], false, "/mnt/node-data/cs101-0007/hw2"u8.ToArray(),
                1000, 1000, 1, null, null, null, null, ProcessReadFlags.None),
            ProcessKind.Compile, [], null, null, null);
        await processes.StoreAsync(new ProcessBatch(Node, "/mnt/node-data", [gcc]), default);
        await processes.StoreAsync(new ProcessBatch(Node, "/mnt/node-data", [gcc with { EndedAt = At.AddSeconds(1), ExitCode = 1 }]), default);

        Assert.Equal([[1L]], await _db.Admin.RowsAsync("SELECT count(*) FROM scans WHERE node_name = $1", Node));
        Assert.Equal([["create"], ["delete"]], await _db.Admin.RowsAsync("SELECT event_type FROM file_events WHERE node_name = $1 ORDER BY event_id", Node));
        Assert.Equal([[0L]], await _db.Admin.RowsAsync("SELECT count(*) FROM file_state WHERE node_name = $1", Node));
        Assert.Equal([[SHA256.HashData(content)]], await _db.Admin.RowsAsync("SELECT sha256 FROM file_contents WHERE content = $1", content));
        Assert.Equal([[1]], await _db.Admin.RowsAsync("SELECT exit_code FROM process_events WHERE node_name = $1", Node));
        Assert.Equal([["{\"course\": \"cs101\", \"student\": \"0007\", \"assignment\": \"hw2\"}"]], await _db.Admin.RowsAsync(
            "SELECT labels::text FROM attributions WHERE subject_kind = 'path' AND subject = 'cs101-0007/hw2/main.c'"));
        Assert.Equal([[2L, 1L, 1L]], await _db.Admin.RowsAsync(
            "SELECT sum(changes), sum(builds), sum(failed_builds) FROM activity_hourly WHERE subject LIKE 'cs101-0007/%' OR subject LIKE E'\\ncs101-0007/%'"));
    }

    [Fact]
    public async Task Owner_still_writes_any_nodes_rows_without_declaring_a_node()
    {
        // The Aspire AppHost and the single-user Bitnami setup run the agent as the owner.
        await _db.OwnerData.RowsAsync(
            "INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, source) VALUES (gen_random_uuid(), 'node-c', '/m', 'x', 'create', 'f', now(), 'watch')");
        await _db.OwnerData.RowsAsync("UPDATE file_state SET size = 5 WHERE node_name = $1", OtherNode);
        await _db.OwnerData.RowsAsync("UPDATE process_events SET argv = '{gcc}' WHERE node_name = $1", OtherNode);

        Assert.Equal([[5L]], await _db.Admin.RowsAsync("SELECT size FROM file_state WHERE node_name = $1", OtherNode));
    }

    private static FileEventBatch FileBatch(FileEventType type, byte[]? content)
    {
        var path = "cs101-0007/hw2/main.c"u8.ToArray();
        var meta = new FileMeta { Type = EntryType.File, Size = 13, MtimeMicros = At.ToUnixTimeMilliseconds() * 1000, Mode = 420 };
        if (content is not null)
        {
            meta.Sha256 = Sha256Value.From(SHA256.HashData(content));
            meta.Hashed = true;
            meta.HashHeld = true;
        }

        var e = new FileEvent(Guid.CreateVersion7(), type, path, null, At, meta, ChangeSource.Watch, FileFlags.None, content, 0);
        var state = new Dictionary<byte[], FileMeta?>(PathComparer.Instance) { [path] = type == FileEventType.Delete ? null : meta };
        return new FileEventBatch(Node, "/mnt/node-data", [e], state);
    }

    /// <summary>Runs <paramref name="sql"/> as the agents' role in a transaction declared for <paramref name="node"/> (none: null) and asserts the refusal.</summary>
    private async Task<PostgresException> RefusedAsync(string? node, string sql)
    {
        await using var connection = await _db.AgentData.OpenConnectionAsync();
        await using var transaction = node is null ? await connection.BeginTransactionAsync() : await NodeTransaction.BeginAsync(connection, node, default);
        var refusal = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(connection, transaction, sql));
        Assert.True(refusal.SqlState == PostgresErrorCodes.InsufficientPrivilege, $"{sql}: {refusal.SqlState} {refusal.MessageText}");
        return refusal;
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var parameter in parameters)
        {
            command.Parameters.AddWithValue(parameter);
        }

        return await command.ExecuteNonQueryAsync();
    }
}
