using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace NodeAgent.Processes;

/// <summary>What could be read of a process from <c>/proc/&lt;pid&gt;</c> at its exec, and what could not.</summary>
internal sealed record ProcessDetails(
    byte[]? Executable,
    IReadOnlyList<byte[]>? Arguments,
    bool ArgumentsCut,
    byte[]? WorkingDirectory,
    int? Uid,
    int? Gid,
    int? ParentPid,
    byte[]? ParentExecutable,
    string? ContainerId,
    string? PodUid,
    string? Hostname,
    ProcessReadFlags Missing);

/// <summary>What could not be read (the process was gone, or its files were not readable): the exec is recorded anyway.</summary>
[Flags]
internal enum ProcessReadFlags
{
    None = 0,
    Executable = 1,
    Arguments = 2,
    WorkingDirectory = 4,
    Status = 8,
    Cgroup = 16,
    Hostname = 32,
    ParentExecutable = 64,
}

/// <summary>
/// Reads a process's details from <c>/proc</c> (or another procfs root, for tests), each as its exact bytes. A
/// short-lived process may be gone before this runs: whatever could not be read is flagged, never guessed.
/// </summary>
internal sealed partial class ProcessReader(string procRoot = "/proc")
{
    public ProcessDetails Read(int pid, int argumentsMaxBytes)
    {
        var missing = ProcessReadFlags.None;
        var directory = $"{procRoot}/{pid}";
        var executable = ReadLink($"{directory}/exe");
        missing |= executable is null ? ProcessReadFlags.Executable : 0;
        var (arguments, cut) = ReadArguments($"{directory}/cmdline", argumentsMaxBytes);
        missing |= arguments is null ? ProcessReadFlags.Arguments : 0;
        var cwd = ReadLink($"{directory}/cwd");
        missing |= cwd is null ? ProcessReadFlags.WorkingDirectory : 0;
        var (uid, gid, ppid) = ReadStatus($"{directory}/status");
        missing |= uid is null ? ProcessReadFlags.Status : 0;
        var parentExecutable = ppid is { } parent and > 0 ? ReadLink($"{procRoot}/{parent}/exe") : null;
        missing |= ppid is > 0 && parentExecutable is null ? ProcessReadFlags.ParentExecutable : 0;
        var cgroup = ReadText($"{directory}/cgroup");
        missing |= cgroup is null ? ProcessReadFlags.Cgroup : 0;
        var (containerId, podUid) = cgroup is null ? (null, null) : Cgroups.Parse(cgroup);
        string? hostname = null;
        if (containerId is not null)
        {
            hostname = ReadText($"{directory}/root/etc/hostname")?.Trim();
            missing |= hostname is null ? ProcessReadFlags.Hostname : 0;
        }

        return new ProcessDetails(executable, arguments, cut, cwd, uid, gid, ppid, parentExecutable, containerId, podUid, hostname, missing);
    }

    private static (IReadOnlyList<byte[]>?, bool Cut) ReadArguments(string path, int maxBytes)
    {
        byte[] content;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 0);
            var buffer = new byte[maxBytes + 1];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0)
            {
                read += n;
            }

            content = buffer[..read];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, false);
        }

        var cut = content.Length > maxBytes;
        var span = content.AsSpan(0, Math.Min(content.Length, maxBytes));
        if (span.IsEmpty)
        {
            // A kernel thread, or a process already a zombie: its arguments are gone.
            return (null, false);
        }

        var arguments = new List<byte[]>();
        foreach (var range in span.TrimEnd((byte)0).Split((byte)0))
        {
            arguments.Add(span.TrimEnd((byte)0)[range].ToArray());
        }

        return (arguments, cut);
    }

    private static (int? Uid, int? Gid, int? ParentPid) ReadStatus(string path)
    {
        var text = ReadText(path);
        if (text is null)
        {
            return (null, null, null);
        }

        return (StatusField(text, "Uid"), StatusField(text, "Gid"), StatusField(text, "PPid"));
    }

    /// <summary>The first number of the line <c>name:</c> of a <c>/proc/&lt;pid&gt;/status</c> (Uid and Gid give the real id first).</summary>
    private static int? StatusField(string status, string name)
    {
        foreach (var line in status.AsSpan().EnumerateLines())
        {
            if (line.Length > name.Length && line[name.Length] == ':' && line.StartsWith(name, StringComparison.Ordinal))
            {
                var value = line[(name.Length + 1)..].TrimStart(" \t");
                var end = value.IndexOfAnyExcept("0123456789");
                return int.TryParse(end < 0 ? value : value[..end], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number)
                    ? number : null;
            }
        }

        return null;
    }

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The target of a symbolic link as its exact bytes (a process's exe and cwd may name anything).</summary>
    private static unsafe byte[]? ReadLink(string path)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            nint length;
            fixed (byte* target = buffer)
            {
                length = ReadLinkNative(path, target, buffer.Length);
            }

            return length < 0 ? null : buffer[..(int)length];
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint ReadLinkNative(string path, byte* buffer, nint size);
}

/// <summary>
/// Where a process runs, from its <c>/proc/&lt;pid&gt;/cgroup</c>: the container id (64 hex digits) and the pod's uid,
/// as containerd, CRI-O and Docker name their cgroups under the systemd and cgroupfs drivers, cgroup v2 and v1.
/// </summary>
internal static partial class Cgroups
{
    public static (string? ContainerId, string? PodUid) Parse(string cgroup)
    {
        string? container = null, pod = null;
        foreach (var line in cgroup.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = line[(line.IndexOf(':', line.IndexOf(':') + 1) + 1)..];
            container ??= ContainerId().Match(path) is { Success: true } c ? c.Groups["id"].Value : null;
            pod ??= PodUid().Match(path) is { Success: true } p ? p.Groups["uid"].Value.Replace('_', '-') : null;
        }

        return (container, pod);
    }

    // cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope (systemd driver); /<id> after a pod or docker (cgroupfs).
    [GeneratedRegex(@"(?:(?:cri-containerd|crio|docker)-|/)(?<id>[0-9a-f]{64})(?:\.scope)?(?:/|$)")]
    private static partial Regex ContainerId();

    // kubepods-burstable-pod<uid with _>.slice (systemd) or /pod<uid with ->/ (cgroupfs).
    [GeneratedRegex(@"pod(?<uid>[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")]
    private static partial Regex PodUid();
}
