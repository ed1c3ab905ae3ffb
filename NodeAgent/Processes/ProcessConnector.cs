using System.Buffers.Binary;
using System.Runtime.InteropServices;
using NodeAgent.Shared.Native;

namespace NodeAgent.Processes;

/// <summary>
/// The kernel's process-event connector (netlink <c>NETLINK_CONNECTOR</c>, group <c>CN_IDX_PROC</c>): a message for
/// every fork, exec and exit on the machine. The kernel sends them only into the host's network namespace (elsewhere
/// subscribing fails with ECONNREFUSED), so a pod needs hostNetwork; /proc must show the host's PIDs (hostPID); and
/// before kernel 6.6 subscribing needs CAP_NET_ADMIN. The socket's receive buffer is made large so that a burst of short processes
/// is queued by the kernel while the reader catches up; what is lost anyway (ENOBUFS, a gap in the sequence numbers)
/// is counted by the caller.
/// </summary>
internal sealed unsafe partial class ProcessConnector : IDisposable
{
    private const int AfNetlink = 16;
    private const int SockDgram = 2;
    private const int SockCloexec = 0x80000;
    private const int NetlinkConnector = 11;
    private const uint CnIdxProc = 1;
    private const uint CnValProc = 1;
    private const uint ProcCnMcastListen = 1;
    private const ushort NlmsgDone = 3;
    private const int SolSocket = 1;
    private const int SoRcvBuf = 8;
    private const int SoRcvBufForce = 33;
    private const int NetlinkHeaderSize = 16;
    private const int ConnectorHeaderSize = 20;
    public const int ENOBUFS = 105;
    private const int EAGAIN = 11;

    private readonly int _fd;

    private ProcessConnector(int fd) => _fd = fd;

    /// <summary>Opens the connector and subscribes to process events.</summary>
    /// <exception cref="ProcessConnectorException">it is not available (no privilege, not the host PID namespace, no such kernel support), with why</exception>
    public static ProcessConnector Open(int receiveBufferBytes)
    {
        var fd = Socket(AfNetlink, SockDgram | SockCloexec, NetlinkConnector);
        if (fd < 0)
        {
            throw new ProcessConnectorException($"cannot open the kernel's process-event connector: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
        }

        try
        {
            // SO_RCVBUFFORCE exceeds net.core.rmem_max (it needs CAP_NET_ADMIN, which the connector needs anyway).
            var size = receiveBufferBytes;
            if (SetSockOpt(fd, SolSocket, SoRcvBufForce, &size, sizeof(int)) != 0)
            {
                _ = SetSockOpt(fd, SolSocket, SoRcvBuf, &size, sizeof(int));
            }

            var address = new SockaddrNl { Family = AfNetlink, Pid = 0, Groups = CnIdxProc };
            if (Bind(fd, &address, sizeof(SockaddrNl)) != 0)
            {
                throw new ProcessConnectorException($"cannot join the process-event group: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            }

            Span<byte> message = stackalloc byte[NetlinkHeaderSize + ConnectorHeaderSize + 4];
            message.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(message[4..], NlmsgDone);
            BinaryPrimitives.WriteUInt32LittleEndian(message[12..], (uint)Environment.ProcessId);
            var connector = message[NetlinkHeaderSize..];
            BinaryPrimitives.WriteUInt32LittleEndian(connector, CnIdxProc);
            BinaryPrimitives.WriteUInt32LittleEndian(connector[4..], CnValProc);
            BinaryPrimitives.WriteUInt16LittleEndian(connector[16..], 4);
            BinaryPrimitives.WriteUInt32LittleEndian(connector[ConnectorHeaderSize..], ProcCnMcastListen);
            fixed (byte* pointer = message)
            {
                if (Send(fd, pointer, message.Length, 0) < 0)
                {
                    throw new ProcessConnectorException($"cannot subscribe to process events: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
                }
            }

            return new ProcessConnector(fd);
        }
        catch
        {
            NativeMethods.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for one datagram and parses its events; returns how many bytes came
    /// (0 when none), or -ENOBUFS when the kernel dropped messages because the buffer was full.
    /// </summary>
    public int Receive(byte[] buffer, int timeoutMs, List<ProcessEvent> events)
    {
        if (!NativeMethods.WaitReadable(_fd, timeoutMs))
        {
            return 0;
        }

        nint received;
        fixed (byte* pointer = buffer)
        {
            received = Recv(_fd, pointer, buffer.Length, 0);
        }

        if (received < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == ENOBUFS ? -ENOBUFS : errno is EAGAIN or NativeMethods.EINTR ? 0 : throw new IOException($"Reading process events failed: {NativeMethods.Describe(errno)}.");
        }

        Parse(buffer.AsSpan(0, (int)received), events);
        return (int)received;
    }

    /// <summary>The events in one datagram (netlink messages, each a connector message carrying one proc_event).</summary>
    internal static void Parse(ReadOnlySpan<byte> datagram, List<ProcessEvent> events)
    {
        while (datagram.Length >= NetlinkHeaderSize)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
            if (length < NetlinkHeaderSize || length > datagram.Length)
            {
                return;
            }

            var connector = datagram[NetlinkHeaderSize..length];
            if (connector.Length >= ConnectorHeaderSize + 16
                && BinaryPrimitives.ReadUInt32LittleEndian(connector) == CnIdxProc
                && BinaryPrimitives.ReadUInt32LittleEndian(connector[4..]) == CnValProc)
            {
                var sequence = BinaryPrimitives.ReadUInt32LittleEndian(connector[8..]);
                var body = connector[ConnectorHeaderSize..];
                var what = (ProcessEventKind)BinaryPrimitives.ReadUInt32LittleEndian(body);
                var cpu = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
                var data = body[16..];
                switch (what)
                {
                    case not (ProcessEventKind.Fork or ProcessEventKind.Exec or ProcessEventKind.Exit):
                        // Not used (uid, comm, ...), but numbered in the same per-CPU sequence: kept so that a gap
                        // in the sequence means a lost message and nothing else.
                        events.Add(new ProcessEvent(ProcessEventKind.Other, cpu, sequence, 0, 0, 0, 0, 0));
                        break;
                    case ProcessEventKind.Fork when data.Length >= 16:
                        events.Add(new ProcessEvent(what, cpu, sequence,
                            Pid: BinaryPrimitives.ReadInt32LittleEndian(data[8..]), Tgid: BinaryPrimitives.ReadInt32LittleEndian(data[12..]),
                            ParentPid: BinaryPrimitives.ReadInt32LittleEndian(data[4..]), ExitStatus: 0, ExitSignal: 0));
                        break;
                    case ProcessEventKind.Exec when data.Length >= 8:
                        events.Add(new ProcessEvent(what, cpu, sequence,
                            Pid: BinaryPrimitives.ReadInt32LittleEndian(data), Tgid: BinaryPrimitives.ReadInt32LittleEndian(data[4..]),
                            ParentPid: 0, ExitStatus: 0, ExitSignal: 0));
                        break;
                    case ProcessEventKind.Exit when data.Length >= 16:
                        events.Add(new ProcessEvent(what, cpu, sequence,
                            Pid: BinaryPrimitives.ReadInt32LittleEndian(data), Tgid: BinaryPrimitives.ReadInt32LittleEndian(data[4..]),
                            ParentPid: data.Length >= 24 ? BinaryPrimitives.ReadInt32LittleEndian(data[20..]) : 0,
                            ExitStatus: BinaryPrimitives.ReadUInt32LittleEndian(data[8..]), ExitSignal: BinaryPrimitives.ReadUInt32LittleEndian(data[12..])));
                        break;
                }
            }

            datagram = datagram[Math.Min(datagram.Length, (length + 3) & ~3)..];
        }
    }

    public void Dispose() => NativeMethods.Close(_fd);

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrNl
    {
        public ushort Family;
        public ushort Padding;
        public uint Pid;
        public uint Groups;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOpt(int fd, int level, int name, void* value, int length);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static partial int Bind(int fd, SockaddrNl* address, int length);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint Send(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(int fd, byte* buffer, nint length, int flags);
}

internal enum ProcessEventKind : uint
{
    Other = 0,
    Fork = 0x1,
    Exec = 0x2,
    Exit = 0x80000000,
}

/// <summary>
/// One message of the connector. For an exit, <see cref="ExitStatus"/> is the wait status (exit code in bits 8-15, or
/// the terminating signal in bits 0-6): never to be read as <c>status &gt;&gt; 8</c> alone, which makes a segfault exit 0.
/// </summary>
internal readonly record struct ProcessEvent(ProcessEventKind Kind, uint Cpu, uint Sequence, int Pid, int Tgid, int ParentPid, uint ExitStatus, uint ExitSignal)
{
    /// <summary>An exit of the whole process (its thread-group leader), not of one of its threads.</summary>
    public bool IsProcessExit => Kind == ProcessEventKind.Exit && Pid == Tgid;

    /// <summary>The exit code when the process exited by itself, else null.</summary>
    public int? ExitCode => (ExitStatus & 0x7F) == 0 ? (int)((ExitStatus >> 8) & 0xFF) : null;

    /// <summary>The signal that ended the process, else null.</summary>
    public int? Signal => (ExitStatus & 0x7F) is var signal and not 0 ? (int)signal : null;
}

/// <summary>The process-event connector cannot be used here (privilege, PID namespace, kernel), with why.</summary>
internal sealed class ProcessConnectorException(string message) : Exception(message);
