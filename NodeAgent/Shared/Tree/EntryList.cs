using NodeAgent.Shared.Native;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// An append-only list of entries stored in fixed-size blocks (entries and path bytes separately), so
/// that a million-entry scan never needs one huge array, never copies on growth, and leaves no large
/// garbage behind.
/// </summary>
internal sealed class EntryList
{
    private const int EntryBlockShift = 11;
    private const int EntryBlockSize = 1 << EntryBlockShift;
    private const int PathBlockSize = 64 * 1024;

    private readonly List<RawEntry[]> _entryBlocks = [];
    private readonly List<byte[]> _pathBlocks = [];
    private int _pathUsed = PathBlockSize;

    public int Count { get; private set; }

    public long ApproximateBytes => (long)_entryBlocks.Count * EntryBlockSize * System.Runtime.CompilerServices.Unsafe.SizeOf<RawEntry>()
        + (long)_pathBlocks.Count * PathBlockSize;

    public ref readonly RawEntry this[int index] => ref _entryBlocks[index >> EntryBlockShift][index & (EntryBlockSize - 1)];

    public ReadOnlyMemory<byte> Path(in RawEntry entry) => _pathBlocks[entry.PathBlock].AsMemory(entry.PathOffset, entry.PathLength);

    public void Add(ReadOnlySpan<byte> path, in NativeMethods.Statx status)
    {
        if (_pathUsed + path.Length > PathBlockSize)
        {
            _pathBlocks.Add(new byte[Math.Max(PathBlockSize, path.Length)]);
            _pathUsed = 0;
        }

        var pathBlock = _pathBlocks[^1];
        path.CopyTo(pathBlock.AsSpan(_pathUsed));
        if ((Count & (EntryBlockSize - 1)) == 0)
        {
            _entryBlocks.Add(new RawEntry[EntryBlockSize]);
        }

        _entryBlocks[^1][Count & (EntryBlockSize - 1)] = new RawEntry
        {
            PathBlock = _pathBlocks.Count - 1,
            PathOffset = _pathUsed,
            PathLength = path.Length,
            Size = (long)status.Size,
            MtimeSeconds = status.MtimeSeconds,
            MtimeNanoseconds = status.MtimeNanoseconds,
            Mode = status.Mode,
        };
        _pathUsed += path.Length;
        Count++;
    }
}

internal struct RawEntry
{
    public int PathBlock;
    public int PathOffset;
    public int PathLength;
    public uint Mode;
    public long Size;
    public long MtimeSeconds;
    public uint MtimeNanoseconds;
}
