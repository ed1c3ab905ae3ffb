using System.Buffers.Binary;
using System.Security.Cryptography;

namespace NodeAgent.Inventory;

/// <summary>
/// One scan's entries, sorted by the bytes of their relative paths, with a SHA-256 over every
/// entry's path, type, size, modification time and mode: two scans with the same hash have the
/// same inventory. Paths live in one shared byte buffer to keep a million-entry scan compact.
/// </summary>
public sealed class InventorySnapshot
{
    private readonly byte[] _paths;
    private readonly RawEntry[] _entries;

    internal InventorySnapshot(byte[] paths, RawEntry[] entries, int count)
    {
        _paths = paths;
        var sorted = entries.AsSpan(0, count);
        sorted.Sort(new PathComparer(paths));
        _entries = sorted.ToArray();
        ContentHash = ComputeHash();
    }

    public int Count => _entries.Length;

    public byte[] ContentHash { get; }

    /// <summary>Bytes this snapshot holds in memory (paths plus fixed-size records).</summary>
    public long ApproximateBytes => _paths.LongLength + (long)_entries.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<RawEntry>();

    public ReadOnlySpan<byte> PathBytes(int index) => _paths.AsSpan(_entries[index].PathOffset, _entries[index].PathLength);

    public EntryType Type(int index) => EntryTypes.FromMode(_entries[index].Mode);

    public long Size(int index) => _entries[index].Size;

    /// <summary>Permission bits and set-id/sticky bits (mode &amp; 07777).</summary>
    public int Permissions(int index) => (int)(_entries[index].Mode & 0xFFF);

    public DateTime ModifiedUtc(int index)
    {
        ref readonly var entry = ref _entries[index];
        return DateTime.UnixEpoch.AddTicks(entry.MtimeSeconds * TimeSpan.TicksPerSecond + entry.MtimeNanoseconds / 100);
    }

    public IEnumerable<string> PathTexts()
    {
        for (var i = 0; i < _entries.Length; i++)
        {
            yield return PathText.ToText(PathBytes(i));
        }
    }

    private byte[] ComputeHash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> record = stackalloc byte[4 + 1 + 8 + 8 + 4 + 4];
        foreach (ref readonly var entry in _entries.AsSpan())
        {
            BinaryPrimitives.WriteInt32LittleEndian(record, entry.PathLength);
            record[4] = (byte)EntryTypes.FromMode(entry.Mode);
            BinaryPrimitives.WriteInt64LittleEndian(record[5..], entry.Size);
            BinaryPrimitives.WriteInt64LittleEndian(record[13..], entry.MtimeSeconds);
            BinaryPrimitives.WriteUInt32LittleEndian(record[21..], entry.MtimeNanoseconds);
            BinaryPrimitives.WriteUInt32LittleEndian(record[25..], entry.Mode);
            hash.AppendData(record);
            hash.AppendData(_paths, entry.PathOffset, entry.PathLength);
        }

        return hash.GetHashAndReset();
    }

    private sealed class PathComparer(byte[] paths) : IComparer<RawEntry>
    {
        public int Compare(RawEntry x, RawEntry y) =>
            paths.AsSpan(x.PathOffset, x.PathLength).SequenceCompareTo(paths.AsSpan(y.PathOffset, y.PathLength));
    }
}

internal struct RawEntry
{
    public int PathOffset;
    public int PathLength;
    public long Size;
    public long MtimeSeconds;
    public uint MtimeNanoseconds;
    public uint Mode;
}
