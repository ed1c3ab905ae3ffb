using Npgsql;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>Reads a query's rows as plain values (DBNull as null), for asserting on them.</summary>
public static class DatabaseRows
{
    public static async Task<List<object?[]>> RowsAsync(this NpgsqlDataSource dataSource, string sql, params object?[] parameters)
    {
        var rows = new List<object?[]>();
        await using var command = dataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }
}
