using System.Buffers.Binary;
using System.Runtime.InteropServices;
using NodeAgent.Shared.Native;

namespace NodeAgent.Changes;

/// <summary>
/// One inotify instance, through the kernel API: names arrive as their exact bytes (.NET's FileSystemWatcher decodes
/// them as text and cannot watch a tree without a watch per directory it manages itself).
/// </summary>
internal sealed unsafe partial class Inotify : IDisposable
{
    public const uint Modify = 0x2;
    public const uint Attrib = 0x4;
    public const uint CloseWrite = 0x8;
    public const uint MovedFrom = 0x40;
    public const uint MovedTo = 0x80;
    public const uint Create = 0x100;
    public const uint Delete = 0x200;
    public const uint DeleteSelf = 0x400;
    public const uint MoveSelf = 0x800;
    public const uint QueueOverflow = 0x4000;
    public const uint Ignored = 0x8000;
    public const uint IsDirectory = 0x40000000;

    private const uint OnlyDirectory = 0x01000000;
    private const uint DontFollow = 0x02000000;
    private const uint ExcludeUnlinked = 0x04000000;

    /// <summary>What a directory's watch reports: every change of its entries, never reads or opens.</summary>
    private const uint WatchMask = Modify | Attrib | CloseWrite | MovedFrom | MovedTo | Create | Delete | DeleteSelf | MoveSelf
        | OnlyDirectory | DontFollow | ExcludeUnlinked;

    public const int ENOSPC = 28;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    private readonly int _fd;

    public Inotify()
    {
        _fd = InotifyInit1(NativeMethods.ONonBlock | NativeMethods.OCloseOnExec);
        if (_fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new InvalidOperationException($"inotify is not available: {NativeMethods.Describe(errno)}.");
        }
    }

    /// <summary>Watches the directory at <paramref name="absolutePath"/> (NUL-terminated bytes); returns the watch descriptor, or -errno.</summary>
    public int AddWatch(ReadOnlySpan<byte> absolutePath)
    {
        fixed (byte* path = absolutePath)
        {
            var wd = InotifyAddWatch(_fd, path, WatchMask);
            return wd >= 0 ? wd : -Marshal.GetLastPInvokeError();
        }
    }

    public void RemoveWatch(int wd) => _ = InotifyRmWatch(_fd, wd);

    /// <summary>Waits up to <paramref name="timeoutMs"/> for events and reads as many as fit; 0 when none came.</summary>
    public int Read(byte[] buffer, int timeoutMs)
    {
        if (!NativeMethods.WaitReadable(_fd, timeoutMs))
        {
            return 0;
        }

        fixed (byte* pointer = buffer)
        {
            var read = NativeMethods.Read(_fd, pointer, buffer.Length);
            if (read >= 0)
            {
                return (int)read;
            }

            var errno = Marshal.GetLastPInvokeError();
            return errno is EAGAIN or EINTR ? 0 : throw new IOException($"Reading inotify events failed: {NativeMethods.Describe(errno)}.");
        }
    }

    /// <summary>Walks the events in <paramref name="buffer"/>[0..<paramref name="length"/>].</summary>
    public static void Parse(ReadOnlySpan<byte> buffer, Action<RawEvent> onEvent)
    {
        while (buffer.Length >= 16)
        {
            var nameLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer[12..]);
            var name = buffer.Slice(16, nameLength);
            var end = name.IndexOf((byte)0);
            onEvent(new RawEvent(
                BinaryPrimitives.ReadInt32LittleEndian(buffer),
                BinaryPrimitives.ReadUInt32LittleEndian(buffer[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]),
                end < 0 ? name.ToArray() : name[..end].ToArray()));
            buffer = buffer[(16 + nameLength)..];
        }
    }

    /// <summary>The kernel's limit on watches per user (<c>fs.inotify.max_user_watches</c>), for the message that asks to raise it.</summary>
    public static string MaxUserWatches() => ReadLimit("/proc/sys/fs/inotify/max_user_watches");

    /// <summary>The kernel's queue length per instance (<c>fs.inotify.max_queued_events</c>).</summary>
    public static string MaxQueuedEvents() => ReadLimit("/proc/sys/fs/inotify/max_queued_events");

    private static string ReadLimit(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    public void Dispose() => NativeMethods.Close(_fd);

    /// <summary>One event: the watch it came from, what happened, the cookie linking the two halves of a rename, the entry's name (empty for the directory itself).</summary>
    public readonly record struct RawEvent(int Wd, uint Mask, uint Cookie, byte[] Name)
    {
        public bool Is(uint flag) => (Mask & flag) != 0;
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true)]
    private static partial int InotifyAddWatch(int fd, byte* path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    private static partial int InotifyRmWatch(int fd, int wd);
}
