using System.Buffers.Binary;
using System.Text;
using NodeAgent.Shared.Tree;
using Npgsql;

namespace NodeAgent.Inventory;

/// <summary>
/// Writes a snapshot as rows of file_list_chunks, encoded here in PostgreSQL's binary COPY format (the bytes its
/// array_recv reads). Npgsql's array writers resolve a converter for every element, which for a million entries cost
/// more than the encoding itself; a chunk's columns are plain runs of big-endian numbers and path bytes.
/// </summary>
internal static class ChunkCopy
{
    // Element types of the arrays (pg_type OIDs, fixed since PostgreSQL's first releases).
    private const int TextOid = 25;
    private const int ByteaOid = 17;
    private const int Int8Oid = 20;
    private const int Int4Oid = 23;
    private const int TimestampTzOid = 1184;

    /// <summary>PostgreSQL's timestamps count microseconds from 2000-01-01 UTC.</summary>
    private static readonly long PostgresEpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    /// <summary>
    /// Copies the entries of <paramref name="segments"/> into <paramref name="table"/> (file_list_chunks or a table
    /// like it: a constant of the caller's, never input) as chunks of at most <paramref name="chunkSize"/>, whatever the
    /// segments' sizes; returns how many entries and how many bytes of them were written.
    /// </summary>
    public static async Task<(int Entries, long Bytes)> WriteAsync(
        NpgsqlConnection connection, string table, long listId, IAsyncEnumerable<TreeSnapshot.Segment> segments, int chunkSize, CancellationToken cancellationToken)
    {
        var columns = new Columns();
        var stream = await connection.BeginRawBinaryCopyAsync(
            $"COPY {table} (list_id, first_ordinal, paths, path_bytes, entry_types, sizes, modified_at, modes) FROM STDIN (FORMAT BINARY)", cancellationToken);
        try
        {
            var head = columns.Head;
            head.Bytes("PGCOPY\n"u8);
            head.Byte(0xFF);
            head.Bytes("\r\n\0"u8);
            head.Int32(0); // flags
            head.Int32(0); // header extension
            long bytes = 0;
            var first = 0;
            var count = 0;
            await foreach (var segment in segments.WithCancellation(cancellationToken))
            {
                for (var entries = TreeSnapshot.Read(segment); entries.MoveNext();)
                {
                    var entry = entries.Current;
                    columns.Add(entry, count);
                    bytes += entry.PathBytes.Length + 1 + 8 + 8 + 4;
                    if (++count == chunkSize)
                    {
                        await columns.WriteRowAsync(stream, listId, first, count, cancellationToken);
                        first += count;
                        count = 0;
                    }
                }
            }

            if (count > 0)
            {
                await columns.WriteRowAsync(stream, listId, first, count, cancellationToken);
            }

            columns.Head.Int16(-1);
            await columns.Head.FlushAsync(stream, cancellationToken);
            await stream.DisposeAsync();
            return (first + count, bytes);
        }
        catch
        {
            try
            {
                await stream.CancelAsync();
            }
            catch (Exception)
            {
                // The error that stopped the copy is the one to report; the transaction is lost either way.
            }

            throw;
        }
    }

    /// <summary>One chunk's columns, each a run of array elements (length, then value).</summary>
    private sealed class Columns
    {
        public readonly Column Head = new();
        private readonly Column _paths = new();
        private readonly Column _pathBytes = new();
        private readonly Column _types = new();
        private readonly Column _sizes = new();
        private readonly Column _modified = new();
        private readonly Column _modes = new();
        private bool _hasPathBytes;

        public void Add(TreeSnapshot.Entry entry, int index)
        {
            var raw = entry.PathBytes;
            if (PathText.IsExact(raw))
            {
                // Sent as text unchanged: the connection's encoding is UTF-8.
                _paths.Int32(raw.Length);
                _paths.Bytes(raw);
                if (_hasPathBytes)
                {
                    _pathBytes.Int32(-1);
                }
            }
            else
            {
                // Not valid UTF-8 (or holding a NUL): its escaped text here, its exact bytes in path_bytes.
                var text = PathText.ToText(raw);
                var length = Encoding.UTF8.GetByteCount(text);
                _paths.Int32(length);
                Encoding.UTF8.GetBytes(text, _paths.Take(length));
                if (!_hasPathBytes)
                {
                    _hasPathBytes = true;
                    for (var i = 0; i < index; i++)
                    {
                        _pathBytes.Int32(-1);
                    }
                }

                _pathBytes.Int32(raw.Length);
                _pathBytes.Bytes(raw);
            }

            _types.Byte((byte)entry.Type);
            _sizes.Int32(8);
            _sizes.Int64(entry.Size);
            _modified.Int32(8);
            _modified.Int64(Timestamp(entry.ModifiedUtc));
            _modes.Int32(4);
            _modes.Int32(entry.Permissions);
        }

        public async Task WriteRowAsync(Stream stream, long listId, int firstOrdinal, int count, CancellationToken cancellationToken)
        {
            Head.Int16(8);
            Head.Int32(8);
            Head.Int64(listId);
            Head.Int32(4);
            Head.Int32(firstOrdinal);
            await ArrayAsync(stream, _paths, TextOid, count, hasNulls: false, cancellationToken);
            if (_hasPathBytes)
            {
                await ArrayAsync(stream, _pathBytes, ByteaOid, count, hasNulls: true, cancellationToken);
            }
            else
            {
                Head.Int32(-1);
            }

            Head.Int32(_types.Length);
            await Head.FlushAsync(stream, cancellationToken);
            await _types.FlushAsync(stream, cancellationToken);
            await ArrayAsync(stream, _sizes, Int8Oid, count, hasNulls: false, cancellationToken);
            await ArrayAsync(stream, _modified, TimestampTzOid, count, hasNulls: false, cancellationToken);
            await ArrayAsync(stream, _modes, Int4Oid, count, hasNulls: false, cancellationToken);
            _hasPathBytes = false;
        }

        /// <summary>A one-dimensional array field: its length, its header, then the elements already encoded.</summary>
        private async Task ArrayAsync(Stream stream, Column elements, int elementOid, int count, bool hasNulls, CancellationToken cancellationToken)
        {
            Head.Int32(20 + elements.Length);
            Head.Int32(1); // dimensions
            Head.Int32(hasNulls ? 1 : 0);
            Head.Int32(elementOid);
            Head.Int32(count);
            Head.Int32(1); // lower bound
            await Head.FlushAsync(stream, cancellationToken);
            await elements.FlushAsync(stream, cancellationToken);
        }

        private static long Timestamp(DateTime utc) =>
            // As Npgsql writes a DateTime: the ends of its range are PostgreSQL's infinities, the rest truncated to microseconds.
            utc.Ticks == DateTime.MaxValue.Ticks ? long.MaxValue
            : utc.Ticks == DateTime.MinValue.Ticks ? long.MinValue
            : (utc.Ticks - PostgresEpochTicks) / 10;
    }

    /// <summary>
    /// Big-endian bytes appended to a buffer, written out and emptied by <see cref="FlushAsync"/>. Not pooled: a list is
    /// stored only when it changed, and buffers kept by a shared pool would stay with the agent between lists.
    /// </summary>
    private sealed class Column
    {
        private byte[] _buffer = new byte[16 * 1024];

        public int Length { get; private set; }

        public Span<byte> Take(int length)
        {
            if (Length + length > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(2 * _buffer.Length, Length + length));
            }

            var span = _buffer.AsSpan(Length, length);
            Length += length;
            return span;
        }

        public void Byte(byte value) => Take(1)[0] = value;

        public void Int16(short value) => BinaryPrimitives.WriteInt16BigEndian(Take(2), value);

        public void Int32(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);

        public void Int64(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);

        public void Bytes(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Take(bytes.Length));

        public async ValueTask FlushAsync(Stream stream, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(_buffer.AsMemory(0, Length), cancellationToken);
            Length = 0;
        }
    }
}
