using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Shared.Database;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Insight;

/// <summary>
/// A migrated database on the shared test server, with rows written as the agents write them (the triggers that
/// label them run as they do for the agents' COPY and upserts).
/// </summary>
internal sealed class InsightDatabase : IAsyncDisposable
{
    public const string MountPath = "/mnt/node-data";

    private InsightDatabase(string connectionString)
    {
        ConnectionString = connectionString;
        DataSource = NpgsqlDataSource.Create(connectionString);
    }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<InsightDatabase> CreateAsync()
    {
        var database = new InsightDatabase(await (await PostgresServer.Shared).CreateDatabaseAsync("insight"));
        await new SchemaMigrator(database.DataSource, NullLogger<SchemaMigrator>.Instance).MigrateAsync(CancellationToken.None);
        return database;
    }

    public async Task ExecuteAsync(string sql, params object?[] parameters)
    {
        await using var command = Command(sql, parameters);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var command = Command(sql, parameters);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public Task<List<object?[]>> RowsAsync(string sql, params object?[] parameters) => DataSource.RowsAsync(sql, parameters);

    public Task TemplateAsync(string name, string appliesTo, string pattern, int priority = 100) =>
        ExecuteAsync(
            """
            INSERT INTO attribution_templates (name, applies_to, pattern, priority) VALUES ($1, $2, $3, $4)
            ON CONFLICT (name) DO UPDATE SET applies_to = excluded.applies_to, pattern = excluded.pattern, priority = excluded.priority
            """, name, appliesTo, pattern, priority);

    /// <summary>Relabels after template changes, as the agents' relabel loop does, until the labels follow them.</summary>
    public Task RelabelAsync() => ExecuteAsync("CALL attribution_relabel()");

    /// <summary>One file event, as ChangeStore stores it (path relative to the mount).</summary>
    public Task FileEventAsync(string path, string eventType, DateTimeOffset at, long? size = null, string node = "node-1",
        string? oldPath = null, byte[]? content = null) =>
        ExecuteAsync(
            """
            WITH c AS (INSERT INTO file_contents (sha256, size, content)
                       SELECT sha256($8), length($8), $8 WHERE $8 IS NOT NULL ON CONFLICT DO NOTHING)
            INSERT INTO file_events (event_id, node_name, mount_path, path, old_path, event_type, entry_type, occurred_at, size,
                                     sha256, snapshot, source)
            VALUES ($1, $2, $3, $4, $5, $6, 'f', $7, $9, CASE WHEN $8 IS NOT NULL THEN sha256($8) END,
                    CASE WHEN $8 IS NOT NULL THEN sha256($8) END, 'watch')
            """,
            Guid.CreateVersion7(at), node, MountPath, path, oldPath, eventType, at, content, size ?? content?.LongLength);

    /// <summary>A file on the node now, as ChangeStore keeps file_state.</summary>
    public Task FileStateAsync(string path, long size, string node = "node-1", char type = 'f') =>
        ExecuteAsync(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, last_event_id, updated_at)
            VALUES ($1, $2, convert_to($3, 'UTF8'), $3, $4, $5, now(), 420, $6, now())
            """, node, MountPath, path, type.ToString(), size, Guid.CreateVersion7());

    /// <summary>One process, as ProcessStore stores it (absolute paths, the agent's mount path beside them); its id.</summary>
    public async Task<Guid> ProcessAsync(string kind, string exe, string cwd, DateTimeOffset startedAt, int? exitCode = 0, int? signal = null,
        string[]? sources = null, string? hostname = null, int pid = 100, Guid? parent = null, string node = "node-1", string[]? argv = null,
        TimeSpan? duration = null)
    {
        var id = Guid.CreateVersion7(startedAt);
        await ExecuteAsync(
            """
            INSERT INTO process_events (process_id, node_name, pid, ppid, exe, argv, cwd, hostname, kind, source_files, started_at,
                                        ended_at, exit_code, signal, mount_path, parent_process_id, parent_kind)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    (SELECT kind FROM process_events WHERE process_id = $16))
            """,
            id, node, pid, 1, exe, argv ?? [exe], cwd, hostname, kind, sources ?? [], startedAt,
            startedAt + (duration ?? TimeSpan.FromMilliseconds(200)), signal is null ? exitCode : null, signal, MountPath, parent);
        return id;
    }

    private NpgsqlCommand Command(string sql, object?[] parameters)
    {
        var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter is null ? new NpgsqlParameter { Value = DBNull.Value } : new NpgsqlParameter { Value = parameter });
        }

        return command;
    }

    public async ValueTask DisposeAsync() => await DataSource.DisposeAsync();
}
