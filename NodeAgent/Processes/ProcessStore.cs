using System.Text;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Processes;

/// <summary>
/// Writes batches of process rows: one binary COPY into a transaction-local table, then one upsert by process id, so
/// that a process stored running is completed by its exit, and a retried batch changes nothing.
/// </summary>
internal sealed partial class ProcessStore(NpgsqlDataSource dataSource, SchemaMigrator migrator, ILogger<ProcessStore> logger) : IRecordStore<ProcessBatch>
{
    private static readonly string[] Columns =
    [
        "process_id", "node_name", "pid", "ppid", "uid", "gid", "exe", "exe_bytes", "parent_exe", "argv", "argv_bytes", "argv_cut", "cwd", "cwd_bytes",
        "container_id", "pod_uid", "hostname", "kind", "source_files", "started_at", "ended_at", "exit_code", "signal", "missing", "mount_path", "parent_process_id", "parent_kind",
    ];

    public Task PrepareAsync(CancellationToken cancellationToken) => migrator.EnsureCurrentAsync(cancellationToken);

    public Task StoreAsync(ProcessBatch batch, CancellationToken cancellationToken) =>
        migrator.StoreAsync(() => StoreOnceAsync(batch, cancellationToken), cancellationToken);

    private async Task StoreOnceAsync(ProcessBatch batch, CancellationToken cancellationToken)
    {
        using var activity = AgentDiagnostics.ActivitySource.StartActivity("processes.store");
        activity?.SetTag("batch.processes", batch.Rows.Count);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var create = new NpgsqlCommand(
            $"CREATE TEMP TABLE process_incoming ON COMMIT DROP AS SELECT {string.Join(", ", Columns)} FROM process_events WITH NO DATA", connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await BinaryCopy.WriteAsync(connection, "process_incoming", Columns, batch.Rows, (importer, row) => Write(importer, batch, row), cancellationToken);
        await using (var upsert = new NpgsqlCommand(
            $"""
            INSERT INTO process_events ({string.Join(", ", Columns)})
            SELECT DISTINCT ON (process_id) {string.Join(", ", Columns)} FROM process_incoming ORDER BY process_id, ended_at DESC NULLS LAST
            ON CONFLICT (process_id) DO UPDATE
               SET ended_at = coalesce(excluded.ended_at, process_events.ended_at),
                   exit_code = coalesce(excluded.exit_code, process_events.exit_code),
                   signal = coalesce(excluded.signal, process_events.signal)
            """, connection, transaction))
        {
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        LogStored(logger, batch.Rows.Count, batch.NodeName);
    }

    private static void Write(NpgsqlBinaryImporter importer, ProcessBatch batch, ProcessRow row)
    {
        var d = row.Details;
        importer.Write(row.ProcessId, NpgsqlDbType.Uuid);
        importer.Write(batch.NodeName, NpgsqlDbType.Text);
        importer.Write(row.Pid, NpgsqlDbType.Integer);
        WriteNullable(importer, d.ParentPid, NpgsqlDbType.Integer);
        WriteNullable(importer, d.Uid, NpgsqlDbType.Integer);
        WriteNullable(importer, d.Gid, NpgsqlDbType.Integer);
        WriteText(importer, d.Executable, withBytes: true);
        WriteText(importer, d.ParentExecutable, withBytes: false);
        if (d.Arguments is null)
        {
            importer.WriteNull();
            importer.WriteNull();
        }
        else
        {
            importer.Write(d.Arguments.Select(a => PathText.ToText(a)).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text);
            if (d.Arguments.All(a => PathText.IsExact(a)))
            {
                importer.WriteNull();
            }
            else
            {
                importer.Write(d.Arguments.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
            }
        }

        importer.Write(d.ArgumentsCut, NpgsqlDbType.Boolean);
        WriteText(importer, d.WorkingDirectory, withBytes: true);
        WriteNullable(importer, d.ContainerId, NpgsqlDbType.Text);
        WriteNullable(importer, d.PodUid, NpgsqlDbType.Text);
        WriteNullable(importer, d.Hostname, NpgsqlDbType.Text);
        importer.Write(row.Kind.ToString().ToLowerInvariant(), NpgsqlDbType.Text);
        importer.Write(row.SourceFiles.Select(s => PathText.ToText(s)).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text);
        importer.Write(row.StartedAt, NpgsqlDbType.TimestampTz);
        WriteNullable(importer, row.EndedAt, NpgsqlDbType.TimestampTz);
        WriteNullable(importer, row.ExitCode, NpgsqlDbType.Integer);
        WriteNullable(importer, row.Signal, NpgsqlDbType.Integer);
        importer.Write(MissingNames(d.Missing), NpgsqlDbType.Array | NpgsqlDbType.Text);
        importer.Write(batch.MountPath, NpgsqlDbType.Text);
        WriteNullable(importer, row.ParentProcessId, NpgsqlDbType.Uuid);
        if (row.ParentKind is { } parentKind)
        {
            importer.Write(parentKind.ToString().ToLowerInvariant(), NpgsqlDbType.Text);
        }
        else
        {
            importer.WriteNull();
        }
    }

    private static string[] MissingNames(ProcessReadFlags missing) =>
        [.. Enum.GetValues<ProcessReadFlags>().Where(f => f != ProcessReadFlags.None && missing.HasFlag(f)).Select(f => SnakeCase(f.ToString()))];

    private static string SnakeCase(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) && i > 0 ? $"_{char.ToLowerInvariant(c)}" : char.ToLowerInvariant(c).ToString()));

    private static void WriteText(NpgsqlBinaryImporter importer, byte[]? value, bool withBytes)
    {
        if (value is null)
        {
            importer.WriteNull();
        }
        else
        {
            importer.Write(PathText.ToText(value), NpgsqlDbType.Text);
        }

        if (withBytes)
        {
            if (value is null || PathText.IsExact(value))
            {
                importer.WriteNull();
            }
            else
            {
                importer.Write(value, NpgsqlDbType.Bytea);
            }
        }
    }

    private static void WriteNullable<T>(NpgsqlBinaryImporter importer, T? value, NpgsqlDbType type) where T : struct
    {
        if (value is { } present)
        {
            importer.Write(present, type);
        }
        else
        {
            importer.WriteNull();
        }
    }

    private static void WriteNullable(NpgsqlBinaryImporter importer, string? value, NpgsqlDbType type)
    {
        if (value is null)
        {
            importer.WriteNull();
        }
        else
        {
            importer.Write(value, type);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stored {Count} process events of node {NodeName}")]
    private static partial void LogStored(ILogger logger, int count, string nodeName);
}
