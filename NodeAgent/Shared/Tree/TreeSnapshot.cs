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

    /// <param name="contentHash">the hash of these segments when it was taken already (<see cref="Hasher"/>), else it is taken here</param>
    internal TreeSnapshot(IReadOnlyList<Segment> segments, byte[]? contentHash = null)
    {
        _segments = [.. segments.Where(s => s.Count > 0)];
        Count = _segments.Sum(s => s.Count);
        ApproximateBytes = _segments.Select(s => s.List).Distinct().Sum(l => l.ApproximateBytes);
        ContentHash = contentHash ?? ComputeHash();
    }

    public int Count { get; }

    public byte[] ContentHash { get; }

    /// <summary>The runs of entries the snapshot is made of, in order.</summary>
    internal IReadOnlyList<Segment> Segments => _segments;

    /// <summary>Bytes this snapshot holds in memory.</summary>
    public long ApproximateBytes { get; }

    /// <summary>The entries in tree order; each enumeration decodes them afresh, so several may run at once.</summary>
    public Enumerator GetEnumerator() => new(_segments);

    /// <summary>The entries of one segment.</summary>
    internal static Enumerator Read(Segment segment) => new([segment]);

    private byte[] ComputeHash()
    {
        using var hasher = new Hasher();
        foreach (var segment in _segments)
        {
            hasher.Append(segment);
        }

        return hasher.Finish();
    }

    /// <summary>
    /// The content hash, taken segment by segment in tree order (a walk hashes each run as soon as it and everything
    /// before it are walked): SHA-256 over each segment's entry count and its records as the lists code them (path, mode,
    /// size and time, each recorded exactly), without decoding an entry. The segments follow the tree (the root's entries
    /// between its subdirectories, each top-level subtree), so equal trees give equal segments and equal hashes.
    /// </summary>
    internal sealed class Hasher : IDisposable
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public void Append(Segment segment)
        {
            if (segment.Count == 0)
            {
                // A snapshot keeps no empty segment.
                return;
            }

            Span<byte> count = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(count, segment.Count);
            _hash.AppendData(count);
            segment.List.Hash(segment, _hash);
        }

        public byte[] Finish() => _hash.GetHashAndReset();

        public void Dispose() => _hash.Dispose();
    }

    /// <summary>A run of one list's entries, from a place where its coding starts afresh to where the run ends (<see cref="EntryList.Since"/>).</summary>
    internal readonly record struct Segment(EntryList List, EntryList.Start Start, int Count, long End);

    /// <summary>One entry of the snapshot, valid until the enumerator moves on.</summary>
    public readonly ref struct Entry
    {
        internal Entry(ReadOnlySpan<byte> path, uint mode, long size, long mtimeSeconds, uint mtimeNanoseconds)
        {
            PathBytes = path;
            Mode = mode;
            Size = size;
            MtimeSeconds = mtimeSeconds;
            MtimeNanoseconds = mtimeNanoseconds;
        }

        /// <summary>The exact bytes of the path relative to the scanned directory.</summary>
        public ReadOnlySpan<byte> PathBytes { get; }

        internal uint Mode { get; }

        internal long MtimeSeconds { get; }

        internal uint MtimeNanoseconds { get; }

        public EntryType Type => EntryTypes.FromMode(Mode);

        public long Size { get; }

        /// <summary>Permission bits and set-id/sticky bits (mode &amp; 07777).</summary>
        public int Permissions => (int)(Mode & 0xFFF);

        /// <summary>The modification time, clamped to what PostgreSQL and .NET can hold (years 1 to 9999).</summary>
        public DateTime ModifiedUtc
        {
            get
            {
                const long MinSeconds = -62135596800; // 0001-01-01
                const long MaxSeconds = 253402300799; // 9999-12-31T23:59:59
                var seconds = Math.Clamp(MtimeSeconds, MinSeconds, MaxSeconds);
                return DateTime.UnixEpoch.AddTicks(seconds * TimeSpan.TicksPerSecond + Math.Min(MtimeNanoseconds, 999_999_999u) / 100);
            }
        }

        /// <summary>The modification time in microseconds since the epoch (what PostgreSQL keeps).</summary>
        internal long MtimeMicros => (ModifiedUtc.Ticks - DateTime.UnixEpoch.Ticks) / 10;
    }

    public struct Enumerator
    {
        private readonly Segment[] _segments;
        private int _segment;
        private EntryList.Reader _reader;

        internal Enumerator(Segment[] segments)
        {
            _segments = segments;
            _segment = -1;
            _reader = default;
        }

        public readonly Entry Current => new(_reader.Path, _reader.Mode, _reader.Size, _reader.MtimeSeconds, _reader.MtimeNanoseconds);

        public bool MoveNext()
        {
            while (_segment < _segments.Length)
            {
                if (_segment >= 0 && _reader.MoveNext())
                {
                    return true;
                }

                if (++_segment < _segments.Length)
                {
                    var s = _segments[_segment];
                    _reader = s.List.Read(s.Start, s.Count);
                }
            }

            return false;
        }
    }
}
