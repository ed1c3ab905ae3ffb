using System.Buffers.Binary;
using System.Security.Cryptography;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// One scan's entries in tree order: each directory is followed by everything below it, and entries
/// of the same directory come in byte order of their names. Its SHA-256 covers every entry's path,
/// type, size, modification time and mode, so two scans with the same hash have the same inventory.
/// </summary>
public sealed class TreeSnapshot
{
    private readonly Segment[] _segments;
    private readonly int[] _starts;

    internal TreeSnapshot(IReadOnlyList<Segment> segments)
    {
        _segments = [.. segments.Where(s => s.End > s.Start)];
        _starts = new int[_segments.Length];
        var count = 0;
        for (var i = 0; i < _segments.Length; i++)
        {
            _starts[i] = count;
            count += _segments[i].End - _segments[i].Start;
        }

        Count = count;
        ApproximateBytes = _segments.Select(s => s.List).Distinct().Sum(l => l.ApproximateBytes);
        ContentHash = ComputeHash();
    }

    public int Count { get; }

    public byte[] ContentHash { get; }

    /// <summary>Bytes this snapshot holds in memory.</summary>
    public long ApproximateBytes { get; }

    public Entry this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            var segment = Array.BinarySearch(_starts, index);
            if (segment < 0)
            {
                segment = ~segment - 1;
            }

            var s = _segments[segment];
            return new Entry(s.List, s.Start + index - _starts[segment]);
        }
    }

    public Enumerator GetEnumerator() => new(_segments);

    private byte[] ComputeHash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        const int RecordSize = 4 + 1 + 8 + 8 + 4 + 4;
        var buffer = new byte[32 * 1024];
        var used = 0;
        foreach (var entry in this)
        {
            var path = entry.PathBytes;
            if (used + RecordSize + path.Length > buffer.Length)
            {
                hash.AppendData(buffer, 0, used);
                used = 0;
            }

            var fits = RecordSize + path.Length <= buffer.Length;
            var record = buffer.AsSpan(used);
            ref readonly var raw = ref entry.Raw;
            BinaryPrimitives.WriteInt32LittleEndian(record, path.Length);
            record[4] = (byte)EntryTypes.FromMode(raw.Mode);
            BinaryPrimitives.WriteInt64LittleEndian(record[5..], raw.Size);
            BinaryPrimitives.WriteInt64LittleEndian(record[13..], raw.MtimeSeconds);
            BinaryPrimitives.WriteUInt32LittleEndian(record[21..], raw.MtimeNanoseconds);
            BinaryPrimitives.WriteUInt32LittleEndian(record[25..], raw.Mode);
            if (fits)
            {
                path.CopyTo(record[RecordSize..]);
                used += RecordSize + path.Length;
            }
            else
            {
                // A path longer than the buffer (deep trees): hashed in place.
                hash.AppendData(buffer, 0, RecordSize);
                hash.AppendData(path);
            }
        }

        hash.AppendData(buffer, 0, used);
        return hash.GetHashAndReset();
    }

    /// <summary>A range of one list's entries.</summary>
    internal readonly record struct Segment(EntryList List, int Start, int End);

    /// <summary>One entry of the snapshot.</summary>
    public readonly ref struct Entry
    {
        private readonly EntryList _list;
        private readonly int _index;

        internal Entry(EntryList list, int index)
        {
            _list = list;
            _index = index;
        }

        internal ref readonly RawEntry Raw => ref _list[_index];

        /// <summary>The exact bytes of the path relative to the scanned directory.</summary>
        public ReadOnlySpan<byte> PathBytes => _list.Path(in Raw).Span;

        internal ReadOnlyMemory<byte> PathMemory => _list.Path(in Raw);

        public EntryType Type => EntryTypes.FromMode(Raw.Mode);

        public long Size => Raw.Size;

        /// <summary>Permission bits and set-id/sticky bits (mode &amp; 07777).</summary>
        public int Permissions => (int)(Raw.Mode & 0xFFF);

        /// <summary>The modification time, clamped to what PostgreSQL and .NET can hold (years 1 to 9999).</summary>
        public DateTime ModifiedUtc
        {
            get
            {
                const long MinSeconds = -62135596800; // 0001-01-01
                const long MaxSeconds = 253402300799; // 9999-12-31T23:59:59
                var seconds = Math.Clamp(Raw.MtimeSeconds, MinSeconds, MaxSeconds);
                return DateTime.UnixEpoch.AddTicks(seconds * TimeSpan.TicksPerSecond + Math.Min(Raw.MtimeNanoseconds, 999_999_999u) / 100);
            }
        }
    }

    public struct Enumerator
    {
        private readonly Segment[] _segments;
        private int _segment;
        private int _index;

        internal Enumerator(Segment[] segments)
        {
            _segments = segments;
            _segment = 0;
            _index = segments.Length > 0 ? segments[0].Start - 1 : -1;
        }

        public readonly Entry Current => new(_segments[_segment].List, _index);

        public bool MoveNext()
        {
            while (_segment < _segments.Length)
            {
                if (++_index < _segments[_segment].End)
                {
                    return true;
                }

                if (++_segment < _segments.Length)
                {
                    _index = _segments[_segment].Start - 1;
                }
            }

            return false;
        }
    }
}
