using System.Globalization;
using NodeAgent.Shared.Delivery;

namespace NodeAgent.Processes;

/// <summary>
/// One kept process as stored: what its exec showed and, once it has ended, how. <see cref="ParentProcessId"/> and
/// <see cref="ParentKind"/> are its parent's when the parent is kept too and was running (gcc for the cc1 it starts).
/// </summary>
internal sealed record ProcessRow(
    Guid ProcessId,
    int Pid,
    DateTimeOffset StartedAt,
    ProcessDetails Details,
    ProcessKind Kind,
    IReadOnlyList<byte[]> SourceFiles,
    DateTimeOffset? EndedAt,
    int? ExitCode,
    int? Signal,
    Guid? ParentProcessId = null,
    ProcessKind? ParentKind = null)
{
    public long ApproximateBytes =>
        300 + (Details.Executable?.Length ?? 0) + (Details.WorkingDirectory?.Length ?? 0) + (Details.ParentExecutable?.Length ?? 0)
        + (Details.Arguments?.Sum(a => 24 + a.Length) ?? 0) + SourceFiles.Sum(s => 24 + s.Length);
}

/// <summary>The rows of one round (new processes, ended ones), stored in one transaction.</summary>
internal sealed record ProcessBatch(string NodeName, string MountPath, IReadOnlyList<ProcessRow> Rows)
{
    public long ApproximateBytes { get; } = Rows.Sum(r => r.ApproximateBytes);
}

internal sealed class ProcessBatchKind : RecordKind<ProcessBatch>
{
    public override string Noun => "batch of process events";

    public override string Plural => "batches of process events";

    public override string WeightUnit => "bytes";

    public override string Describe(ProcessBatch record) =>
        $"{record.Rows.Count} process events of node {record.NodeName} from {record.Rows[0].StartedAt.ToString("o", CultureInfo.InvariantCulture)}";

    public override long Weight(ProcessBatch record) => record.ApproximateBytes;
}
