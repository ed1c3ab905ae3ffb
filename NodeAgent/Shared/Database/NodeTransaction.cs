using Npgsql;

namespace NodeAgent.Shared.Database;

/// <summary>
/// A store's transaction, declared for one node. A role that does not own the tables (the DaemonSet's) may write only
/// rows of the node its transaction declares (migration 0009); for the owner the declaration changes nothing.
/// </summary>
public static class NodeTransaction
{
    /// <summary>The setting the database reads the node from (<c>node_monitor_node()</c>).</summary>
    public const string Setting = "node_monitor.node_name";

    /// <summary>
    /// Begins a transaction that writes for <paramref name="nodeName"/>. The declaration is local to the transaction, so
    /// nothing stays in the session (what a transaction-mode pooler needs).
    /// </summary>
    public static async Task<NpgsqlTransaction> BeginAsync(NpgsqlConnection connection, string nodeName, CancellationToken cancellationToken)
    {
        var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"SELECT set_config('{Setting}', $1, true)", connection, transaction);
        command.Parameters.AddWithValue(nodeName);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return transaction;
    }
}
