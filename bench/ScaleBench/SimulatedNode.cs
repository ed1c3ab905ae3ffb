using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;
using NodeAgent.Changes;
using NodeAgent.Shared.Native;
using NodeAgent.Shared.Tree;

namespace ScaleBench;

/// <summary>
/// One node's monitored directory, held in memory: students' workspaces <c>{course}-{student}/hw{k}/fileNN.c</c>. It
/// gives what a real agent would hand its stores: the scan's snapshot (built the way the scanner builds it, one
/// <see cref="EntryList"/> in tree order, so its content hash behaves the same: equal when nothing changed), the
/// first start's create events, and the watch's events for the changes it makes. A file's content (and so its size
/// and SHA-256) follows from its seed, so ten million files cost a few words each, not their bytes.
/// </summary>
internal sealed class SimulatedNode
{
    public const string MountPath = "/srv/homework";
    public const int AssignmentsPerStudent = 10;
    public const int FilesPerAssignment = 10;
    private const int MaxFileNumber = 99;
    private const double CreateShare = 0.05;
    private const double DeleteShare = 0.05;
    private const int FileMode = 0x8000 | 0x1A4; // regular, 0644
    private const int DirectoryMode = 0x4000 | 0x1ED; // directory, 0755
    private static readonly string[] Courses = ["cs101", "cs102", "ds201", "se301"];

    private readonly Lock _gate = new();
    private readonly Student[] _students;
    private readonly int _contentBytes;
    private readonly EventIds _ids = new(TimeProvider.System);
    private TreeSnapshot? _snapshot;
    private int _versions;

    public SimulatedNode(int index, int students, int contentBytes, DateTimeOffset now)
    {
        Index = index;
        Name = $"node-{index + 1:D4}";
        _contentBytes = contentBytes;
        var random = new Random(index);
        var nowMicros = now.ToUnixTimeMilliseconds() * 1000;
        _students = new Student[students];
        for (var i = 0; i < students; i++)
        {
            var global = index * students + i;
            // Workspaces were made over the last weeks, their files edited since.
            var made = nowMicros - random.NextInt64(7, 60) * 86_400_000_000L;
            _students[i] = new Student(i, Courses[global % Courses.Length], global.ToString("D6"), made, random);
        }

        Array.Sort(_students, (a, b) => a.Dir.AsSpan().SequenceCompareTo(b.Dir));
    }

    public int Index { get; }

    public string Name { get; }

    public int Entries => _students.Sum(s => 1 + s.Assignments.Sum(a => 1 + a.Files.Count));

    /// <summary>The hash of the last list the inventory stored for this node, to tell a new list from an unchanged one.</summary>
    public byte[]? LastStoredHash { get; set; }

    /// <summary>What a scan would find now. Built again only after a change: an unchanged tree gives the same snapshot.</summary>
    public TreeSnapshot Snapshot()
    {
        lock (_gate)
        {
            if (_snapshot is not null)
            {
                return _snapshot;
            }

            var list = new EntryList();
            var start = list.Mark();
            Span<byte> path = stackalloc byte[128];
            foreach (var student in _students)
            {
                list.Add(student.Dir, Status(DirectoryMode, 4096, student.MtimeMicros));
                foreach (var assignment in student.Assignments)
                {
                    list.Add(assignment.Path, Status(DirectoryMode, 4096, assignment.MtimeMicros));
                    foreach (var file in assignment.Files)
                    {
                        var length = FilePath(assignment, file.Number, path);
                        list.Add(path[..length], Status(FileMode, Size(Seed(student, assignment, file)), file.MtimeMicros));
                    }
                }
            }

            _snapshot = new TreeSnapshot([new TreeSnapshot.Segment(list, start, list.Count)]);
            return _snapshot;
        }
    }

    /// <summary>
    /// The first start of the agent's change recording: every entry, in tree order, as a create event found by its
    /// scan, with the content of every source file, in batches of at most <paramref name="maxEvents"/> (ChangeLoop's
    /// bound). Called before the node changes anything, by one caller.
    /// </summary>
    public IEnumerable<FileEventBatch> BaselineBatches(int maxEvents)
    {
        var events = new List<FileEvent>();
        var state = new Dictionary<byte[], FileMeta?>(PathComparer.Instance);
        var buffer = new byte[128];
        foreach (var student in _students)
        {
            Add(student.Dir, DirectoryMeta(student.MtimeMicros), null);
            foreach (var assignment in student.Assignments)
            {
                Add(assignment.Path, DirectoryMeta(assignment.MtimeMicros), null);
                foreach (var file in assignment.Files)
                {
                    var path = buffer.AsSpan(0, FilePath(assignment, file.Number, buffer)).ToArray();
                    var meta = FileMetaOf(student, assignment, file, path, out var content);
                    Add(path, meta, content);
                    if (events.Count >= maxEvents)
                    {
                        yield return new FileEventBatch(Name, MountPath, events, state);
                        events = [];
                        state = new Dictionary<byte[], FileMeta?>(PathComparer.Instance);
                    }
                }
            }
        }

        if (events.Count > 0)
        {
            yield return new FileEventBatch(Name, MountPath, events, state);
        }

        void Add(byte[] path, FileMeta meta, byte[]? content)
        {
            events.Add(new FileEvent(_ids.Next(), FileEventType.Create, path, null, DateTimeOffset.UtcNow, meta, ChangeSource.Scan, FileFlags.None,
                content, Stopwatch.GetTimestamp()));
            state[path] = meta;
        }
    }

    /// <summary>
    /// <paramref name="count"/> changes made now (mostly edits of existing files, some new files, some deleted ones), as
    /// the events the watch records for them, with the state they leave: one batch, as ChangeLoop's group commit makes.
    /// </summary>
    public FileEventBatch Change(int count, Random random)
    {
        var events = new List<FileEvent>(count);
        var state = new Dictionary<byte[], FileMeta?>(PathComparer.Instance);
        var buffer = new byte[128];
        lock (_gate)
        {
            for (var i = 0; i < count; i++)
            {
                var now = DateTimeOffset.UtcNow;
                var nowMicros = now.ToUnixTimeMilliseconds() * 1000 + i;
                var student = _students[random.Next(_students.Length)];
                var assignment = student.Assignments[random.Next(student.Assignments.Length)];
                var roll = random.NextDouble();
                FileEventType type;
                FileSlot file;
                if (roll < CreateShare && assignment.Files[^1].Number < MaxFileNumber)
                {
                    type = FileEventType.Create;
                    file = new FileSlot(assignment.Files[^1].Number + 1, ++_versions, nowMicros);
                    assignment.Files.Add(file);
                    assignment.MtimeMicros = nowMicros;
                }
                else if (roll < CreateShare + DeleteShare && assignment.Files.Count > 1)
                {
                    type = FileEventType.Delete;
                    var at = random.Next(assignment.Files.Count);
                    file = assignment.Files[at];
                    assignment.Files.RemoveAt(at);
                    assignment.MtimeMicros = nowMicros;
                }
                else
                {
                    type = FileEventType.Modify;
                    var at = random.Next(assignment.Files.Count);
                    file = assignment.Files[at] with { Version = ++_versions, MtimeMicros = nowMicros };
                    assignment.Files[at] = file;
                }

                var path = buffer.AsSpan(0, FilePath(assignment, file.Number, buffer)).ToArray();
                // A delete carries the entry as it was; the others the entry as it is now, with its content kept.
                var meta = FileMetaOf(student, assignment, file, path, out var content);
                events.Add(new FileEvent(_ids.Next(), type, path, null, now, meta, ChangeSource.Watch, FileFlags.None,
                    type == FileEventType.Delete ? null : content, Stopwatch.GetTimestamp()));
                state[path] = type == FileEventType.Delete ? null : meta;
            }

            _snapshot = null;
        }

        return new FileEventBatch(Name, MountPath, events, state);
    }

    /// <summary>A workspace of this node, for the processes that run in it and for the timed queries.</summary>
    public (string Dir, string Course, string Id, string Container, string PodUid, int Uid) Workspace(int which)
    {
        var s = _students[which % _students.Length];
        return (Encoding.UTF8.GetString(s.Dir), s.Course, s.Id, s.ContainerId, s.PodUid, 1000 + s.Number);
    }

    public int Students => _students.Length;

    private FileMeta FileMetaOf(Student student, Assignment assignment, FileSlot file, ReadOnlySpan<byte> path, out byte[] content)
    {
        var seed = Seed(student, assignment, file);
        content = Content(seed, Size(seed), path, file.Version);
        return new FileMeta
        {
            Type = EntryType.File,
            Mode = FileMode & 0xFFF,
            Size = content.Length,
            MtimeMicros = file.MtimeMicros,
            Sha256 = Sha256Value.From(SHA256.HashData(content)),
            Hashed = true,
        };
    }

    private static FileMeta DirectoryMeta(long mtimeMicros) =>
        new() { Type = EntryType.Directory, Mode = DirectoryMode & 0xFFF, Size = 4096, MtimeMicros = mtimeMicros };

    private static NativeMethods.Statx Status(int mode, long size, long mtimeMicros) => new()
    {
        Mode = (ushort)mode,
        Size = (ulong)size,
        MtimeSeconds = Math.DivRem(mtimeMicros, 1_000_000, out var micros),
        MtimeNanoseconds = (uint)(micros * 1000),
    };

    private static int FilePath(Assignment assignment, int number, Span<byte> destination)
    {
        assignment.Path.CopyTo(destination);
        Utf8.TryWrite(destination[assignment.Path.Length..], $"/file{number:D2}.c", out var written);
        return assignment.Path.Length + written;
    }

    private ulong Seed(Student student, Assignment assignment, FileSlot file) =>
        Mix((ulong)Index << 40 ^ (ulong)student.Number << 24 ^ (ulong)assignment.Number << 16 ^ (ulong)file.Number ^ (ulong)file.Version << 48 ^ (ulong)file.Version);

    private int Size(ulong seed) => _contentBytes / 2 + (int)(seed % (ulong)_contentBytes);

    /// <summary>A plausible C source of exactly <paramref name="size"/> bytes: compresses about as well as real code.</summary>
    private static byte[] Content(ulong seed, int size, ReadOnlySpan<byte> path, int version)
    {
        var content = new byte[size];
        var span = content.AsSpan();
        Utf8.TryWrite(span, $"/* ", out var used);
        used += path.TryCopyTo(span[used..]) ? path.Length : 0;
        if (Utf8.TryWrite(span[used..], $" version {version} */\n#include <stdio.h>\n\nint main(void)\n{{\n    long total = 0;\n", out var written))
        {
            used += written;
        }

        while (true)
        {
            seed = Mix(seed);
            if (!Utf8.TryWrite(span[used..], $"    total += values[{seed % 64}] * {(seed >> 8) % 10007} - {(seed >> 24) % 997};\n", out written))
            {
                break;
            }

            used += written;
        }

        span[used..].Fill((byte)'\n');
        return content;
    }

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }

    private readonly record struct FileSlot(int Number, int Version, long MtimeMicros);

    private sealed class Assignment(int number, byte[] path, long mtimeMicros)
    {
        public int Number => number;

        public byte[] Path => path;

        public long MtimeMicros { get; set; } = mtimeMicros;

        public List<FileSlot> Files { get; } = new(FilesPerAssignment + 2);
    }

    private sealed class Student
    {
        public Student(int number, string course, string id, long madeMicros, Random random)
        {
            Number = number;
            Course = course;
            Id = id;
            Dir = Encoding.UTF8.GetBytes($"{course}-{id}");
            MtimeMicros = madeMicros;
            ContainerId = Convert.ToHexStringLower(RandomBytes(random, 32));
            PodUid = new Guid(RandomBytes(random, 16)).ToString();
            // hw1, hw10, hw2, ...: a directory's entries come in byte order of their names.
            Assignments = [.. Enumerable.Range(1, AssignmentsPerStudent)
                .Select(k => new Assignment(k, Encoding.UTF8.GetBytes($"{course}-{id}/hw{k}"), madeMicros + k * 3_600_000_000L))
                .OrderBy(a => a.Path, Comparer<byte[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y)))];
            foreach (var assignment in Assignments)
            {
                for (var f = 1; f <= FilesPerAssignment; f++)
                {
                    assignment.Files.Add(new FileSlot(f, 0, assignment.MtimeMicros + random.NextInt64(1, 86_400_000_000L)));
                }
            }
        }

        public int Number { get; }

        public string Course { get; }

        public string Id { get; }

        public byte[] Dir { get; }

        public long MtimeMicros { get; }

        public string ContainerId { get; }

        public string PodUid { get; }

        public Assignment[] Assignments { get; }

        private static byte[] RandomBytes(Random random, int count)
        {
            var bytes = new byte[count];
            random.NextBytes(bytes);
            return bytes;
        }
    }
}
