using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using Npgsql;
using NpgsqlTypes;

namespace NodeAgent.Processes;

/// <summary>
/// Writes batches of process rows in one transaction each. A process's first row in a batch is its start: it is
/// copied in (binary COPY), already ended when its exit came in the same round. A row whose start was in an earlier
/// batch is an exit: it completes the stored row, and is copied in whole if that row is not there (its batch was
/// given up). A retried batch changes nothing: if its first start is stored, the whole batch was. No temporary table:
/// one per batch would churn the catalogs of a server that 1,000 agents write to.
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
        var (starts, exits) = Split(batch.Rows);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await NodeTransaction.BeginAsync(connection, batch.NodeName, cancellationToken);
        if (starts.Count > 0)
        {
            await using var seen = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM process_events WHERE process_id = $1)", connection, transaction);
            seen.Parameters.AddWithValue(starts[0].ProcessId);
            if (await seen.ExecuteScalarAsync(cancellationToken) is true)
            {
                activity?.SetTag("batch.already_stored", true);
                return;
            }
        }

        var copied = starts;
        if (exits.Count > 0)
        {
            var found = new HashSet<Guid>();
            await using (var complete = new NpgsqlCommand(
                """
                UPDATE process_events AS p
                   SET ended_at = coalesce(x.ended_at, p.ended_at),
                       exit_code = coalesce(x.exit_code, p.exit_code),
                       signal = coalesce(x.signal, p.signal)
                  FROM unnest($1::uuid[], $2::timestamptz[], $3::integer[], $4::integer[]) AS x (process_id, ended_at, exit_code, signal)
                 WHERE p.process_id = x.process_id
                RETURNING p.process_id
                """, connection, transaction))
            {
                complete.Parameters.AddWithValue(exits.Select(r => r.ProcessId).ToArray());
                complete.Parameters.Add(new NpgsqlParameter { Value = exits.Select(r => r.EndedAt).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
                complete.Parameters.Add(new NpgsqlParameter { Value = exits.Select(r => r.ExitCode).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
                complete.Parameters.Add(new NpgsqlParameter { Value = exits.Select(r => r.Signal).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
                await using var reader = await complete.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    found.Add(reader.GetGuid(0));
                }
            }

            if (found.Count < exits.Count)
            {
                copied = [.. starts, .. exits.Where(r => !found.Contains(r.ProcessId))];
            }
        }

        if (copied.Count > 0)
        {
            await BinaryCopy.WriteAsync(connection, "process_events", Columns, copied, (importer, row) => Write(importer, batch, row), cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        LogStored(logger, batch.Rows.Count, batch.NodeName);
    }

    /// <summary>
    /// The batch's processes started in it (each as its last row: ended if its exit came in the same round) and the
    /// exits of processes started in an earlier one, each once, in the order they first appear.
    /// </summary>
    private static (List<ProcessRow> Starts, List<ProcessRow> Exits) Split(IReadOnlyList<ProcessRow> rows)
    {
        var order = new List<Guid>();
        var latest = new Dictionary<Guid, ProcessRow>();
        var started = new HashSet<Guid>();
        foreach (var row in rows)
        {
            if (!latest.ContainsKey(row.ProcessId))
            {
                order.Add(row.ProcessId);
            }

            if (row.EndedAt is null)
            {
                started.Add(row.ProcessId);
            }

            // A process's rows come in the order they happened: the last one says the most (its exit, when there is one).
            latest[row.ProcessId] = row;
        }

        var starts = new List<ProcessRow>();
        var exits = new List<ProcessRow>();
        foreach (var id in order)
        {
            (started.Contains(id) ? starts : exits).Add(latest[id]);
        }

        return (starts, exits);
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
