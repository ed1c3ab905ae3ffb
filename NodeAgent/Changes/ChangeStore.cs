using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Changes;

/// <summary>
/// Writes batches of file events. One batch is one transaction: the contents it carries (once per SHA-256), its events
/// (one binary COPY) and the current state it leaves behind. A batch whose first event is already stored was
/// committed by an attempt that was never acknowledged, and is not written again. The agent keeps no SHA-256 of the
/// current state in memory: an event or a state that carries a hash on (a rename, a delete, a change of mode) takes it
/// from the stored row it names, read first in the same transaction, since the batches before it are stored.
/// </summary>
internal sealed partial class ChangeStore(
    NpgsqlDataSource dataSource, SchemaMigrator migrator, ChangesMetrics metrics, TimeProvider time, ILogger<ChangeStore> logger) : IRecordStore<FileEventBatch>
{
    private static readonly string[] EventColumns =
    [
        "event_id", "node_name", "mount_path", "path", "path_bytes", "old_path", "old_path_bytes", "event_type", "entry_type", "occurred_at",
        "size", "modified_at", "mode", "sha256", "snapshot", "not_hashed", "torn", "too_large", "source",
    ];

    public Task PrepareAsync(CancellationToken cancellationToken) => migrator.EnsureCurrentAsync(cancellationToken);

    /// <summary>
    /// The stored current state of one node's monitored directory, to start from, read straight into its packed form.
    /// The server sorts it in tree order ('/' before any other character); the few paths whose text is not their
    /// exact bytes may come out of that order, and the state keeps them aside.
    /// </summary>
    public async Task<FileStateTable> LoadStateAsync(string nodeName, string mountPath, CancellationToken cancellationToken)
    {
        await PrepareAsync(cancellationToken);
        var state = new FileStateTable.Builder();
        await using var command = dataSource.CreateCommand(
            """
            SELECT path_bytes, entry_type, size, modified_at, mode, sha256 IS NOT NULL FROM file_state WHERE node_name = $1 AND mount_path = $2
             ORDER BY translate(path, '/', E'\x01') COLLATE "C"
            """);
        command.Parameters.AddWithValue(nodeName);
        command.Parameters.AddWithValue(mountPath);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var path = new byte[1024];
        while (await reader.ReadAsync(cancellationToken))
        {
            var meta = new FileMeta
            {
                Type = (EntryType)reader.GetString(1)[0],
                Size = reader.GetInt64(2),
                MtimeMicros = (reader.GetDateTime(3).Ticks - DateTime.UnixEpoch.Ticks) / 10,
                Mode = reader.GetInt32(4),
                Hashed = reader.GetBoolean(5),
            };

            var length = (int)reader.GetBytes(0, 0, null, 0, 0);
            if (length > path.Length)
            {
                path = new byte[Math.Max(length, 2 * path.Length)];
            }

            reader.GetBytes(0, 0, path, 0, length);
            state.Add(path.AsSpan(0, length), meta);
        }

        return state.Build();
    }

    public Task StoreAsync(FileEventBatch batch, CancellationToken cancellationToken) =>
        migrator.StoreAsync(() => StoreOnceAsync(batch, cancellationToken), cancellationToken);

    private async Task StoreOnceAsync(FileEventBatch batch, CancellationToken cancellationToken)
    {
        using var activity = AgentDiagnostics.ActivitySource.StartActivity(ChangesMetrics.StoreActivityName);
        activity?.SetTag("node.name", batch.NodeName);
        activity?.SetTag("batch.events", batch.Events.Count);
        var started = Stopwatch.GetTimestamp();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await NodeTransaction.BeginAsync(connection, batch.NodeName, cancellationToken);

        await using (var seen = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM file_events WHERE event_id = $1)", connection, transaction))
        {
            seen.Parameters.AddWithValue(batch.Id);
            if (await seen.ExecuteScalarAsync(cancellationToken) is true)
            {
                await transaction.CommitAsync(cancellationToken);
                activity?.SetTag("batch.already_stored", true);
                return;
            }
        }

        var hashes = await StoredHashesAsync(connection, transaction, batch, cancellationToken);
        var contents = batch.Events.Where(e => e.Content is not null && e.Meta.HashHeld)
            .DistinctBy(e => Convert.ToHexString(e.Meta.Sha256.ToArray())).ToList();
        if (contents.Count > 0)
        {
            await using var insert = new NpgsqlCommand(
                """
                INSERT INTO file_contents (sha256, size, content)
                SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[])
                ON CONFLICT (sha256) DO NOTHING
                """, connection, transaction);
            insert.Parameters.AddWithValue(contents.Select(e => e.Meta.Sha256.ToArray()).ToArray());
            insert.Parameters.AddWithValue(contents.Select(e => (long)e.Content!.Length).ToArray());
            insert.Parameters.AddWithValue(contents.Select(e => e.Content!).ToArray());
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        await BinaryCopy.WriteAsync(connection, "file_events", EventColumns, batch.Events, (importer, e) => WriteEvent(importer, batch, e, hashes), cancellationToken);
        await WriteStateAsync(connection, transaction, batch, hashes, cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        var now = time.GetUtcNow();
        foreach (var e in batch.Events)
        {
            metrics.Latency.Record(Math.Max(0, (now - e.OccurredAt).TotalSeconds));
        }

        LogStored(logger, batch.Events.Count, batch.NodeName, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>The stored hashes the batch's events and state name (<see cref="FileEvent.HashFrom"/>), by path.</summary>
    private static async Task<Dictionary<byte[], StoredHash>> StoredHashesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, FileEventBatch batch, CancellationToken cancellationToken)
    {
        var hashes = new Dictionary<byte[], StoredHash>(PathComparer.Instance);
        var wanted = batch.Events.Select(e => e.HashFrom).Concat(batch.HashFrom.Values).OfType<byte[]>().Distinct(PathComparer.Instance).ToArray();
        if (wanted.Length == 0)
        {
            return hashes;
        }

        await using var select = new NpgsqlCommand(
            """
            SELECT path_bytes, size, modified_at, sha256 FROM file_state
             WHERE node_name = $1 AND mount_path = $2 AND path_bytes = ANY($3) AND sha256 IS NOT NULL
            """, connection, transaction);
        select.Parameters.AddWithValue(batch.NodeName);
        select.Parameters.AddWithValue(batch.MountPath);
        select.Parameters.AddWithValue(wanted);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        var hash = new byte[32];
        while (await reader.ReadAsync(cancellationToken))
        {
            if (reader.GetBytes(3, 0, hash, 0, 32) == 32)
            {
                var micros = (reader.GetDateTime(2).Ticks - DateTime.UnixEpoch.Ticks) / 10;
                hashes[reader.GetFieldValue<byte[]>(0)] = new StoredHash(reader.GetInt64(1), micros, Sha256Value.From(hash));
            }
        }

        return hashes;
    }

    /// <summary>
    /// <paramref name="meta"/> with its hash, taken from the stored row <paramref name="from"/> when it does not hold it.
    /// A row whose size or modification time differ is of another content (batches were lost in an outage): the entry is
    /// then taken as not hashed rather than given a hash that may be wrong.
    /// </summary>
    private static FileMeta WithHash(FileMeta meta, byte[]? from, Dictionary<byte[], StoredHash> hashes)
    {
        if (!meta.Hashed || meta.HashHeld)
        {
            return meta;
        }

        if (from is not null && hashes.TryGetValue(from, out var row) && row.Size == meta.Size && row.MtimeMicros == meta.MtimeMicros)
        {
            meta.Sha256 = row.Sha256;
            meta.HashHeld = true;
        }
        else
        {
            meta.Hashed = false;
        }

        return meta;
    }

    private readonly record struct StoredHash(long Size, long MtimeMicros, Sha256Value Sha256);

    private static void WriteEvent(NpgsqlBinaryImporter importer, FileEventBatch batch, FileEvent e, Dictionary<byte[], StoredHash> hashes)
    {
        var meta = WithHash(e.Meta, e.HashFrom, hashes);
        importer.Write(e.Id, NpgsqlDbType.Uuid);
        importer.Write(batch.NodeName, NpgsqlDbType.Text);
        importer.Write(batch.MountPath, NpgsqlDbType.Text);
        WritePath(importer, e.Path);
        if (e.OldPath is null)
        {
            importer.WriteNull();
            importer.WriteNull();
        }
        else
        {
            WritePath(importer, e.OldPath);
        }

        importer.Write(FileEvent.Name(e.Type), NpgsqlDbType.Text);
        importer.Write(((char)meta.Type).ToString(), NpgsqlDbType.Text);
        importer.Write(e.OccurredAt, NpgsqlDbType.TimestampTz);
        importer.Write(meta.Size, NpgsqlDbType.Bigint);
        importer.Write(meta.ModifiedUtc, NpgsqlDbType.TimestampTz);
        importer.Write(meta.Mode, NpgsqlDbType.Integer);
        if (meta.HashHeld)
        {
            importer.Write(meta.Sha256.ToArray(), NpgsqlDbType.Bytea);
        }
        else
        {
            importer.WriteNull();
        }

        if (e.Content is not null && meta.HashHeld)
        {
            importer.Write(meta.Sha256.ToArray(), NpgsqlDbType.Bytea);
        }
        else
        {
            importer.WriteNull();
        }

        var notHashed = (e.Flags & FileFlags.NotHashed) != 0 || (!meta.Hashed && meta.Type == EntryType.File && e.Type != FileEventType.Delete);
        importer.Write(notHashed, NpgsqlDbType.Boolean);
        importer.Write((e.Flags & FileFlags.Torn) != 0, NpgsqlDbType.Boolean);
        importer.Write((e.Flags & FileFlags.TooLargeForSnapshot) != 0, NpgsqlDbType.Boolean);
        importer.Write(e.Source == ChangeSource.Watch ? "watch" : "scan", NpgsqlDbType.Text);
    }

    /// <summary>A path as text, and its exact bytes when the text is not exact.</summary>
    private static void WritePath(NpgsqlBinaryImporter importer, byte[] path)
    {
        if (PathText.IsExact(path))
        {
            importer.Write(Encoding.UTF8.GetString(path), NpgsqlDbType.Text);
            importer.WriteNull();
        }
        else
        {
            importer.Write(PathText.ToText(path), NpgsqlDbType.Text);
            importer.Write(path, NpgsqlDbType.Bytea);
        }
    }

    /// <summary>The state the batch leaves behind: each path it touched ends either gone or as its last event left it.</summary>
    private static async Task WriteStateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, FileEventBatch batch,
        Dictionary<byte[], StoredHash> hashes, CancellationToken cancellationToken)
    {
        var gone = batch.State.Where(s => s.Value is null).Select(s => s.Key).ToArray();
        if (gone.Length > 0)
        {
            await using var delete = new NpgsqlCommand(
                "DELETE FROM file_state WHERE node_name = $1 AND mount_path = $2 AND path_bytes = ANY($3)", connection, transaction);
            delete.Parameters.AddWithValue(batch.NodeName);
            delete.Parameters.AddWithValue(batch.MountPath);
            delete.Parameters.AddWithValue(gone);
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }

        var present = batch.State.Where(s => s.Value is not null)
            .Select(s => KeyValuePair.Create(s.Key, WithHash(s.Value!.Value, batch.HashFrom.GetValueOrDefault(s.Key), hashes))).ToList();
        if (present.Count == 0)
        {
            return;
        }

        var lastEvent = new Dictionary<byte[], Guid>(PathComparer.Instance);
        foreach (var e in batch.Events)
        {
            lastEvent[e.Path] = e.Id;
        }

        await using var upsert = new NpgsqlCommand(
            """
            INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, sha256, last_event_id, updated_at)
            SELECT $1, $2, s.* , $11
              FROM unnest($3::bytea[], $4::text[], $5::text[], $6::bigint[], $7::timestamptz[], $8::integer[], $9::bytea[], $10::uuid[])
                   AS s(path_bytes, path, entry_type, size, modified_at, mode, sha256, last_event_id)
            ON CONFLICT (node_name, mount_path, path_bytes) DO UPDATE
               SET path = excluded.path, entry_type = excluded.entry_type, size = excluded.size, modified_at = excluded.modified_at,
                   mode = excluded.mode, sha256 = excluded.sha256, last_event_id = excluded.last_event_id, updated_at = excluded.updated_at
            """, connection, transaction);
        upsert.Parameters.AddWithValue(batch.NodeName);
        upsert.Parameters.AddWithValue(batch.MountPath);
        upsert.Parameters.AddWithValue(present.Select(s => s.Key).ToArray());
        upsert.Parameters.AddWithValue(present.Select(s => PathText.ToText(s.Key)).ToArray());
        upsert.Parameters.AddWithValue(present.Select(s => ((char)s.Value.Type).ToString()).ToArray());
        upsert.Parameters.AddWithValue(present.Select(s => s.Value.Size).ToArray());
        upsert.Parameters.AddWithValue(present.Select(s => s.Value.ModifiedUtc).ToArray());
        upsert.Parameters.AddWithValue(present.Select(s => s.Value.Mode).ToArray());
        upsert.Parameters.Add(new NpgsqlParameter { Value = present.Select(s => s.Value.HashHeld ? s.Value.Sha256.ToArray() : null).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        upsert.Parameters.AddWithValue(present.Select(s => lastEvent.TryGetValue(s.Key, out var id) ? id : batch.Id).ToArray());
        upsert.Parameters.AddWithValue(batch.Events[^1].OccurredAt);
        await upsert.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stored {Count} file events of node {NodeName} in {StoreMs} ms")]
    private static partial void LogStored(ILogger logger, int count, string nodeName, long storeMs);
}
