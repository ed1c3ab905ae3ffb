using System.Buffers.Binary;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// Bytes appended in blocks of 64 KiB (below the large object heap, so they never fragment it), each record whole in
/// one block: a million small records cost a few hundred blocks, not a million objects. A position names a block and
/// an offset in it. A reader may read records committed before it was handed them while the writer appends more:
/// appending never moves or rewrites a committed record (only <see cref="ReleaseBefore"/> does away with blocks).
/// </summary>
internal sealed class BlockBuffer
{
    private const int BlockSize = 64 * 1024;

    private readonly List<byte[]?> _blocks = [];
    /// <summary>Bytes used of each block (a record that does not fit in what is left of one starts the next).</summary>
    private readonly List<int> _lengths = [];
    private readonly Stack<byte[]>? _recycled;
    private int _reserved;

    public BlockBuffer()
    {
    }

    /// <summary>A buffer that takes its blocks from <paramref name="recycled"/> while it has some (see <see cref="ReleaseBefore"/>).</summary>
    public BlockBuffer(Stack<byte[]> recycled) => _recycled = recycled;

    /// <summary>Bytes of the blocks held.</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>Where the next record starts (or the end of the last block, when it starts the next one).</summary>
    public long Position => _blocks.Count == 0 ? 0 : Pack(_blocks.Count - 1, _lengths[^1]);

    /// <summary>Room for a record of at most <paramref name="maxLength"/> bytes; <see cref="Commit"/> says how much it took.</summary>
    public Span<byte> Reserve(int maxLength)
    {
        if (_blocks.Count == 0 || _lengths[^1] + maxLength > _blocks[^1]!.Length)
        {
            var block = maxLength <= BlockSize && _recycled is not null && _recycled.TryPop(out var used) ? used : new byte[Math.Max(BlockSize, maxLength)];
            _blocks.Add(block);
            _lengths.Add(0);
            AllocatedBytes += block.Length;
        }

        _reserved = maxLength;
        return _blocks[^1].AsSpan(_lengths[^1], maxLength);
    }

    public void Commit(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _reserved);
        _lengths[^1] += length;
        _reserved = 0;
    }

    /// <summary>The bytes written from <paramref name="position"/> to the end of its block (empty at its end: go on at <see cref="NextBlock"/>).</summary>
    public ReadOnlySpan<byte> From(long position)
    {
        var (block, offset) = Unpack(position);
        if (block >= _blocks.Count)
        {
            return default;
        }

        var bytes = _blocks[block] ?? throw new InvalidOperationException("A released block was read.");
        return bytes.AsSpan(offset, _lengths[block] - offset);
    }

    /// <summary>The position of the next block's start, for a reader that reached the end of one.</summary>
    public static long NextBlock(long position) => Pack(Unpack(position).Block + 1, 0);

    /// <summary>True when <paramref name="position"/> is at or past everything written.</summary>
    public bool AtEnd(long position)
    {
        var (block, offset) = Unpack(position);
        return block >= _blocks.Count || (block == _blocks.Count - 1 && offset >= _lengths[block]);
    }

    /// <summary>Advances <paramref name="position"/> past the ends of blocks to where the next record starts; false at the end of everything.</summary>
    public bool Seek(ref long position)
    {
        while (!AtEnd(position))
        {
            var (block, offset) = Unpack(position);
            if (offset < _lengths[block])
            {
                return true;
            }

            position = NextBlock(position);
        }

        return false;
    }

    /// <summary>Appends the bytes of the records from <paramref name="from"/> up to <paramref name="to"/> to <paramref name="hash"/>, block by block.</summary>
    public void HashBetween(long from, long to, System.Security.Cryptography.IncrementalHash hash)
    {
        var (first, offset) = Unpack(from);
        var (last, end) = Unpack(to);
        for (var block = first; block <= last && block < _blocks.Count; block++)
        {
            var start = block == first ? offset : 0;
            var stop = block == last ? end : _lengths[block];
            if (stop > start)
            {
                hash.AppendData((_blocks[block] ?? throw new InvalidOperationException("A released block was read.")).AsSpan(start, stop - start));
            }
        }
    }

    /// <summary>The position <paramref name="consumed"/> bytes after <paramref name="position"/>, in the same block.</summary>
    public static long Advance(long position, int consumed) => position + consumed;

    /// <summary>
    /// Lets go of the blocks before <paramref name="position"/>'s (a reader that never comes back is past them), into
    /// <paramref name="recycle"/> when given: a buffer written meanwhile reuses them, so rewriting a large buffer into a
    /// new one (merging) makes no garbage for the GC to find later, long after it was promoted.
    /// </summary>
    public void ReleaseBefore(long position, Stack<byte[]>? recycle = null)
    {
        var block = Unpack(position).Block;
        for (var i = Math.Min(block, _blocks.Count) - 1; i >= 0 && _blocks[i] is { } held; i--)
        {
            AllocatedBytes -= held.Length;
            _blocks[i] = null;
            if (held.Length == BlockSize)
            {
                recycle?.Push(held);
            }
        }
    }

    private static long Pack(int block, int offset) => ((long)block << 32) | (uint)offset;

    private static (int Block, int Offset) Unpack(long position) => ((int)(position >> 32), (int)(uint)position);
}

/// <summary>
/// The pieces records are made of: LEB128 variable-length integers (small numbers in one byte) and front-coded
/// paths (the length shared with the previous path, then the rest), so a sorted list of paths costs little more
/// than what differs from one path to the next.
/// </summary>
internal static class Packing
{
    /// <summary>Most bytes a variable-length integer takes.</summary>
    public const int MaxVarint = 10;

    public static int WriteVarint(Span<byte> target, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            target[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        target[i++] = (byte)value;
        return i;
    }

    public static ulong ReadVarint(ReadOnlySpan<byte> source, ref int offset)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = source[offset++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
    }

    public static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));

    public static long UnZigZag(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    public static void WriteInt32(Span<byte> target, ref int offset, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(target[offset..], value);
        offset += 4;
    }

    public static uint ReadInt32(ReadOnlySpan<byte> source, ref int offset)
    {
        var value = BinaryPrimitives.ReadUInt32LittleEndian(source[offset..]);
        offset += 4;
        return value;
    }

    /// <summary>Most bytes <see cref="WritePath"/> takes for a path of <paramref name="length"/> bytes.</summary>
    public static int MaxPathBytes(int length) => 2 * MaxVarint + length;

    /// <summary>Writes <paramref name="path"/> as what it shares with <paramref name="previous"/> and what follows.</summary>
    public static int WritePath(Span<byte> target, ReadOnlySpan<byte> path, ReadOnlySpan<byte> previous)
    {
        var shared = path.CommonPrefixLength(previous);
        var written = WriteVarint(target, (ulong)shared);
        written += WriteVarint(target[written..], (ulong)(path.Length - shared));
        path[shared..].CopyTo(target[written..]);
        return written + path.Length - shared;
    }

    /// <summary>Reads a path written by <see cref="WritePath"/> into <paramref name="path"/>, which holds the previous one.</summary>
    public static void ReadPath(ReadOnlySpan<byte> source, ref int offset, ref byte[] path, ref int pathLength)
    {
        var shared = (int)ReadVarint(source, ref offset);
        var rest = (int)ReadVarint(source, ref offset);
        if (shared + rest > path.Length)
        {
            Array.Resize(ref path, Math.Max(path.Length * 2, shared + rest));
        }

        source.Slice(offset, rest).CopyTo(path.AsSpan(shared));
        offset += rest;
        pathLength = shared + rest;
    }
}

/// <summary>
/// The path a front-coded record is written or read against: the one before it. Writing a path (or reading one)
/// makes it the previous path of the next record; <see cref="Reset"/> makes the next one written in full.
/// </summary>
internal struct PreviousPath
{
    private byte[] _bytes;
    private int _length;

    public readonly ReadOnlySpan<byte> Span => _bytes.AsSpan(0, _length);

    public void Reset() => _length = 0;

    public int Write(Span<byte> target, ReadOnlySpan<byte> path)
    {
        var written = Packing.WritePath(target, path, Span);
        Remember(path);
        return written;
    }

    /// <summary>Makes <paramref name="path"/> the previous path (copied into a buffer kept from path to path).</summary>
    public void Remember(ReadOnlySpan<byte> path)
    {
        if (_bytes is null || path.Length > _bytes.Length)
        {
            _bytes = new byte[Math.Max(256, Math.Max(path.Length, (_bytes?.Length ?? 0) * 2))];
        }

        path.CopyTo(_bytes);
        _length = path.Length;
    }

    public void Read(ReadOnlySpan<byte> source, ref int offset)
    {
        _bytes ??= new byte[256];
        Packing.ReadPath(source, ref offset, ref _bytes, ref _length);
    }
}

/// <summary>
/// Tree order: each directory followed by everything below it, the entries of a directory in byte order of their
/// names. It is byte order of whole paths with '/' taken as lower than any byte of a name, which is what a walk
/// that sorts each directory's names yields, and it keeps everything below a directory right after it.
/// </summary>
internal sealed class TreeOrder : IComparer<byte[]>
{
    public static readonly TreeOrder Instance = new();

    public int Compare(byte[]? x, byte[]? y) => Compare(x.AsSpan(), y.AsSpan());

    public static int Compare(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        var shared = x.CommonPrefixLength(y);
        if (shared == x.Length || shared == y.Length)
        {
            return x.Length.CompareTo(y.Length);
        }

        int a = x[shared] == (byte)'/' ? -1 : x[shared];
        int b = y[shared] == (byte)'/' ? -1 : y[shared];
        return a.CompareTo(b);
    }

    /// <summary>True when <paramref name="path"/> is strictly below <paramref name="directory"/> (everything is below the root, the empty path).</summary>
    public static bool IsBelow(ReadOnlySpan<byte> path, ReadOnlySpan<byte> directory) =>
        directory.IsEmpty ? !path.IsEmpty : path.Length > directory.Length && path[directory.Length] == (byte)'/' && path.StartsWith(directory);
}
