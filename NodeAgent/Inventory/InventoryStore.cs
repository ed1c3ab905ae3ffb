using NodeAgent.Shared.Tree;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using Npgsql;

namespace NodeAgent.Inventory;

/// <summary>
/// Writes scans. Each scan is one transaction: its list of entries is written (binary COPY of column-wise chunks) only when
/// no list with the same content hash exists yet, and the scan row is inserted idempotently by its id,
/// so a retry after a lost acknowledgement never stores a scan twice.
/// </summary>
public sealed partial class InventoryStore(NpgsqlDataSource dataSource, SchemaMigrator migrator, ILogger<InventoryStore> logger) : IRecordStore<ScanRecord>
{
    /// <summary>Entries per stored chunk: large enough for few rows, small enough to keep one chunk's strings cheap.</summary>
    public const int ChunkSize = 4096;

    /// <summary>Brings the schema up to date (once per process) and leaves a warm connection in the pool.</summary>
    public Task PrepareAsync(CancellationToken cancellationToken) => migrator.EnsureCurrentAsync(cancellationToken);

    Task IRecordStore<ScanRecord>.StoreAsync(ScanRecord record, CancellationToken cancellationToken) => StoreAsync(record, cancellationToken);

    /// <summary>
    /// Stores one scan in one transaction, then logs it (the caller counts it). A scan whose earlier attempt committed but
    /// was never acknowledged is not inserted again (<see cref="StoreOutcome.Inserted"/> is false); that attempt
    /// ended in an error, so this is still the first time the scan is reported as saved.
    /// </summary>
    public Task<StoreOutcome> StoreAsync(ScanRecord scan, CancellationToken cancellationToken) =>
        migrator.StoreAsync(() => StoreOnceAsync(scan, null, cancellationToken), cancellationToken);

    /// <summary>
    /// Copies a scan's entries into a temporary table while it is being walked (<paramref name="segments"/>), in the
    /// transaction that is to store it: on two cores the walk leaves PostgreSQL a little room, and once the walk ends
    /// storing a new list is one INSERT of the copied rows, which moves their compressed values as they are. A list
    /// that turns out to be stored already costs the copy's work and nothing else: a temporary table writes no WAL
    /// and is dropped with the transaction. Waits for <paramref name="prepared"/> (the schema) first.
    /// </summary>
    internal async Task<StagedList> StageAsync(string nodeName, ScanSegments segments, Task prepared, CancellationToken cancellationToken)
    {
        await prepared;
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await NodeTransaction.BeginAsync(connection, nodeName, cancellationToken);
            // COPY into a table without row triggers keeps rows back to insert them up to 1,000 at a time, and (PostgreSQL
            // 15) does not count a binary row's size: a list's chunks (49 at 200,000 entries) would all wait, to be
            // compressed and stored after the walk. A BEFORE row trigger (which does nothing) makes it store each chunk
            // as it arrives.
            await using (var create = new NpgsqlCommand(
                $"""
                CREATE TEMPORARY TABLE {StageTable} (LIKE file_list_chunks INCLUDING COMPRESSION) ON COMMIT DROP;
                CREATE OR REPLACE FUNCTION pg_temp.{StageTable}_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
                CREATE TRIGGER {StageTable}_row BEFORE INSERT ON {StageTable} FOR EACH ROW EXECUTE FUNCTION pg_temp.{StageTable}_row();
                """, connection, transaction))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            var (entries, bytes) = await ChunkCopy.WriteAsync(connection, StageTable, 0, segments.ReadAllAsync(cancellationToken), ChunkSize, cancellationToken);
            return new StagedList(connection, transaction, entries, bytes);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stores a scan whose entries <paramref name="staged"/> holds, in its transaction; it is used up either way.</summary>
    internal async Task<StoreOutcome> StoreAsync(ScanRecord scan, StagedList staged, CancellationToken cancellationToken)
    {
        await using (staged)
        {
            if (staged.Entries != scan.Result.Snapshot.Count)
            {
                throw new InvalidOperationException($"The copy made during the scan has {staged.Entries} entries, the scan {scan.Result.Snapshot.Count}.");
            }

            return await migrator.StoreAsync(() => StoreOnceAsync(scan, staged, cancellationToken), cancellationToken);
        }
    }

    private const string StageTable = "list_stage";

    private async Task<StoreOutcome> StoreOnceAsync(ScanRecord scan, StagedList? staged, CancellationToken cancellationToken)
    {
        using var activity = AgentDiagnostics.ActivitySource.StartActivity(InventoryMetrics.StoreActivityName);
        activity?.SetTag("node.name", scan.NodeName);
        activity?.SetTag("scan.entries", scan.Result.Snapshot.Count);
        activity?.SetTag("store.copied_during_scan", staged is not null);
        var started = Stopwatch.GetTimestamp();

        var snapshot = scan.Result.Snapshot;
        await using var ownConnection = staged is null ? await dataSource.OpenConnectionAsync(cancellationToken) : null;
        await using var ownTransaction = ownConnection is null ? null : await NodeTransaction.BeginAsync(ownConnection, scan.NodeName, cancellationToken);
        var connection = staged?.Connection ?? ownConnection!;
        var transaction = staged?.Transaction ?? ownTransaction!;

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
                bytesWritten = staged is null
                    ? (await ChunkCopy.WriteAsync(connection, "file_list_chunks", listId.Value, ScanSegments.Of(snapshot).ReadAllAsync(cancellationToken), ChunkSize, cancellationToken)).Bytes
                    : await staged.MoveAsync(listId.Value, cancellationToken);
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
        LogSaved(logger, scan.NodeName, scan.MountPath, snapshot.Count, (long)scan.Result.Duration.TotalMilliseconds,
            (long)outcome.Duration.TotalMilliseconds, (createdList, staged is not null) switch
            {
                (true, true) => "new list, copied during the scan",
                (true, false) => "new list",
                _ => "list unchanged",
            }, scan.CollectedAt);
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

    private static async Task<long?> CreateListAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, TreeSnapshot snapshot, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "INSERT INTO file_lists (content_hash, entry_count) VALUES ($1, $2) ON CONFLICT (content_hash) DO NOTHING RETURNING list_id",
            connection, transaction);
        command.Parameters.AddWithValue(snapshot.ContentHash);
        command.Parameters.AddWithValue(snapshot.Count);
        return await command.ExecuteScalarAsync(cancellationToken) is long id ? id : null;
    }

    /// <summary>A scan's entries copied into the temporary table, in the open transaction that is to store the scan.</summary>
    internal sealed class StagedList(NpgsqlConnection connection, NpgsqlTransaction transaction, int entries, long bytes) : IAsyncDisposable
    {
        public NpgsqlConnection Connection => connection;

        public NpgsqlTransaction Transaction => transaction;

        public int Entries => entries;

        /// <summary>Makes the copied rows the entries of list <paramref name="listId"/>; the bytes of entries they hold.</summary>
        public async Task<long> MoveAsync(long listId, CancellationToken cancellationToken)
        {
            await using var command = new NpgsqlCommand(
                $"""
                INSERT INTO file_list_chunks (list_id, first_ordinal, paths, path_bytes, entry_types, sizes, modified_at, modes)
                SELECT $1, first_ordinal, paths, path_bytes, entry_types, sizes, modified_at, modes FROM {StageTable}
                """, connection, transaction);
            command.Parameters.AddWithValue(listId);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return bytes;
        }

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}

/// <summary>What storing a scan did.</summary>
/// <param name="Inserted">false when the scan was already stored (a retry after a lost acknowledgement)</param>
/// <param name="NewList">true when its list of entries was new and written in full</param>
public sealed record StoreOutcome(bool Inserted, bool NewList, long EntryBytes, TimeSpan Duration);
