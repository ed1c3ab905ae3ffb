using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Native;

namespace NodeAgent.Shared.Tree;

// The walk itself: one Walker per thread, each over whole top-level subtrees (see TreeScanner.Scan).
public sealed partial class TreeScanner
{
    /// <summary>Logs the first few entries a scan had to skip, and how many more there were.</summary>
    private sealed class ProblemLog(ILogger logger)
    {
        private int _count;

        public void Report(ReadOnlySpan<byte> path, int errno)
        {
            if (Interlocked.Increment(ref _count) <= MaxLoggedProblems)
            {
                LogSkipped(logger, path.IsEmpty ? "." : PathText.ToText(path),
                    errno == NativeMethods.ENOENT ? "it vanished during the scan" : NativeMethods.Describe(errno));
            }
        }

        public void Summarize(string mountPath)
        {
            if (_count > MaxLoggedProblems)
            {
                LogMoreProblems(logger, _count - MaxLoggedProblems, mountPath);
            }
        }
    }

    /// <summary>One thread's walk: its own entries, its own current path, its own ancestors.</summary>
    private sealed unsafe class Walker(ProblemLog problems, (uint, uint, ulong) rootIdentity, CancellationToken cancellationToken)
    {
        private readonly HashSet<(uint, uint, ulong)> _ancestors = [rootIdentity];
        private int _depth;
        private readonly byte[] _path = new byte[64 * 1024];
        private int _pathLength;

        public EntryList Entries { get; } = new();

        /// <summary>The root's own entries, in runs that each end with a subdirectory whose subtree comes next (the last run ends the root).</summary>
        public List<TreeSnapshot.Segment> RootRuns { get; } = [];

        public int Vanished { get; private set; }

        public int Unreadable { get; private set; }

        /// <summary>Records the root's own entries; hands each subdirectory to <paramref name="subdirectory"/> instead of descending.</summary>
        public void ListRoot(int rootFd, Action<byte[], (uint, uint, ulong)> subdirectory)
        {
            _pathLength = 0;
            var run = Entries.Mark();
            Directory(rootFd, descend: false, (name, identity) =>
            {
                RootRuns.Add(Entries.Since(run));
                subdirectory(name, identity);
                run = Entries.Mark();
            });
            RootRuns.Add(Entries.Since(run));
        }

        /// <summary>Walks the subtree below the root's subdirectory <paramref name="name"/> (its own entry is already recorded).</summary>
        public void Subtree(int rootFd, byte[] name, (uint, uint, ulong) identity)
        {
            _pathLength = 0;
            Append(name);
            Descend(rootFd, name, identity);
        }

        private void Descend(int parentFd, ReadOnlySpan<byte> name, (uint, uint, ulong) identity)
        {
            var fd = NativeMethods.OpenAt(parentFd, name, DirectoryOpenFlags);
            if (fd < 0)
            {
                Problem(Marshal.GetLastPInvokeError());
                return;
            }

            _ancestors.Add(identity);
            _depth++;
            try
            {
                Directory(fd, descend: true, subdirectory: null);
            }
            finally
            {
                _depth--;
                _ancestors.Remove(identity);
                NativeMethods.Close(fd);
            }
        }

        /// <summary>Records the entries of the directory open as <paramref name="fd"/> (whose path is the current path), in byte order of their names.</summary>
        private void Directory(int fd, bool descend, Action<byte[], (uint, uint, ulong)>? subdirectory)
        {
            var (names, refs, count) = ReadSortedNames(fd);
            try
            {
                var prefixLength = _pathLength;
                for (var i = 0; i < count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var (offset, length) = (refs[i].Offset, refs[i].Length);
                    var name = names.AsSpan(offset, length);
                    _pathLength = prefixLength;
                    if (prefixLength + 1 + length > _path.Length)
                    {
                        // Deeper than any real tree; recorded as a problem rather than overflowing.
                        Problem(NativeMethods.ENAMETOOLONG);
                        continue;
                    }

                    if (prefixLength > 0)
                    {
                        Append("/"u8);
                    }

                    Append(name);

                    NativeMethods.Statx status;
                    int result;
                    fixed (byte* pointer = &names[offset])
                    {
                        result = NativeMethods.StatX(fd, pointer, NativeMethods.AtSymlinkNoFollow | NativeMethods.AtNoAutomount, StatxFields, &status);
                    }

                    if (result != 0)
                    {
                        Problem(Marshal.GetLastPInvokeError());
                        continue;
                    }

                    Entries.Add(_path.AsSpan(0, _pathLength), in status);
                    if ((status.Mode & 0xF000) != 0x4000)
                    {
                        continue;
                    }

                    var identity = (status.DeviceMajor, status.DeviceMinor, status.Inode);
                    if (_ancestors.Contains(identity))
                    {
                        // A bind mount of an ancestor: descending would never end.
                        Problem(NativeMethods.ELOOP);
                    }
                    else if (descend && _depth >= MaxDepth)
                    {
                        Problem(NativeMethods.ENAMETOOLONG);
                    }
                    else if (descend)
                    {
                        Descend(fd, name, identity);
                    }
                    else
                    {
                        subdirectory!(name.ToArray(), identity);
                    }
                }

                _pathLength = prefixLength;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(names);
                ArrayPool<NameRef>.Shared.Return(refs);
            }
        }

        /// <summary>Reads every name of a directory (NUL-terminated, in a pooled buffer) and sorts them by their bytes.</summary>
        private (byte[] Names, NameRef[] Refs, int Count) ReadSortedNames(int fd)
        {
            var names = ArrayPool<byte>.Shared.Rent(4096);
            var refs = ArrayPool<NameRef>.Shared.Rent(64);
            var count = 0;
            var used = 0;
            var listing = NativeMethods.Dup(fd);
            var dir = listing < 0 ? 0 : NativeMethods.FdOpenDir(listing);
            if (dir == 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (listing >= 0)
                {
                    NativeMethods.Close(listing);
                }

                Problem(errno);
                return (names, refs, 0);
            }

            try
            {
                while (true)
                {
                    var entry = NativeMethods.ReadDir(dir);
                    if (entry == null)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno != 0)
                        {
                            Problem(errno);
                        }

                        break;
                    }

                    var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + NativeMethods.DirentNameOffset);
                    if (name is [(byte)'.'] or [(byte)'.', (byte)'.'])
                    {
                        continue;
                    }

                    if (used + name.Length + 1 > names.Length)
                    {
                        Grow(ref names, used, Math.Max(names.Length * 2, used + name.Length + 1));
                    }

                    if (count == refs.Length)
                    {
                        Grow(ref refs, count, refs.Length * 2);
                    }

                    name.CopyTo(names.AsSpan(used));
                    names[used + name.Length] = 0;
                    refs[count++] = new NameRef(used, name);
                    used += name.Length + 1;
                }
            }
            finally
            {
                NativeMethods.CloseDir(dir);
            }

            refs.AsSpan(0, count).Sort(new ByName(names));
            return (names, refs, count);
        }

        /// <summary>
        /// A name in the buffer, with its first 16 bytes as two big-endian numbers (zero-padded: a name holds no NUL, so
        /// a shorter name still sorts first), so that most comparisons of a sort are two integer comparisons.
        /// </summary>
        private readonly struct NameRef(int offset, ReadOnlySpan<byte> name)
        {
            public readonly int Offset = offset;
            public readonly int Length = name.Length;
            public readonly ulong Head = BigEndian(name);
            public readonly ulong Next = name.Length > 8 ? BigEndian(name[8..]) : 0;

            private static ulong BigEndian(ReadOnlySpan<byte> bytes)
            {
                Span<byte> padded = stackalloc byte[8];
                padded.Clear();
                bytes[..Math.Min(8, bytes.Length)].CopyTo(padded);
                return BinaryPrimitives.ReadUInt64BigEndian(padded);
            }
        }

        /// <summary>Orders names by their bytes.</summary>
        private readonly struct ByName(byte[] names) : IComparer<NameRef>
        {
            public int Compare(NameRef a, NameRef b) =>
                a.Head != b.Head ? a.Head.CompareTo(b.Head)
                : a.Next != b.Next ? a.Next.CompareTo(b.Next)
                : a.Length <= 16 || b.Length <= 16 ? a.Length.CompareTo(b.Length)
                : names.AsSpan(a.Offset + 16, a.Length - 16).SequenceCompareTo(names.AsSpan(b.Offset + 16, b.Length - 16));
        }

        private static void Grow<T>(ref T[] array, int used, int size)
        {
            var larger = ArrayPool<T>.Shared.Rent(size);
            array.AsSpan(0, used).CopyTo(larger);
            ArrayPool<T>.Shared.Return(array);
            array = larger;
        }

        private void Append(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_path.AsSpan(_pathLength));
            _pathLength += bytes.Length;
        }

        private void Problem(int errno)
        {
            if (errno == NativeMethods.ENOENT)
            {
                Vanished++;
            }
            else
            {
                Unreadable++;
            }

            problems.Report(_path.AsSpan(0, _pathLength), errno);
        }
    }
}
