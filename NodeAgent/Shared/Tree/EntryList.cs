using NodeAgent.Shared.Native;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// An append-only list of scanned entries, encoded as they come (<see cref="BlockBuffer"/>): each path front-coded
/// against the one before, the mode as what differs from the one before, the size and the modification time's
/// seconds as variable-length numbers (the seconds as a difference), the nanoseconds in four bytes. A walk's entries
/// come in tree order, so neighbours share most of their path and a million entries take tens of bytes each, not a
/// record and an array. It is read in order from a <see cref="Mark"/>, where the coding starts afresh.
/// </summary>
internal sealed class EntryList
{
    private readonly BlockBuffer _buffer = new();
    private PreviousPath _previousPath;
    private uint _previousMode;
    private long _previousSeconds;

    public int Count { get; private set; }

    public long ApproximateBytes => _buffer.AllocatedBytes;

    /// <summary>Where the next entry starts; it is written in full, so a reader can start there.</summary>
    public Start Mark()
    {
        _previousPath.Reset();
        _previousMode = 0;
        _previousSeconds = 0;
        return new Start(_buffer.Position, Count);
    }

    public void Add(ReadOnlySpan<byte> path, in NativeMethods.Statx status)
    {
        var record = _buffer.Reserve(Packing.MaxPathBytes(path.Length) + 3 * Packing.MaxVarint + 4);
        var used = _previousPath.Write(record, path);
        used += Packing.WriteVarint(record[used..], (uint)status.Mode ^ _previousMode);
        used += Packing.WriteVarint(record[used..], status.Size);
        used += Packing.WriteVarint(record[used..], Packing.ZigZag(status.MtimeSeconds - _previousSeconds));
        Packing.WriteInt32(record, ref used, status.MtimeNanoseconds);
        _buffer.Commit(used);
        _previousMode = status.Mode;
        _previousSeconds = status.MtimeSeconds;
        Count++;
    }

    /// <summary>The entries written since <paramref name="start"/>, as a segment of a snapshot.</summary>
    public TreeSnapshot.Segment Since(Start start) => new(this, start, Count - start.Index, _buffer.Position);

    /// <summary>
    /// Appends a segment's records, as they are coded, to <paramref name="hash"/>: the coding starts afresh at a
    /// segment's start and depends only on its entries, so equal entries give equal bytes.
    /// </summary>
    public void Hash(TreeSnapshot.Segment segment, System.Security.Cryptography.IncrementalHash hash) =>
        _buffer.HashBetween(segment.Start.Position, segment.End, hash);

    /// <summary>A place to start reading: where an entry written in full begins, and its index.</summary>
    public readonly record struct Start(long Position, int Index);

    /// <summary>Reads <paramref name="count"/> entries from <paramref name="start"/> on. Each reader has its own buffers: many may read at once.</summary>
    public Reader Read(Start start, int count) => new(_buffer, start.Position, count);

    public struct Reader
    {
        private readonly BlockBuffer _buffer;
        private long _position;
        private int _remaining;
        private PreviousPath _path;

        internal Reader(BlockBuffer buffer, long position, int count)
        {
            _buffer = buffer;
            _position = position;
            _remaining = count;
        }

        public readonly ReadOnlySpan<byte> Path => _path.Span;

        public uint Mode { get; private set; }

        public long Size { get; private set; }

        public long MtimeSeconds { get; private set; }

        public uint MtimeNanoseconds { get; private set; }

        public bool MoveNext()
        {
            if (_remaining == 0 || !_buffer.Seek(ref _position))
            {
                return false;
            }

            var record = _buffer.From(_position);
            var offset = 0;
            _path.Read(record, ref offset);
            Mode ^= (uint)Packing.ReadVarint(record, ref offset);
            Size = (long)Packing.ReadVarint(record, ref offset);
            MtimeSeconds += Packing.UnZigZag(Packing.ReadVarint(record, ref offset));
            MtimeNanoseconds = Packing.ReadInt32(record, ref offset);
            _position = BlockBuffer.Advance(_position, offset);
            _remaining--;
            return true;
        }
    }
}
