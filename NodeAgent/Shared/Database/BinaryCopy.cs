using Npgsql;

namespace NodeAgent.Shared.Database;

/// <summary>
/// The agent's one way to write many rows: a single binary COPY, rows written straight from the caller's buffers.
/// (A list's chunks, arrays of up to a million elements, are encoded by the inventory itself: Inventory/ChunkCopy.)
/// </summary>
public static class BinaryCopy
{
    /// <summary>
    /// Copies <paramref name="rows"/> into <paramref name="table"/> (<paramref name="columns"/> in order), within the
    /// connection's current transaction. <paramref name="writeRow"/> writes one row's columns; the row is started for it.
    /// Identifiers are the caller's constants, never user input.
    /// </summary>
    public static async Task<ulong> WriteAsync<TRow>(
        NpgsqlConnection connection, string table, IReadOnlyList<string> columns, IEnumerable<TRow> rows,
        Action<NpgsqlBinaryImporter, TRow> writeRow, CancellationToken cancellationToken)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            $"COPY {table} ({string.Join(", ", columns)}) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            importer.StartRow();
            writeRow(importer, row);
        }

        return await importer.CompleteAsync(cancellationToken);
    }
}
