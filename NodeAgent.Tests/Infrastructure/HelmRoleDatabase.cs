using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Shared.Database;
using NodeAgent.Tests.Manifests;
using Npgsql;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>
/// A fresh database on the shared server set up as the CloudNativePG values set one up: an owner that migrates (the Job),
/// and the agents' role with exactly the values' grants (their postInitApplicationSQL, with this database's names).
/// </summary>
public sealed class HelmRoleDatabase : IAsyncDisposable
{
    private HelmRoleDatabase(string adminConnectionString, string owner, string agentRole)
    {
        AdminConnectionString = adminConnectionString;
        Owner = owner;
        AgentRole = agentRole;
        Admin = NpgsqlDataSource.Create(adminConnectionString);
        OwnerData = NpgsqlDataSource.Create(As(owner));
        AgentData = NpgsqlDataSource.Create(As(agentRole));
    }

    /// <summary>The superuser's connection string to this database.</summary>
    public string AdminConnectionString { get; }

    public string Owner { get; }

    public string AgentRole { get; }

    public NpgsqlDataSource Admin { get; }

    public NpgsqlDataSource OwnerData { get; }

    public NpgsqlDataSource AgentData { get; }

    public string As(string role) => new NpgsqlConnectionStringBuilder(AdminConnectionString) { Username = role }.ConnectionString;

    public static async Task<HelmRoleDatabase> CreateAsync(string prefix)
    {
        var server = await PostgresServer.Shared;
        var connectionString = await server.CreateDatabaseAsync(prefix);
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        var suffix = $"{Environment.ProcessId}_{Guid.NewGuid():N}"[..20];
        var (owner, agentRole) = ($"owner_{suffix}", $"agent_{suffix}");
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        await using (var admin = NpgsqlDataSource.Create(connectionString))
        {
            await ExecuteAsync(admin, $"CREATE ROLE {owner} LOGIN");
            await ExecuteAsync(admin, $"GRANT ALL ON DATABASE \"{database}\" TO {owner}");
            await ExecuteAsync(admin, $"GRANT ALL ON SCHEMA public TO {owner}");
            foreach (var statement in values.Strings("cluster.initdb.postInitApplicationSQL"))
            {
                var sql = Regex.Replace(statement, $@"\b{DatabaseSecrets.AgentRole}\b", agentRole);
                sql = Regex.Replace(sql, $@"\b{values.Required("cluster.initdb.owner")}\b", owner);
                sql = Regex.Replace(sql, $@"\b{values.Required("cluster.initdb.database")}\b", $"\"{database}\"");
                await ExecuteAsync(admin, sql);
            }

            // What the operator does for a managed role: the values' attributes (no BYPASSRLS), and LOGIN.
            await ExecuteAsync(admin, $"ALTER ROLE {agentRole} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS");
        }

        return new HelmRoleDatabase(connectionString, owner, agentRole);
    }

    /// <summary>Migrates as the owner, as the Job does.</summary>
    public Task MigrateAsOwnerAsync() => new SchemaMigrator(OwnerData, NullLogger<SchemaMigrator>.Instance).MigrateAsync(default);

    public async ValueTask DisposeAsync()
    {
        await AgentData.DisposeAsync();
        await OwnerData.DisposeAsync();
        await Admin.DisposeAsync();
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
