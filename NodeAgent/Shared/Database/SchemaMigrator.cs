using System.Reflection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace NodeAgent.Shared.Database;

/// <summary>
/// Applies the embedded, numbered SQL migrations (<c>Storage/Migrations/NNNN_name.sql</c>) that the
/// database has not seen yet. Every agent of a cluster may start at the same moment: a transaction-scoped
/// advisory lock lets one of them migrate while the others wait and then find nothing to do.
/// </summary>
public sealed partial class SchemaMigrator(NpgsqlDataSource dataSource, ILogger<SchemaMigrator> logger)
{
    // Any fixed 64-bit number unique to this schema: 'nodemon1' as ASCII.
    private const long AdvisoryLockKey = 0x6E6F64656D6F6E31;
    private const string ResourcePrefix = "NodeAgent.Migrations.";

    public static IReadOnlyList<(int Version, string Name, string Sql)> Migrations { get; } = LoadMigrations();

    // Shared by every capability's store: once one of them has migrated, none of them asks again.
    private volatile bool _current;

    /// <summary>Brings the schema up to date once per process (and again after a store found a table missing).</summary>
    public async Task EnsureCurrentAsync(CancellationToken cancellationToken)
    {
        if (!_current)
        {
            await MigrateAsync(cancellationToken);
            _current = true;
        }
    }

    /// <summary>
    /// Runs one store against an up-to-date schema. A store that finds a table missing means the database was
    /// recreated under a running agent: the error goes to the caller's retry, and the next attempt of any store
    /// migrates again first.
    /// </summary>
    public async Task<T> StoreAsync<T>(Func<Task<T>> store, CancellationToken cancellationToken)
    {
        await EnsureCurrentAsync(cancellationToken);
        try
        {
            return await store();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            _current = false;
            throw;
        }
    }

    /// <inheritdoc cref="StoreAsync{T}(Func{Task{T}}, CancellationToken)"/>
    public Task StoreAsync(Func<Task> store, CancellationToken cancellationToken) =>
        StoreAsync(async () =>
        {
            await store();
            return true;
        }, cancellationToken);

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);

        // An agent whose role may only read and insert (the DaemonSet's, when a Job migrates with the owner's role)
        // must find an up-to-date schema without issuing any DDL: CREATE ... IF NOT EXISTS needs the CREATE privilege
        // even when the table exists.
        if (await IsCurrentAsync(connection, cancellationToken))
        {
            return;
        }

        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
        {
            command.Parameters.AddWithValue(AdvisoryLockKey);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var command = new NpgsqlCommand(
            """
            CREATE TABLE IF NOT EXISTS node_monitor_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        var applied = new HashSet<int>();
        await using (var command = new NpgsqlCommand("SELECT version FROM node_monitor_migrations", connection, transaction))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                applied.Add(reader.GetInt32(0));
            }
        }

        foreach (var (version, name, sql) in Migrations)
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await using (var command = new NpgsqlCommand(sql, connection, transaction))
            {
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await using (var command = new NpgsqlCommand("INSERT INTO node_monitor_migrations (version, name) VALUES ($1, $2)", connection, transaction))
            {
                command.Parameters.AddWithValue(version);
                command.Parameters.AddWithValue(name);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            LogApplied(logger, version, name);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<bool> IsCurrentAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // Two statements: a query naming a table that does not exist fails when it is parsed, whatever its CASE says.
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('node_monitor_migrations') IS NOT NULL", connection))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return false;
            }
        }

        var applied = new HashSet<int>();
        await using var command = new NpgsqlCommand("SELECT version FROM node_monitor_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            applied.Add(reader.GetInt32(0));
        }

        return Migrations.All(m => applied.Contains(m.Version));
    }

    private static List<(int, string, string)> LoadMigrations()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        var migrations = new List<(int, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) || !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var fileName = resource[ResourcePrefix.Length..^".sql".Length];
            var separator = fileName.IndexOf('_', StringComparison.Ordinal);
            if (separator <= 0 || !int.TryParse(fileName.AsSpan(0, separator), out var version))
            {
                throw new InvalidOperationException($"Migration resource '{resource}' is not named NNNN_name.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            migrations.Add((version, fileName[(separator + 1)..], reader.ReadToEnd()));
        }

        migrations.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        for (var i = 1; i < migrations.Count; i++)
        {
            if (migrations[i].Item1 == migrations[i - 1].Item1)
            {
                throw new InvalidOperationException($"Two migrations share version {migrations[i].Item1}.");
            }
        }

        return migrations;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied schema migration {Version} ({Name})")]
    private static partial void LogApplied(ILogger logger, int version, string name);
}
