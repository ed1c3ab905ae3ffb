using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NodeAgent.Inventory;
using NodeAgent.Telemetry;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Storage;

/// <summary>
/// Writes scans. Each scan is one transaction: its list of entries is written (binary COPY) only when
/// no list with the same content hash exists yet, and the scan row is inserted idempotently by its id,
/// so a retry after a lost acknowledgement never stores a scan twice.
/// </summary>
public sealed partial class InventoryStore(NpgsqlDataSource dataSource, SchemaMigrator migrator, AgentTelemetry telemetry, ILogger<InventoryStore> logger)
{
    private volatile bool _schemaReady;

    /// <summary>Stores one scan; returns the bytes of entry data sent (0 when its list was already stored).</summary>
    public async Task<StoreOutcome> StoreAsync(ScanRecord scan, CancellationToken cancellationToken)
    {
        using var activity = AgentTelemetry.ActivitySource.StartActivity(AgentTelemetry.StoreActivityName);
        activity?.SetTag("node.name", scan.NodeName);
        activity?.SetTag("scan.entries", scan.Result.Snapshot.Count);
        var started = Stopwatch.GetTimestamp();

        if (!_schemaReady)
        {
            await migrator.MigrateAsync(cancellationToken);
            _schemaReady = true;
        }

        var snapshot = scan.Result.Snapshot;
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        var listId = await FindListAsync(connection, transaction, snapshot.ContentHash, cancellationToken);
        long bytesWritten = 0;
        var createdList = false;
        if (listId is null)
        {
            listId = await CreateListAsync(connection, transaction, snapshot, cancellationToken);
            if (listId is null)
            {
                // Another agent stored the same list a moment ago (identical trees on two nodes).
                listId = await FindListAsync(connection, transaction, snapshot.ContentHash, cancellationToken)
                    ?? throw new InvalidOperationException("A list that conflicted on insert could not be found.");
            }
            else
            {
                createdList = true;
                bytesWritten = await CopyEntriesAsync(connection, listId.Value, snapshot, cancellationToken);
            }
        }

        bool inserted;
        await using (var command = new NpgsqlCommand(
            """
            INSERT INTO scans (scan_id, node_name, mount_path, collected_at, list_id, vanished_count, unreadable_count, scan_duration_ms)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (scan_id) DO NOTHING
            """, connection, transaction))
        {
            command.Parameters.AddWithValue(scan.ScanId);
            command.Parameters.AddWithValue(scan.NodeName);
            command.Parameters.AddWithValue(scan.MountPath);
            command.Parameters.AddWithValue(scan.CollectedAt);
            command.Parameters.AddWithValue(listId.Value);
            command.Parameters.AddWithValue(scan.Result.Vanished);
            command.Parameters.AddWithValue(scan.Result.Unreadable);
            command.Parameters.AddWithValue((int)Math.Min(int.MaxValue, scan.Result.Duration.TotalMilliseconds));
            inserted = await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }

        await transaction.CommitAsync(cancellationToken);
        var outcome = new StoreOutcome(inserted, createdList, bytesWritten, Stopwatch.GetElapsedTime(started));
        activity?.SetTag("store.bytes", bytesWritten);
        activity?.SetTag("store.new_list", createdList);
        telemetry.Scans.Add(1, new KeyValuePair<string, object?>("result", "stored"));
        LogSaved(logger, scan.NodeName, scan.MountPath, snapshot.Count, (long)scan.Result.Duration.TotalMilliseconds,
            (long)outcome.Duration.TotalMilliseconds, createdList ? "new list" : "list unchanged", scan.CollectedAt);
        return outcome;
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Successfully saved data for node {NodeName}, path {MountPath}: {EntryCount} entries, scanned in {ScanMs} ms, stored in {StoreMs} ms ({ListState}, collected at {CollectedAt:o})")]
    private static partial void LogSaved(ILogger logger, string nodeName, string mountPath, int entryCount, long scanMs, long storeMs, string listState, DateTimeOffset collectedAt);

    private static async Task<long?> FindListAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, byte[] hash, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT list_id FROM file_lists WHERE content_hash = $1", connection, transaction);
        command.Parameters.AddWithValue(hash);
        return await command.ExecuteScalarAsync(cancellationToken) is long id ? id : null;
    }

    private static async Task<long?> CreateListAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, InventorySnapshot snapshot, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "INSERT INTO file_lists (content_hash, entry_count) VALUES ($1, $2) ON CONFLICT (content_hash) DO NOTHING RETURNING list_id",
            connection, transaction);
        command.Parameters.AddWithValue(snapshot.ContentHash);
        command.Parameters.AddWithValue(snapshot.Count);
        return await command.ExecuteScalarAsync(cancellationToken) is long id ? id : null;
    }

    private static async Task<long> CopyEntriesAsync(NpgsqlConnection connection, long listId, InventorySnapshot snapshot, CancellationToken cancellationToken)
    {
        long bytes = 0;
        await using var importer = await connection.BeginBinaryImportAsync(
            "COPY file_list_entries (list_id, ordinal, path, path_bytes, entry_type, size, modified_at, mode) FROM STDIN (FORMAT BINARY)",
            cancellationToken);
        // Synchronous writes: they only touch the importer's buffer except when it flushes, and an
        // await per field would cost more than the copy itself on large lists.
        for (var i = 0; i < snapshot.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var raw = snapshot.PathBytes(i);
            importer.StartRow();
            importer.Write(listId, NpgsqlDbType.Bigint);
            importer.Write(i, NpgsqlDbType.Integer);
            importer.Write(PathText.ToText(raw), NpgsqlDbType.Text);
            if (PathText.IsExact(raw))
            {
                importer.WriteNull();
            }
            else
            {
                importer.Write(raw.ToArray(), NpgsqlDbType.Bytea);
            }

            importer.Write((byte)snapshot.Type(i), NpgsqlDbType.InternalChar);
            importer.Write(snapshot.Size(i), NpgsqlDbType.Bigint);
            importer.Write(snapshot.ModifiedUtc(i), NpgsqlDbType.TimestampTz);
            importer.Write(snapshot.Permissions(i), NpgsqlDbType.Integer);
            bytes += raw.Length + 8 + 4 + 1 + 8 + 8 + 4;
        }

        await importer.CompleteAsync(cancellationToken);
        return bytes;
    }
}

/// <summary>What storing a scan did.</summary>
/// <param name="Inserted">false when the scan was already stored (a retry after a lost acknowledgement)</param>
/// <param name="NewList">true when its list of entries was new and written in full</param>
public sealed record StoreOutcome(bool Inserted, bool NewList, long EntryBytes, TimeSpan Duration);
