using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Inventory;
using NodeAgent.Processes;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Database;
using NpgsqlDataSource = Npgsql.NpgsqlDataSource;

namespace ScaleBench;

/// <summary>
/// What one agent writes through: its data source and its three stores, with the schema migrator each agent runs
/// at its first store. Logging is off (the stores log a line per scan; a thousand agents' lines are not the point).
/// </summary>
internal sealed class Agent
{
    public required InventoryStore Inventory { get; init; }

    public required ChangeStore Changes { get; init; }

    public required ProcessStore Processes { get; init; }

    public static Agent Create(NpgsqlDataSource dataSource, ChangesMetrics metrics)
    {
        var migrator = new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance);
        return new Agent
        {
            Inventory = new InventoryStore(dataSource, migrator, NullLogger<InventoryStore>.Instance),
            Changes = new ChangeStore(dataSource, migrator, metrics, TimeProvider.System, NullLogger<ChangeStore>.Instance),
            Processes = new ProcessStore(dataSource, migrator, NullLogger<ProcessStore>.Instance),
        };
    }

    /// <summary>
    /// A data source as the agent's (AgentDatabase: Aspire's AddNpgsqlDataSource with the server's type catalogue not
    /// loaded, application name 'nodeagent'), without its telemetry, with the pool bounded to <paramref name="maxPoolSize"/>.
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string connectionString, int maxPoolSize, string applicationName = DatabaseConnection.ApplicationName)
    {
        var connection = new Npgsql.NpgsqlConnectionStringBuilder(connectionString)
        {
            MaxPoolSize = maxPoolSize,
            ApplicationName = applicationName,
        };
        var builder = new Npgsql.NpgsqlDataSourceBuilder(connection.ConnectionString);
        builder.ConfigureTypeLoading(types => types.EnableTypeLoading(false));
        return builder.Build();
    }
}

/// <summary>Meters for the stores' instruments, which nothing here listens to.</summary>
internal sealed class PlainMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
        }
    }
}
