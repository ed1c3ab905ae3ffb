using System.Runtime.InteropServices;
using System.Text;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Native;

/// <summary>The monitored directory (<c>Agent:MountPath</c>), opened as every capability opens it.</summary>
internal static class MountDirectory
{
    /// <summary>How a directory is opened: read-only, never blocking, closed on exec. Walkers add O_NOFOLLOW below the mount.</summary>
    public static readonly int DirectoryFlags = NativeMethods.OReadOnly | NativeMethods.ODirectory | NativeMethods.OCloseOnExec | NativeMethods.ONonBlock;

    /// <summary>Checks at start that the monitored directory can be opened: a missing hostPath is the most common deployment mistake.</summary>
    /// <exception cref="MountPathException">it cannot, with a message that names it</exception>
    public static void Probe(string mountPath) => NativeMethods.Close(Open(mountPath));

    /// <summary>Opens the directory itself (it may be a symbolic link; nothing below it is followed by the callers).</summary>
    /// <exception cref="MountPathException">it is missing, not a directory, or unreadable</exception>
    public static unsafe int Open(string mountPath)
    {
        var bytes = Encoding.UTF8.GetBytes(mountPath + "\0");
        int fd;
        fixed (byte* path = bytes)
        {
            fd = NativeMethods.OpenAt(NativeMethods.AtFdCwd, path, DirectoryFlags, 0);
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
}
