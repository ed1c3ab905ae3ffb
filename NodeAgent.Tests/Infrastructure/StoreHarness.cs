using NodeAgent.Shared.Tree;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Inventory;
using NodeAgent.Shared.Database;
using Npgsql;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>The agent's storage pieces wired to a real database, as the host wires them.</summary>
public sealed class StoreHarness : IAsyncDisposable
{
    public StoreHarness(string connectionString)
    {
        ConnectionString = connectionString;
        DataSource = NpgsqlDataSource.Create(connectionString);
        Migrator = new SchemaMigrator(DataSource, NullLogger<SchemaMigrator>.Instance);
        Store = new InventoryStore(DataSource, Migrator, NullLogger<InventoryStore>.Instance);
    }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public SchemaMigrator Migrator { get; }

    public InventoryStore Store { get; }

    public static ScanRecord Scan(string root, string node = "node-a", DateTimeOffset? at = null)
    {
        var result = new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(root, CancellationToken.None);
        var collectedAt = at ?? DateTimeOffset.UtcNow;
        return new ScanRecord(Guid.CreateVersion7(collectedAt), node, root, collectedAt, result);
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public Task<List<object?[]>> RowsAsync(string sql) => DataSource.RowsAsync(sql);

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
    }
}
