using System.Runtime.InteropServices;

namespace NodeAgent.Shared.Native;

/// <summary>
/// The libc calls the capabilities share (opening, listing and examining directories and files). .NET's directory enumeration decodes names as UTF-8 and
/// replaces invalid bytes, which would lose names; these calls keep every name as its exact bytes.
/// </summary>
internal static unsafe partial class NativeMethods
{
    private const string Libc = "libc";

    public const int AtFdCwd = -100;
    public const int OReadOnly = 0x0;
    public const int ONonBlock = 0x800;
    // These two differ between architectures (asm-generic, used by arm64, versus x86).
    public static readonly int ODirectory = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;
    public static readonly int ONoFollow = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;
    public const int OCloseOnExec = 0x80000;
    /// <summary>Reading does not update the access time (allowed to a file's owner or with CAP_FOWNER; EPERM otherwise).</summary>
    public const int ONoAtime = 0x40000;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtNoAutomount = 0x800;
    public const int AtEmptyPath = 0x1000;

    public const uint StatxType = 0x1;
    public const uint StatxMode = 0x2;
    public const uint StatxNlink = 0x4;
    public const uint StatxIno = 0x100;
    public const uint StatxSize = 0x200;
    public const uint StatxMtime = 0x40;
    public const uint StatxCtime = 0x80;

    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EINTR = 4;
    public const int ENOTDIR = 20;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;

    public const int DirentNameOffset = 19;

    [LibraryImport(Libc, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(int dirFd, byte* path, int flags, int mode);

    /// <summary>The kernel refuses longer paths (ENAMETOOLONG) anyway; shorter ones are terminated on the stack.</summary>
    private const int PathMax = 4096;

    /// <summary><c>openat</c> with the path as bytes (not NUL-terminated); -1 with the error in GetLastPInvokeError on failure.</summary>
    public static int OpenAt(int dirFd, ReadOnlySpan<byte> path, int flags)
    {
        if (path.Length >= PathMax)
        {
            Marshal.SetLastPInvokeError(ENAMETOOLONG);
            return -1;
        }

        Span<byte> terminated = stackalloc byte[path.Length + 1];
        path.CopyTo(terminated);
        terminated[^1] = 0;
        fixed (byte* pointer = terminated)
        {
            return OpenAt(dirFd, pointer, flags, 0);
        }
    }

    /// <summary><c>statx</c> with the path as bytes (not NUL-terminated); non-zero with the error in GetLastPInvokeError on failure.</summary>
    public static int StatX(int dirFd, ReadOnlySpan<byte> path, int flags, uint mask, out Statx status)
    {
        status = default;
        if (path.Length >= PathMax)
        {
            Marshal.SetLastPInvokeError(ENAMETOOLONG);
            return -1;
        }

        Span<byte> terminated = stackalloc byte[path.Length + 1];
        path.CopyTo(terminated);
        terminated[^1] = 0;
        fixed (byte* pointer = terminated)
        fixed (Statx* buffer = &status)
        {
            return StatX(dirFd, pointer, flags, mask, buffer);
        }
    }

    [LibraryImport(Libc, EntryPoint = "dup", SetLastError = true)]
    public static partial int Dup(int fd);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "fdopendir", SetLastError = true)]
    public static partial nint FdOpenDir(int fd);

    [LibraryImport(Libc, EntryPoint = "readdir", SetLastError = true)]
    public static partial byte* ReadDir(nint dir);

    [LibraryImport(Libc, EntryPoint = "closedir", SetLastError = true)]
    public static partial int CloseDir(nint dir);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true)]
    public static partial int StatX(int dirFd, byte* path, int flags, uint mask, Statx* buffer);

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport(Libc, EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);

    public static void LSeekStart(int fd) => LSeek(fd, 0, 0);

    /// <summary>Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to have something to read; false on timeout (or EINTR).</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var poll = new PollFd { Fd = fd, Events = 1 }; // POLLIN
        return Poll(&poll, 1, timeoutMs) > 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "strerror")]
    private static partial nint StrError(int errno);

    public static string Describe(int errno) => Marshal.PtrToStringUTF8(StrError(errno)) ?? $"errno {errno}";

    /// <summary>struct statx from linux/stat.h (256 bytes, the same layout on every architecture).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(16)] public uint LinkCount;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(96)] public long CtimeSeconds;
        [FieldOffset(104)] public uint CtimeNanoseconds;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
        [FieldOffset(136)] public uint DeviceMajor;
        [FieldOffset(140)] public uint DeviceMinor;
    }
}
