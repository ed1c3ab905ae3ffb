using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace NodeAgent.Inventory;

/// <summary>
/// Walks a directory tree and records every entry below it with its relative path (exact bytes),
/// type, size, modification time and mode. It never follows symbolic links (it records them), only
/// ever opens directories (never FIFOs, sockets or devices), never writes, and goes on past entries
/// that vanish or cannot be read, counting them.
/// </summary>
public sealed partial class TreeScanner(ILogger<TreeScanner> logger)
{
    private const int MaxLoggedProblems = 10;

    public ScanResult Scan(string mountPath, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var walk = new Walk(logger, cancellationToken);
        var rootFd = OpenRoot(mountPath);
        try
        {
            var root = Stat(rootFd);
            walk.Directory(rootFd, 0, 0, (root.DeviceMajor, root.DeviceMinor, root.Inode));
        }
        finally
        {
            // Walk.Directory closes the descriptor it is given through closedir; close here only if it never got there.
            walk.CloseIfUnowned(rootFd);
        }

        if (walk.Problems > MaxLoggedProblems)
        {
            LogMoreProblems(logger, walk.Problems - MaxLoggedProblems, mountPath);
        }

        var snapshot = new InventorySnapshot(walk.Paths, walk.Entries, walk.Count);
        return new ScanResult(snapshot, walk.Vanished, walk.Unreadable, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Checks that the monitored directory can be opened.</summary>
    /// <exception cref="MountPathException">it cannot, with a message that names it</exception>
    public static void ProbeMountPath(string mountPath) => NativeMethods.Close(OpenRoot(mountPath));

    private static unsafe int OpenRoot(string mountPath)
    {
        var bytes = Encoding.UTF8.GetBytes(mountPath + "\0");
        int fd;
        fixed (byte* path = bytes)
        {
            fd = NativeMethods.OpenAt(NativeMethods.AtFdCwd, path, NativeMethods.OReadOnly | NativeMethods.ODirectory | NativeMethods.OCloseOnExec | NativeMethods.ONonBlock, 0);
        }

        if (fd >= 0)
        {
            return fd;
        }

        var errno = Marshal.GetLastPInvokeError();
        throw errno switch
        {
            NativeMethods.ENOENT => new MountPathException($"Agent:MountPath '{mountPath}' does not exist (is the hostPath volume mounted?)."),
            NativeMethods.ENOTDIR => new MountPathException($"Agent:MountPath '{mountPath}' is not a directory."),
            NativeMethods.EACCES => new MountPathException($"Agent:MountPath '{mountPath}' cannot be read: permission denied."),
            _ => new MountPathException($"Agent:MountPath '{mountPath}' cannot be opened: {NativeMethods.Describe(errno)}."),
        };
    }

    private static unsafe NativeMethods.Statx Stat(int fd)
    {
        NativeMethods.Statx buffer;
        byte empty = 0;
        const int AtEmptyPath = 0x1000;
        if (NativeMethods.StatX(fd, &empty, AtEmptyPath, NativeMethods.StatxIno, &buffer) != 0)
        {
            throw new MountPathException($"Agent:MountPath cannot be examined: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}.");
        }

        return buffer;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {Path}: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} more entries under {MountPath} were skipped in this scan")]
    private static partial void LogMoreProblems(ILogger logger, int count, string mountPath);

    private sealed unsafe class Walk(ILogger logger, CancellationToken cancellationToken)
    {
        private readonly HashSet<(uint, uint, ulong)> _ancestors = [];
        private readonly byte[] _nameBuffer = new byte[4096 + 1];
        private bool _rootOwned;

        public byte[] Paths = new byte[1 << 16];
        public int PathsLength;
        public RawEntry[] Entries = new RawEntry[1024];
        public int Count;
        public int Vanished;
        public int Unreadable;
        public int Problems;

        public void CloseIfUnowned(int rootFd)
        {
            if (!_rootOwned)
            {
                NativeMethods.Close(rootFd);
            }
        }

        /// <summary>Lists one directory, then descends into its subdirectories. Takes ownership of <paramref name="fd"/>.</summary>
        /// <param name="prefixOffset">where this directory's own relative path sits in the path buffer</param>
        /// <param name="prefixLength">its length; 0 for the root</param>
        public void Directory(int fd, int prefixOffset, int prefixLength, (uint, uint, ulong) identity)
        {
            _rootOwned = true;
            var dir = NativeMethods.FdOpenDir(fd);
            if (dir == 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                NativeMethods.Close(fd);
                Problem(Prefix(prefixOffset, prefixLength), errno, unreadable: true);
                return;
            }

            _ancestors.Add(identity);
            List<(int Index, (uint, uint, ulong) Identity)>? subdirectories = null;
            try
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var entry = NativeMethods.ReadDir(dir);
                    if (entry == null)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno != 0)
                        {
                            Problem(Prefix(prefixOffset, prefixLength), errno, unreadable: true);
                        }

                        break;
                    }

                    var namePointer = entry + NativeMethods.DirentNameOffset;
                    var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(namePointer);
                    if (name is [(byte)'.'] or [(byte)'.', (byte)'.'])
                    {
                        continue;
                    }

                    NativeMethods.Statx status;
                    var result = NativeMethods.StatX(fd, namePointer, NativeMethods.AtSymlinkNoFollow | NativeMethods.AtNoAutomount,
                        NativeMethods.StatxType | NativeMethods.StatxMode | NativeMethods.StatxSize | NativeMethods.StatxMtime | NativeMethods.StatxIno, &status);
                    var statError = result == 0 ? 0 : Marshal.GetLastPInvokeError();

                    var pathOffset = PathsLength;
                    if (prefixLength > 0)
                    {
                        AppendFromSelf(prefixOffset, prefixLength);
                        Append("/"u8);
                    }

                    Append(name);
                    var pathLength = PathsLength - pathOffset;
                    if (statError != 0)
                    {
                        Problem(Paths.AsSpan(pathOffset, pathLength), statError, unreadable: statError != NativeMethods.ENOENT);
                        PathsLength = pathOffset;
                        continue;
                    }

                    if (Count == Entries.Length)
                    {
                        Array.Resize(ref Entries, Entries.Length * 2);
                    }

                    Entries[Count++] = new RawEntry
                    {
                        PathOffset = pathOffset,
                        PathLength = pathLength,
                        Size = (long)status.Size,
                        MtimeSeconds = status.MtimeSeconds,
                        MtimeNanoseconds = status.MtimeNanoseconds,
                        Mode = status.Mode,
                    };

                    if ((status.Mode & 0xF000) == 0x4000)
                    {
                        var childIdentity = (status.DeviceMajor, status.DeviceMinor, status.Inode);
                        if (_ancestors.Contains(childIdentity))
                        {
                            // A bind mount of an ancestor: descending would never end.
                            Problem(Paths.AsSpan(pathOffset, pathLength), 40 /* ELOOP */, unreadable: true);
                            continue;
                        }

                        (subdirectories ??= []).Add((Count - 1, childIdentity));
                    }
                }

                if (subdirectories is not null)
                {
                    foreach (var (index, childIdentity) in subdirectories)
                    {
                        Descend(fd, index, prefixLength, childIdentity);
                    }
                }
            }
            finally
            {
                NativeMethods.CloseDir(dir);
                _ancestors.Remove(identity);
            }
        }

        private void Descend(int parentFd, int index, int prefixLength, (uint, uint, ulong) identity)
        {
            var entry = Entries[index];
            var nameStart = prefixLength == 0 ? 0 : prefixLength + 1;
            var name = Paths.AsSpan(entry.PathOffset + nameStart, entry.PathLength - nameStart);
            name.CopyTo(_nameBuffer);
            _nameBuffer[name.Length] = 0;

            int childFd;
            fixed (byte* namePointer = _nameBuffer)
            {
                childFd = NativeMethods.OpenAt(parentFd, namePointer,
                    NativeMethods.OReadOnly | NativeMethods.ODirectory | NativeMethods.ONoFollow | NativeMethods.OCloseOnExec | NativeMethods.ONonBlock, 0);
            }

            if (childFd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                Problem(Paths.AsSpan(entry.PathOffset, entry.PathLength), errno, unreadable: errno != NativeMethods.ENOENT);
                return;
            }

            Directory(childFd, entry.PathOffset, entry.PathLength, identity);
        }

        private void AppendFromSelf(int offset, int length)
        {
            EnsureCapacity(length);
            Buffer.BlockCopy(Paths, offset, Paths, PathsLength, length);
            PathsLength += length;
        }

        private ReadOnlySpan<byte> Prefix(int offset, int length) => length == 0 ? ReadOnlySpan<byte>.Empty : Paths.AsSpan(offset, length);

        private void Append(ReadOnlySpan<byte> bytes)
        {
            EnsureCapacity(bytes.Length);
            bytes.CopyTo(Paths.AsSpan(PathsLength));
            PathsLength += bytes.Length;
        }

        private void EnsureCapacity(int more)
        {
            if (PathsLength + more > Paths.Length)
            {
                Array.Resize(ref Paths, Math.Max(Paths.Length * 2, PathsLength + more));
            }
        }

        private void Problem(ReadOnlySpan<byte> path, int errno, bool unreadable)
        {
            if (unreadable)
            {
                Unreadable++;
            }
            else
            {
                Vanished++;
            }

            if (++Problems <= MaxLoggedProblems)
            {
                LogSkipped(logger, path.IsEmpty ? "." : PathText.ToText(path), errno == NativeMethods.ENOENT ? "it vanished during the scan" : NativeMethods.Describe(errno));
            }
        }
    }
}
