using NodeAgent.Inventory;

namespace NodeAgent.Storage;

/// <summary>A scan waiting to be stored. <see cref="ScanId"/> makes storing it idempotent across retries.</summary>
public sealed record ScanRecord(
    Guid ScanId,
    string NodeName,
    string MountPath,
    DateTimeOffset CollectedAt,
    ScanResult Result);
