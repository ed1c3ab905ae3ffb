using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace ScaleBench;

/// <summary>The database's size, WAL position and row counts at one moment.</summary>
internal sealed record SizeSnapshot(
    DateTimeOffset At, long DatabaseBytes, long WalBytes, long CatalogBytes, long ScanRows,
    IReadOnlyDictionary<string, (long Bytes, long Rows)> Tables);

/// <summary>A query's EXPLAIN ANALYZE timings over its runs, or why it could not run.</summary>
internal sealed record QueryTiming(string Name, string Source, double[] ExecutionMs, double[] PlanningMs, long Rows, string? Error);

/// <summary>Reads sizes and times queries over its own connection, apart from the simulated agents' pools.</summary>
internal static partial class DatabaseProbe
{
    public static async Task<SizeSnapshot> MeasureAsync(NpgsqlDataSource admin)
    {
        await using var connection = await admin.OpenConnectionAsync();
        long Scalar(string sql)
        {
            using var command = new NpgsqlCommand(sql, connection);
            return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        var tables = new Dictionary<string, (long, long)>();
        await using (var command = new NpgsqlCommand(
            """
            SELECT c.relname, pg_total_relation_size(c.oid), coalesce(s.n_live_tup, 0)
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm')
            """, connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                tables[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
            }
        }

        return new SizeSnapshot(
            DateTimeOffset.UtcNow,
            Scalar("SELECT pg_database_size(current_database())"),
            Scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"),
            Scalar("SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r'"),
            tables.ContainsKey("scans") ? Scalar("SELECT count(*) FROM scans") : 0,
            tables);
    }

    /// <summary>Connections the simulated agents hold (they connect as application 'nodeagent').</summary>
    public static async Task<(int Total, int Active)> ConnectionsAsync(NpgsqlDataSource admin)
    {
        await using var command = admin.CreateCommand(
            "SELECT count(*)::int, (count(*) FILTER (WHERE state <> 'idle'))::int FROM pg_stat_activity WHERE application_name = 'nodeagent'");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt32(0), reader.GetInt32(1));
    }

    /// <summary>Queries of a file, each after a line <c>-- query: name</c>; text before the first such line is ignored.</summary>
    public static List<(string Name, string Sql)> ReadQueries(string path)
    {
        var queries = new List<(string, string)>();
        string? name = null;
        var sql = new List<string>();
        void Close()
        {
            var text = string.Join('\n', sql).Trim().TrimEnd(';').Trim();
            if (name is not null && text.Length > 0)
            {
                queries.Add((name, text));
            }

            sql.Clear();
        }

        foreach (var line in File.ReadLines(path))
        {
            var match = QueryHeader().Match(line);
            if (match.Success)
            {
                Close();
                name = match.Groups[1].Value.Trim();
            }
            else
            {
                sql.Add(line);
            }
        }

        Close();
        return queries;
    }

    public static async Task<QueryTiming> TimeAsync(NpgsqlDataSource admin, string name, string source, string sql, int runs)
    {
        var execution = new List<double>();
        var planning = new List<double>();
        long rows = 0;
        try
        {
            await using var connection = await admin.OpenConnectionAsync();
            for (var run = 0; run < runs; run++)
            {
                await using var command = new NpgsqlCommand($"EXPLAIN (ANALYZE, BUFFERS) {sql}", connection) { CommandTimeout = 900 };
                await using var reader = await command.ExecuteReaderAsync();
                var first = true;
                while (await reader.ReadAsync())
                {
                    var line = reader.GetString(0);
                    if (first && TopRows().Match(line) is { Success: true } top)
                    {
                        rows = long.Parse(top.Groups[1].Value, CultureInfo.InvariantCulture);
                    }

                    first = false;
                    if (Timing().Match(line) is { Success: true } timing)
                    {
                        var ms = double.Parse(timing.Groups[2].Value, CultureInfo.InvariantCulture);
                        (timing.Groups[1].Value == "Execution" ? execution : planning).Add(ms);
                    }
                }
            }
        }
        catch (NpgsqlException e)
        {
            return new QueryTiming(name, source, [.. execution], [.. planning], rows, e is PostgresException pg ? $"{pg.SqlState}: {pg.MessageText}" : e.Message);
        }

        return new QueryTiming(name, source, [.. execution], [.. planning], rows, null);
    }

    public static double Median(double[] values)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    [GeneratedRegex(@"^\s*--\s*query:\s*(.+)$")]
    private static partial Regex QueryHeader();

    [GeneratedRegex(@"^(Execution|Planning) Time: ([0-9.]+) ms")]
    private static partial Regex Timing();

    [GeneratedRegex(@"actual time=[0-9.]+\.\.[0-9.]+ rows=([0-9]+)")]
    private static partial Regex TopRows();
}

/// <summary>The machine's CPU time split, from /proc/stat, to tell a saturated machine from a slow store.</summary>
internal readonly record struct CpuSample(long Busy, long IoWait, long Total, long ProcessMs)
{
    public static CpuSample Now()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        // user nice system idle iowait irq softirq steal
        var idle = fields[3];
        var iowait = fields[4];
        var total = fields.Take(8).Sum();
        return new CpuSample(total - idle - iowait, iowait, total, (long)System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds);
    }

    public static string Describe(CpuSample from, CpuSample to, TimeSpan elapsed)
    {
        var total = Math.Max(1, to.Total - from.Total);
        var bench = (to.ProcessMs - from.ProcessMs) / Math.Max(1, elapsed.TotalMilliseconds) / Environment.ProcessorCount;
        return $"machine CPU busy {100.0 * (to.Busy - from.Busy) / total:0}%, iowait {100.0 * (to.IoWait - from.IoWait) / total:0}%; "
            + $"the benchmark process itself {100 * bench:0}% of the machine";
    }
}
