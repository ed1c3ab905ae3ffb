using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using NodeAgent.Shared.Native;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

/// <summary>
/// Looks at one path below the monitored directory (open as a descriptor, so that paths are relative and exact bytes):
/// its entry, and for a regular file its SHA-256 (streamed, up to <c>HashMaxBytes</c>) and, when a snapshot of it is
/// kept, its content, read in the same pass. A file that changes while it is read is read again, a bounded number of
/// times, then reported as torn.
/// </summary>
internal sealed unsafe class FileInspector(ChangesSettings settings) : IDisposable
{
    /// <summary>Reads of a file that keeps changing before it is reported as torn.</summary>
    public const int MaxReads = 3;

    private const uint Fields = NativeMethods.StatxType | NativeMethods.StatxMode | NativeMethods.StatxSize | NativeMethods.StatxMtime | NativeMethods.StatxCtime;
    private const uint FieldsWithLinks = Fields | NativeMethods.StatxNlink | NativeMethods.StatxIno;
    private static readonly int FileOpenFlags = NativeMethods.OReadOnly | NativeMethods.ONoFollow | NativeMethods.ONonBlock | NativeMethods.OCloseOnExec;

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buffer = new byte[128 * 1024];

    /// <summary>The content being kept, reused from file to file (only the kept copy is allocated per file).</summary>
    private ArrayBufferWriter<byte>? _kept;
    private int _rootFd = -1;

    public int RootFd => _rootFd;

    /// <exception cref="Shared.Configuration.MountPathException">the monitored directory cannot be opened</exception>
    public void Open(string mountPath) => _rootFd = MountDirectory.Open(mountPath);

    /// <summary>The entry at <paramref name="path"/>, without following a final symbolic link.</summary>
    public Presence Stat(ReadOnlySpan<byte> path, out FileMeta meta) => Stat(path, out meta, out _, out _);

    /// <summary>The entry at <paramref name="path"/>, with the file it is and how many links it has.</summary>
    public Presence Stat(ReadOnlySpan<byte> path, out FileMeta meta, out FileIdentity file, out uint links)
    {
        var result = NativeMethods.StatX(_rootFd, path, NativeMethods.AtSymlinkNoFollow | NativeMethods.AtNoAutomount, FieldsWithLinks, out var status);
        meta = default;
        file = default;
        links = 0;
        if (result != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is NativeMethods.ENOENT or NativeMethods.ENOTDIR ? Presence.Gone : Presence.Unreadable;
        }

        meta = ToMeta(in status);
        file = new FileIdentity(((ulong)status.DeviceMajor << 32) | status.DeviceMinor, status.Inode);
        links = (status.Mask & NativeMethods.StatxNlink) != 0 ? status.LinkCount : 1;
        return Presence.Present;
    }

    /// <summary>
    /// For a regular file: its hash, its content when a snapshot is kept, and its entry as it was when read (which
    /// replaces <paramref name="meta"/>). Other entries are returned as they are.
    /// </summary>
    public Inspection Inspect(ReadOnlySpan<byte> path, FileMeta meta)
    {
        if (meta.Type != EntryType.File)
        {
            return new Inspection(meta, FileFlags.None, null);
        }

        var snapshotWanted = settings.SnapshotInclude.Matches(path);
        if (meta.Size > settings.HashMaxBytes)
        {
            return new Inspection(meta, FileFlags.NotHashed | (snapshotWanted ? FileFlags.TooLargeForSnapshot : 0), null);
        }

        // Reading without touching the access time: looking at a node's files never writes to its disk.
        var fd = NativeMethods.OpenAt(_rootFd, path, FileOpenFlags | NativeMethods.ONoAtime);
        if (fd < 0 && Marshal.GetLastPInvokeError() == NativeMethods.EPERM)
        {
            // Not the file's owner and no CAP_FOWNER: read as anyone may (a read-only mount updates no access time anyway).
            fd = NativeMethods.OpenAt(_rootFd, path, FileOpenFlags);
        }

        if (fd < 0)
        {
            // Gone, or replaced by something else since it was examined: the next look at it tells.
            return new Inspection(meta with { Hashed = false }, FileFlags.NotHashed, null);
        }

        try
        {
            for (var attempt = 1; ; attempt++)
            {
                if (!FStat(fd, out var before) || (before.Mode & 0xF000) != 0x8000)
                {
                    return new Inspection(meta with { Hashed = false }, FileFlags.NotHashed, null);
                }

                var keep = snapshotWanted && (long)before.Size <= settings.SnapshotMaxBytes;
                var read = ReadAll(fd, keep, (long)before.Size, out var content);
                var stable = read >= 0 && FStat(fd, out var after) && Same(in before, in after) && read == (long)before.Size;
                if (stable || attempt == MaxReads)
                {
                    var result = ToMeta(in before);
                    var flags = stable ? FileFlags.None : FileFlags.Torn;
                    if (read < 0 || read > settings.HashMaxBytes)
                    {
                        _hash.GetHashAndReset();
                        return new Inspection(result, flags | FileFlags.NotHashed | (snapshotWanted ? FileFlags.TooLargeForSnapshot : 0), null);
                    }

                    result.Sha256 = Sha256Value.From(_hash.GetHashAndReset());
                    result.Hashed = true;
                    result.HashHeld = true;
                    if (snapshotWanted && !keep)
                    {
                        flags |= FileFlags.TooLargeForSnapshot;
                    }

                    return new Inspection(result, flags, keep ? content : null);
                }

                _hash.GetHashAndReset();
                NativeMethods.LSeekStart(fd);
            }
        }
        finally
        {
            NativeMethods.Close(fd);
        }
    }

    /// <summary>
    /// Hashes the file from where it stands to its end (at most HashMaxBytes + 1 bytes); -1 on a read error. Once it has
    /// read the <paramref name="expected"/> size it stops without the read that would find the end: a file that grew
    /// meanwhile has another size or modification time afterwards, which the caller compares, and is read again.
    /// </summary>
    private long ReadAll(int fd, bool keep, long expected, out byte[]? content)
    {
        var kept = keep ? _kept ??= new ArrayBufferWriter<byte>((int)Math.Min(settings.SnapshotMaxBytes + 1, 64 * 1024)) : null;
        kept?.ResetWrittenCount();
        content = null;
        long total = 0;
        while (total <= settings.HashMaxBytes)
        {
            nint count;
            fixed (byte* pointer = _buffer)
            {
                count = NativeMethods.Read(fd, pointer, _buffer.Length);
            }

            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == NativeMethods.EINTR)
                {
                    continue;
                }

                return -1;
            }

            if (count == 0)
            {
                break;
            }

            var chunk = _buffer.AsSpan(0, (int)count);
            _hash.AppendData(chunk);
            if (kept is not null && total + count <= settings.SnapshotMaxBytes)
            {
                kept.Write(chunk);
            }

            total += count;
            if (total == expected)
            {
                break;
            }
        }

        content = kept is not null && total <= settings.SnapshotMaxBytes ? kept.WrittenSpan.ToArray() : null;
        return total;
    }

    private static bool FStat(int fd, out NativeMethods.Statx status)
    {
        byte empty = 0;
        fixed (NativeMethods.Statx* pointer = &status)
        {
            return NativeMethods.StatX(fd, &empty, NativeMethods.AtEmptyPath, Fields, pointer) == 0;
        }
    }

    private static bool Same(in NativeMethods.Statx a, in NativeMethods.Statx b) =>
        a.Size == b.Size && a.MtimeSeconds == b.MtimeSeconds && a.MtimeNanoseconds == b.MtimeNanoseconds
        && a.CtimeSeconds == b.CtimeSeconds && a.CtimeNanoseconds == b.CtimeNanoseconds;

    private static FileMeta ToMeta(in NativeMethods.Statx status) => new()
    {
        Type = EntryTypes.FromMode(status.Mode),
        Mode = status.Mode & 0xFFF,
        Size = (long)status.Size,
        MtimeMicros = FileMeta.ToMicros(status.MtimeSeconds, status.MtimeNanoseconds),
    };

    public void Dispose()
    {
        if (_rootFd >= 0)
        {
            NativeMethods.Close(_rootFd);
            _rootFd = -1;
        }

        _hash.Dispose();
    }

    internal enum Presence
    {
        Present,
        Gone,
        /// <summary>It could not be examined (permissions, I/O): what is known of it is kept.</summary>
        Unreadable,
    }

    /// <summary>A file as read: its entry (with its hash when it has one), what the reading met, and its content when a snapshot is kept.</summary>
    internal readonly record struct Inspection(FileMeta Meta, FileFlags Flags, byte[]? Content);
}
