using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

/// <summary>What is known of one path: the last state stored for it (or about to be).</summary>
internal struct FileMeta
{
    public EntryType Type;
    /// <summary>Permission bits (mode &amp; 07777).</summary>
    public int Mode;
    public long Size;
    /// <summary>Modification time in microseconds since the epoch: what PostgreSQL keeps, so a state read back compares equal.</summary>
    public long MtimeMicros;
    /// <summary>The content's SHA-256, when <see cref="HashHeld"/>.</summary>
    public Sha256Value Sha256;
    /// <summary>The file has a SHA-256 (stored in its row of <c>file_state</c>).</summary>
    public bool Hashed;
    /// <summary>
    /// <see cref="Sha256"/> holds the hash: the file was just read, or its state is a recent change. The packed state
    /// does not keep hashes (32 bytes of its about 60 a path); an event that needs one of those takes it from the stored
    /// row when it is stored (see <c>ChangeStore</c>).
    /// </summary>
    public bool HashHeld;

    public readonly bool SameAs(in FileMeta other) =>
        Type == other.Type && Mode == other.Mode && SameContentMarkers(other);

    /// <summary>Size and modification time agree; a directory's change with its entries is not its own change.</summary>
    public readonly bool SameContentMarkers(in FileMeta other) =>
        Type == EntryType.Directory || (Size == other.Size && MtimeMicros == other.MtimeMicros);

    public readonly DateTime ModifiedUtc => DateTime.UnixEpoch.AddTicks(Math.Clamp(MtimeMicros, -62135596800_000000L, 253402300799_000000L) * 10);

    public static long ToMicros(long seconds, uint nanoseconds) => seconds * 1_000_000 + nanoseconds / 1000;
}

[InlineArray(32)]
internal struct Sha256Value
{
    private byte _element;

    public static Sha256Value From(ReadOnlySpan<byte> bytes)
    {
        var value = default(Sha256Value);
        bytes.CopyTo(value);
        return value;
    }

    public readonly byte[] ToArray() => ((ReadOnlySpan<byte>)this).ToArray();
}

/// <summary>Paths compared by their exact bytes; looked up by a span without allocating.</summary>
internal sealed class PathComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly PathComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var hash = new HashCode();
        hash.AddBytes(alternate);
        return hash.ToHashCode();
    }

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}

/// <summary>
/// The current state of every path under the monitored directory (relative path bytes to <see cref="FileMeta"/>), as
/// stored in <c>file_state</c>: loaded from it at start, and changed only together with the events that change it.
/// Most of it is a run sorted in <see cref="TreeOrder"/> and packed (<see cref="StateRun"/>: about 20 bytes a path; the
/// SHA-256 stays in <c>file_state</c>); changes since go to a small overlay (a removal as null), merged into a new run
/// once it has grown, and before the state is compared with a scan, which is then one pass over both in step.
/// </summary>
internal sealed class FileStateTable
{
    private readonly Dictionary<byte[], FileMeta?> _overlay = new(PathComparer.Instance);
    private readonly Dictionary<byte[], FileMeta?>.AlternateLookup<ReadOnlySpan<byte>> _overlayBySpan;
    private StateRun _run = StateRun.Empty;

    public FileStateTable() => _overlayBySpan = _overlay.GetAlternateLookup<ReadOnlySpan<byte>>();

    private FileStateTable(StateRun run, Dictionary<byte[], FileMeta?> overlay, int count) : this()
    {
        _run = run;
        foreach (var (path, meta) in overlay)
        {
            _overlay[path] = meta;
        }

        Count = count;
    }

    public int Count { get; private set; }

    /// <summary>Bytes the state holds: the packed run and, at about 150 bytes a path, the overlay.</summary>
    public long ApproximateBytes => _run.ApproximateBytes + 150L * _overlay.Count;

    /// <summary>Changes held outside the packed run.</summary>
    internal int OverlayCount => _overlay.Count;

    public bool TryGet(ReadOnlySpan<byte> path, out FileMeta meta)
    {
        if (_overlayBySpan.TryGetValue(path, out var changed))
        {
            meta = changed.GetValueOrDefault();
            return changed.HasValue;
        }

        return _run.TryFind(path, out meta);
    }

    public void Set(byte[] path, FileMeta meta)
    {
        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_overlay, path, out var exists);
        var wasKnown = exists ? slot.HasValue : _run.TryFind(path, out _);
        slot = meta;
        if (!wasKnown)
        {
            Count++;
        }

        CompactWhenLarge();
    }

    public bool Remove(ReadOnlySpan<byte> path)
    {
        ref var slot = ref CollectionsMarshal.GetValueRefOrNullRef(_overlayBySpan, path);
        if (!Unsafe.IsNullRef(ref slot))
        {
            if (!slot.HasValue)
            {
                return false;
            }

            if (_run.TryFind(path, out _))
            {
                slot = null;
            }
            else
            {
                _overlayBySpan.Remove(path);
            }

            Count--;
            return true;
        }

        if (!_run.TryFind(path, out _))
        {
            return false;
        }

        _overlay[path.ToArray()] = null;
        Count--;
        CompactWhenLarge();
        return true;
    }

    /// <summary>Every path strictly below the directory <paramref name="directory"/>, deepest first.</summary>
    public List<byte[]> Below(ReadOnlySpan<byte> directory)
    {
        var below = new List<byte[]>();
        var reader = _run.ReadBelow(directory);
        while (reader.MoveNext() && TreeOrder.IsBelow(reader.Path, directory))
        {
            if (!_overlayBySpan.ContainsKey(reader.Path))
            {
                below.Add(reader.Path.ToArray());
            }
        }

        foreach (var (path, meta) in _overlay)
        {
            if (meta.HasValue && TreeOrder.IsBelow(path, directory))
            {
                below.Add(path);
            }
        }

        below.Sort((a, b) => TreeOrder.Compare(b, a));
        return below;
    }

    /// <summary>Every path and its state in tree order, the overlay merged in as it is read. Nothing may change the state meanwhile.</summary>
    public OrderedReader ReadAll() => new(_run.ReadAll(), SortedChanges(), _overlay);

    /// <summary>Merges the overlay into a new packed run, letting go of the old run's blocks as they are passed.</summary>
    public void Compact()
    {
        if (_overlay.Count == 0)
        {
            return;
        }

        // The old run's blocks, once read past, are the new run's: the merge holds about one run, not two.
        var recycled = new Stack<byte[]>();
        var reader = new OrderedReader(_run.ReadAll(releaseTo: recycled), SortedChanges(), _overlay);
        var writer = new StateRun.Writer(recycled);
        while (reader.MoveNext())
        {
            writer.Append(reader.Path, reader.Meta);
        }

        _run = writer.Finish();
        _overlay.Clear();
        _overlay.TrimExcess();
    }

    private byte[][] SortedChanges()
    {
        var changes = _overlay.Keys.ToArray();
        Array.Sort(changes, TreeOrder.Instance);
        return changes;
    }

    /// <summary>The packed run and the overlay's changes (sorted) read in step: a change replaces or removes the run's entry, or adds one.</summary>
    internal struct OrderedReader
    {
        private readonly byte[][] _changes;
        private readonly Dictionary<byte[], FileMeta?> _overlay;
        private StateRun.Reader _run;
        private bool _runMore;
        private bool _advanceRun;
        private int _next;
        private byte[]? _change;

        internal OrderedReader(StateRun.Reader run, byte[][] changes, Dictionary<byte[], FileMeta?> overlay)
        {
            _run = run;
            _changes = changes;
            _overlay = overlay;
            _runMore = _run.MoveNext();
        }

        public readonly ReadOnlySpan<byte> Path => _change is null ? _run.Path : _change;

        public FileMeta Meta { get; private set; }

        public bool MoveNext()
        {
            if (_advanceRun)
            {
                _runMore = _run.MoveNext();
                _advanceRun = false;
            }

            while (_runMore || _next < _changes.Length)
            {
                var order = _next == _changes.Length ? -1 : !_runMore ? 1 : TreeOrder.Compare(_run.Path, _changes[_next]);
                if (order < 0)
                {
                    // The run's own entry; the reader moves past it at the next call (its path is read from the reader).
                    _change = null;
                    Meta = _run.Meta;
                    _advanceRun = true;
                    return true;
                }

                var change = _changes[_next++];
                if (order == 0)
                {
                    _runMore = _run.MoveNext();
                }

                if (_overlay[change] is { } meta)
                {
                    _change = change;
                    Meta = meta;
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// Merges once the overlay holds a sixteenth of the run (at least 4,096 changes, at most 16,384): the cost of merging
    /// is spread thin, and the overlay (about 150 bytes a change, against about 20 a path in the run) stays small.
    /// </summary>
    private void CompactWhenLarge()
    {
        if (_overlay.Count >= Math.Max(4096, Math.Min(16384, _run.Count / 16)))
        {
            Compact();
        }
    }

    /// <summary>Builds a state from paths in tree order (those that come out of order are kept in the overlay, so any order is correct).</summary>
    internal sealed class Builder
    {
        private readonly StateRun.Writer _writer = new();
        private readonly Dictionary<byte[], FileMeta?> _outOfOrder = new(PathComparer.Instance);
        private PreviousPath _last;
        private bool _any;

        public void Add(ReadOnlySpan<byte> path, in FileMeta meta)
        {
            if (!_any || TreeOrder.Compare(path, _last.Span) > 0)
            {
                _writer.Append(path, meta);
                _last.Remember(path);
                _any = true;
            }
            else
            {
                _outOfOrder[path.ToArray()] = meta;
            }
        }

        public FileStateTable Build()
        {
            var run = _writer.Finish();
            var table = new FileStateTable(run, _outOfOrder, run.Count + _outOfOrder.Count);
            table.CompactWhenLarge();
            return table;
        }
    }
}

/// <summary>
/// Paths with their state, sorted in <see cref="TreeOrder"/> and packed: each path front-coded against the one before,
/// then its type, mode and whether it is hashed, its size and modification time (as a difference) as variable-length
/// numbers. The SHA-256 is not kept (it is in the stored row). Every sixteenth record is written in full, so a path is found by a binary
/// search over those and a short read forward.
/// </summary>
internal sealed class StateRun
{
    private const int RestartInterval = 16;

    public static readonly StateRun Empty = new Writer().Finish();

    private readonly BlockBuffer _buffer;
    private readonly long[] _restarts;

    private StateRun(BlockBuffer buffer, long[] restarts, int count)
    {
        _buffer = buffer;
        _restarts = restarts;
        Count = count;
    }

    public int Count { get; }

    public long ApproximateBytes => _buffer.AllocatedBytes + 8L * _restarts.Length;

    public bool TryFind(ReadOnlySpan<byte> path, out FileMeta meta)
    {
        var reader = ReadBelow(path, inclusive: true);
        while (reader.MoveNext())
        {
            var order = TreeOrder.Compare(reader.Path, path);
            if (order == 0)
            {
                meta = reader.Meta;
                return true;
            }

            if (order > 0)
            {
                break;
            }
        }

        meta = default;
        return false;
    }

    /// <summary>Every record in order; with <paramref name="releaseTo"/>, the blocks read past go there (the run is not read again).</summary>
    public Reader ReadAll(Stack<byte[]>? releaseTo = null) => new(_buffer, _restarts.Length > 0 ? _restarts[0] : 0, 0, Count, releaseTo);

    /// <summary>A reader whose first record is the first after <paramref name="path"/> (or, <paramref name="inclusive"/>, at it).</summary>
    public Reader ReadBelow(ReadOnlySpan<byte> path, bool inclusive = false)
    {
        // The last restart whose path comes before it: the path, and what follows it, is in that restart's stretch or after.
        int lo = 0, hi = _restarts.Length - 1, start = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (TreeOrder.Compare(PathAt(_restarts[mid]), path) < 0)
            {
                start = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        var reader = new Reader(_buffer, _restarts.Length > 0 ? _restarts[start] : 0, start * RestartInterval, Count, releaseTo: null);
        reader.SkipWhile(path, inclusive);
        return reader;
    }

    /// <summary>The path of the record written in full at <paramref name="position"/>, read in place.</summary>
    private ReadOnlySpan<byte> PathAt(long position)
    {
        var record = _buffer.From(position);
        var offset = 0;
        Packing.ReadVarint(record, ref offset);
        var length = (int)Packing.ReadVarint(record, ref offset);
        return record.Slice(offset, length);
    }

    public sealed class Writer(Stack<byte[]>? recycled = null)
    {
        private readonly BlockBuffer _buffer = recycled is null ? new() : new(recycled);
        private readonly List<long> _restarts = [];
        private PreviousPath _previousPath;
        private long _previousMicros;
        private int _count;

        public void Append(ReadOnlySpan<byte> path, in FileMeta meta)
        {
            var restart = _count % RestartInterval == 0;
            if (restart)
            {
                _previousPath.Reset();
                _previousMicros = 0;
            }

            var record = _buffer.Reserve(Packing.MaxPathBytes(path.Length) + 1 + 3 * Packing.MaxVarint);
            if (restart)
            {
                _restarts.Add(_buffer.Position);
            }

            var used = _previousPath.Write(record, path);
            record[used++] = (byte)meta.Type;
            used += Packing.WriteVarint(record[used..], ((ulong)(uint)meta.Mode << 1) | (meta.Hashed ? 1u : 0u));
            used += Packing.WriteVarint(record[used..], (ulong)meta.Size);
            used += Packing.WriteVarint(record[used..], Packing.ZigZag(meta.MtimeMicros - _previousMicros));
            _buffer.Commit(used);
            _previousMicros = meta.MtimeMicros;
            _count++;
        }

        public StateRun Finish() => new(_buffer, [.. _restarts], _count);
    }

    public struct Reader
    {
        private readonly BlockBuffer _buffer;
        private readonly int _count;
        private readonly Stack<byte[]>? _releaseTo;
        private long _position;
        private int _index;
        private PreviousPath _path;
        private long _micros;
        private bool _peeked;

        internal Reader(BlockBuffer buffer, long position, int index, int count, Stack<byte[]>? releaseTo)
        {
            _buffer = buffer;
            _position = position;
            _index = index;
            _count = count;
            _releaseTo = releaseTo;
        }

        public readonly ReadOnlySpan<byte> Path => _path.Span;

        public FileMeta Meta { get; private set; }

        public bool MoveNext()
        {
            if (_peeked)
            {
                _peeked = false;
                return true;
            }

            if (_index >= _count || !_buffer.Seek(ref _position))
            {
                return false;
            }

            if (_index % RestartInterval == 0)
            {
                _micros = 0;
                if (_releaseTo is not null)
                {
                    _buffer.ReleaseBefore(_position, _releaseTo);
                }
            }

            var record = _buffer.From(_position);
            var offset = 0;
            _path.Read(record, ref offset);
            var meta = new FileMeta { Type = (EntryType)record[offset++] };
            var modeAndHashed = Packing.ReadVarint(record, ref offset);
            meta.Mode = (int)(modeAndHashed >> 1);
            meta.Hashed = (modeAndHashed & 1) != 0;
            meta.Size = (long)Packing.ReadVarint(record, ref offset);
            _micros += Packing.UnZigZag(Packing.ReadVarint(record, ref offset));
            meta.MtimeMicros = _micros;
            Meta = meta;
            _position = BlockBuffer.Advance(_position, offset);
            _index++;
            return true;
        }

        /// <summary>Reads on past the records before <paramref name="path"/> (and at it, unless <paramref name="inclusive"/>); the next <see cref="MoveNext"/> gives the first one after.</summary>
        internal void SkipWhile(ReadOnlySpan<byte> path, bool inclusive)
        {
            while (MoveNext())
            {
                var order = TreeOrder.Compare(Path, path);
                if (order > 0 || (inclusive && order == 0))
                {
                    _peeked = true;
                    return;
                }
            }
        }
    }
}
