using System.Globalization;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

internal enum FileEventType
{
    Create,
    Modify,
    Delete,
    Rename,
    Attrib,
}

/// <summary>Where an event was seen: by the watch, or by comparing a scan with the current state.</summary>
internal enum ChangeSource
{
    Watch,
    Scan,
}

/// <summary>
/// One change of one path. <see cref="Meta"/> is the entry after the change (before it, for a delete).
/// <see cref="Content"/> is the file's content when a snapshot of it is kept (stored once per SHA-256). An event of a
/// hashed file whose hash <see cref="Meta"/> does not hold (a rename, a delete, a change of mode) has
/// <see cref="HashFrom"/>: the path whose stored row has it.
/// </summary>
internal sealed record FileEvent(
    Guid Id,
    FileEventType Type,
    byte[] Path,
    byte[]? OldPath,
    DateTimeOffset OccurredAt,
    FileMeta Meta,
    ChangeSource Source,
    FileFlags Flags,
    byte[]? Content,
    long ObservedTimestamp)
{
    public byte[]? HashFrom { get; init; }

    public static string Name(FileEventType type) => type switch
    {
        FileEventType.Create => "create",
        FileEventType.Modify => "modify",
        FileEventType.Delete => "delete",
        FileEventType.Rename => "rename",
        _ => "attrib",
    };

    /// <summary>What it holds in memory: the record (about 150 bytes), its path arrays and its content.</summary>
    public long ApproximateBytes => 150 + 3 * 32 + Path.Length + (OldPath?.Length ?? 0) + (HashFrom?.Length ?? 0) + (Content is null ? 0 : 32 + Content.Length);
}

[Flags]
internal enum FileFlags
{
    None = 0,
    /// <summary>Larger than <c>HashMaxBytes</c>: no SHA-256.</summary>
    NotHashed = 1,
    /// <summary>It kept changing while it was read: its hash (and snapshot) may mix two versions.</summary>
    Torn = 2,
    /// <summary>Its name matches <c>SnapshotInclude</c> but it is larger than <c>SnapshotMaxBytes</c>.</summary>
    TooLargeForSnapshot = 4,
}

/// <summary>
/// Events of one node in the order they were seen, with the state they leave behind (per path: its entry, or null
/// when it is gone), stored in one transaction. Its id is its first event's, so storing it twice stores it once.
/// <see cref="HashFrom"/> says, for entries of its state whose hash is not held, the path of the stored row that has it.
/// </summary>
internal sealed class FileEventBatch(string nodeName, string mountPath, List<FileEvent> events, Dictionary<byte[], FileMeta?> state,
    Dictionary<byte[], byte[]>? hashFrom = null)
{
    public string NodeName => nodeName;

    public string MountPath => mountPath;

    public List<FileEvent> Events => events;

    public Dictionary<byte[], FileMeta?> State => state;

    public IReadOnlyDictionary<byte[], byte[]> HashFrom { get; } = hashFrom ?? new Dictionary<byte[], byte[]>(PathComparer.Instance);

    public Guid Id => events[0].Id;

    /// <summary>Its events, and per path of its state an entry of the dictionary (with the path, about 130 bytes).</summary>
    public long ApproximateBytes { get; } = events.Sum(e => e.ApproximateBytes) + state.Keys.Sum(k => 130L + k.Length)
        + (hashFrom?.Sum(h => 60L + h.Value.Length) ?? 0);
}

/// <summary>File events in the delivery pipeline: the spool's weight bound counts the memory they hold (<c>Agent:Changes:SpoolMaxBytes</c>).</summary>
internal sealed class FileEventBatchKind : RecordKind<FileEventBatch>
{
    public override string Noun => "batch of file events";

    public override string Plural => "batches of file events";

    public override string WeightUnit => "bytes";

    public override string Describe(FileEventBatch record) =>
        $"{record.Events.Count} file events of node {record.NodeName} from {record.Events[0].OccurredAt.ToString("o", CultureInfo.InvariantCulture)}";

    public override long Weight(FileEventBatch record) => record.ApproximateBytes;
}
