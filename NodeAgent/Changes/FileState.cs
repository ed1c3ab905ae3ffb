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
    public Sha256Value Sha256;
    public bool Hashed;
    /// <summary>The reconciliation that last saw this path on disk (<see cref="FileStateTable.BeginSweep"/>).</summary>
    internal int Seen;

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
/// </summary>
internal sealed class FileStateTable
{
    private readonly Dictionary<byte[], FileMeta> _entries = new(PathComparer.Instance);
    private readonly Dictionary<byte[], FileMeta>.AlternateLookup<ReadOnlySpan<byte>> _bySpan;
    private int _sweep;

    public FileStateTable() => _bySpan = _entries.GetAlternateLookup<ReadOnlySpan<byte>>();

    public int Count => _entries.Count;

    public bool TryGet(ReadOnlySpan<byte> path, out FileMeta meta) => _bySpan.TryGetValue(path, out meta);

    public void Set(byte[] path, FileMeta meta) => _entries[path] = meta;

    public bool Remove(ReadOnlySpan<byte> path) => _bySpan.Remove(path);

    public void Clear() => _entries.Clear();

    /// <summary>Every path strictly below the directory <paramref name="directory"/>, deepest first.</summary>
    public List<byte[]> Below(ReadOnlySpan<byte> directory)
    {
        var below = new List<byte[]>();
        foreach (var path in _entries.Keys)
        {
            if (IsBelow(path, directory))
            {
                below.Add(path);
            }
        }

        below.Sort((a, b) => b.AsSpan().SequenceCompareTo(a));
        return below;
    }

    public static bool IsBelow(ReadOnlySpan<byte> path, ReadOnlySpan<byte> directory) =>
        directory.IsEmpty ? !path.IsEmpty : path.Length > directory.Length && path[directory.Length] == (byte)'/' && path.StartsWith(directory);

    /// <summary>Starts a sweep: <see cref="MarkSeen"/> the paths a scan found, then <see cref="NotSeen"/> lists the rest.</summary>
    public void BeginSweep() => _sweep++;

    /// <summary>The known state of <paramref name="path"/> (marked as seen by this sweep), or null when it is not known.</summary>
    public FileMeta? MarkSeen(ReadOnlySpan<byte> path)
    {
        ref var meta = ref CollectionsMarshal.GetValueRefOrNullRef(_bySpan, path);
        if (Unsafe.IsNullRef(ref meta))
        {
            return null;
        }

        meta.Seen = _sweep;
        return meta;
    }

    public List<byte[]> NotSeen()
    {
        var missing = new List<byte[]>();
        foreach (var (path, meta) in _entries)
        {
            if (meta.Seen != _sweep)
            {
                missing.Add(path);
            }
        }

        return missing;
    }
}
