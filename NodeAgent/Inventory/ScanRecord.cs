using NodeAgent.Shared.Tree;
using System.Globalization;
using NodeAgent.Shared.Delivery;

namespace NodeAgent.Inventory;

/// <summary>A scan waiting to be stored. <see cref="ScanId"/> makes storing it idempotent across retries.</summary>
public sealed record ScanRecord(
    Guid ScanId,
    string NodeName,
    string MountPath,
    DateTimeOffset CollectedAt,
    ScanResult Result);

/// <summary>
/// Scans in the delivery pipeline: while they wait, consecutive scans with the same content share one list in
/// memory, and the spool's weight bound counts the entries of the distinct lists held (<c>Agent:Inventory:SpoolMaxEntries</c>).
/// </summary>
internal sealed class ScanRecordKind : RecordKind<ScanRecord>
{
    public override string Noun => "scan";

    public override string Plural => "scans";

    public override string WeightUnit => "entries";

    public override string Describe(ScanRecord record) =>
        $"the scan of node {record.NodeName} collected at {record.CollectedAt.ToString("o", CultureInfo.InvariantCulture)}";

    public override object SharedPart(ScanRecord record) => record.Result.Snapshot;

    public override long Weight(ScanRecord record) => record.Result.Snapshot.Count;

    public override ScanRecord ShareWithPrevious(ScanRecord previous, ScanRecord next) =>
        !ReferenceEquals(previous.Result.Snapshot, next.Result.Snapshot)
        && previous.Result.Snapshot.ContentHash.AsSpan().SequenceEqual(next.Result.Snapshot.ContentHash)
            ? next with { Result = next.Result with { Snapshot = previous.Result.Snapshot } }
            : next;
}
