using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NodeAgent.Tests.Manifests;
using Npgsql;

namespace NodeAgent.Tests.Insight;

/// <summary>
/// The PostgreSQL dashboard asks the real schema: every variable's and every panel's SQL, with Grafana's macros and
/// variables filled in as Grafana fills them, runs against generated class data and returns rows.
/// </summary>
public sealed partial class ClassesDashboardTests
{
    private static readonly string DashboardPath = RepositoryRoot.Combine("aspirate-output", "components", "grafana-dashboards", "node-monitor-classes.json");

    public static TheoryData<string> Panels() => [.. Dashboard()["panels"]!.AsArray().Select(p => (string)p!["title"]!)];

    [Theory]
    [MemberData(nameof(Panels))]
    public async Task Panel_returns_rows_for_one_student_and_for_everyone(string title)
    {
        var data = await ClassData.Shared.Value;
        var panel = Dashboard()["panels"]!.AsArray().Single(p => (string)p!["title"]! == title)!;
        var targets = panel["targets"]!.AsArray();
        Assert.NotEmpty(targets);
        foreach (var target in targets)
        {
            var sql = (string)target!["rawSql"]!;
            Assert.True(await CountAsync(data, Fill(sql, data.OneStudent)) > 0, $"{title}: no rows for {string.Join(", ", data.OneStudent)}\n{sql}");
            Assert.True(await CountAsync(data, Fill(sql, data.Everyone)) > 0, $"{title}: no rows for everyone\n{sql}");
        }
    }

    [Fact]
    public async Task Every_variable_query_offers_values_and_the_label_variables_offer_all()
    {
        var data = await ClassData.Shared.Value;
        foreach (var variable in Dashboard()["templating"]!["list"]!.AsArray().Where(v => (string)v!["type"]! == "query"))
        {
            var sql = (string)variable!["query"]!;
            Assert.True(await CountAsync(data, Fill(sql, data.OneStudent)) > 0, $"variable {variable["name"]}: no values\n{sql}");
        }

        var labelVariables = Dashboard()["templating"]!["list"]!.AsArray().Where(v => (string?)v!["name"] is "course" or "assignment" or "student").ToList();
        Assert.Equal(3, labelVariables.Count);
        Assert.All(labelVariables, v => Assert.Equal("__all", (string)v!["allValue"]!));
    }

    [Fact]
    public void Panels_choose_the_postgresql_datasource_through_the_dashboard_variable()
    {
        var dashboard = Dashboard();
        Assert.Equal("node-monitor-classes", (string)dashboard["uid"]!);
        foreach (var panel in dashboard["panels"]!.AsArray())
        {
            Assert.Equal("${datasource}", (string)panel!["datasource"]!["uid"]!);
            Assert.All(panel["targets"]!.AsArray(), t => Assert.Equal("${datasource}", (string)t!["datasource"]!["uid"]!));
        }
    }

    private static JsonNode Dashboard() => JsonNode.Parse(File.ReadAllText(DashboardPath))!;

    // Grafana's PostgreSQL macros and the dashboard's variables, as Grafana writes them into the SQL it sends.
    private static string Fill(string sql, IReadOnlyDictionary<string, string> variables)
    {
        var from = DateTimeOffset.UtcNow.AddDays(-ClassData.Days - 1);
        var to = DateTimeOffset.UtcNow.AddMinutes(1);
        string Time(DateTimeOffset t) => $"'{t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)}'";
        sql = TimeFilter().Replace(sql, m => $"{m.Groups[1].Value} BETWEEN {Time(from)} AND {Time(to)}");
        sql = sql.Replace("$__timeFrom()", Time(from), StringComparison.Ordinal)
                 .Replace("$__timeTo()", Time(to), StringComparison.Ordinal)
                 .Replace("$__interval_ms", "3600000", StringComparison.Ordinal);
        foreach (var (name, value) in variables)
        {
            sql = sql.Replace("${" + name + "}", value, StringComparison.Ordinal).Replace("$" + name, value, StringComparison.Ordinal);
        }

        Assert.DoesNotMatch(@"\$\{?\w", sql);
        return sql;
    }

    private static async Task<long> CountAsync(ClassData data, string sql)
    {
        await using var command = data.DataSource.CreateCommand($"SELECT count(*) FROM ({sql}) AS panel");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [GeneratedRegex(@"\$__timeFilter\(([^)]+)\)")]
    private static partial Regex TimeFilter();

    /// <summary>A few days of a small class, made by the benchmark's generator, shared by the tests of this class.</summary>
    private sealed class ClassData
    {
        public const int Days = 6;

        public static readonly Lazy<Task<ClassData>> Shared = new(CreateAsync);

        public required NpgsqlDataSource DataSource { get; init; }

        public required Dictionary<string, string> OneStudent { get; init; }

        public required Dictionary<string, string> Everyone { get; init; }

        private static async Task<ClassData> CreateAsync()
        {
            var db = await InsightDatabase.CreateAsync();
            await db.TemplateAsync("in-container", "path", "/workspace/{course}-{student}/{assignment}/**");
            var connection = new NpgsqlConnectionStringBuilder(db.ConnectionString);
            var generator = new ProcessStartInfo("psql", ["-v", "ON_ERROR_STOP=1", "-q", "-v", "students=8", "-v", $"days={Days}",
                "-f", RepositoryRoot.Combine("bench", "classes", "generate.sql")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                Environment =
                {
                    ["PGHOST"] = connection.Host, ["PGPORT"] = connection.Port.ToString(CultureInfo.InvariantCulture),
                    ["PGUSER"] = connection.Username, ["PGDATABASE"] = connection.Database,
                },
            };
            using (var psql = Process.Start(generator)!)
            {
                var output = psql.StandardOutput.ReadToEndAsync();
                var errors = await psql.StandardError.ReadToEndAsync();
                await psql.WaitForExitAsync();
                Assert.True(psql.ExitCode == 0, $"generate.sql failed: {errors}\n{await output}");
            }

            // The student of the latest failing build, a C source of theirs for that assignment and its node: every
            // panel has rows for them.
            var row = (await db.RowsAsync(
                """
                SELECT f.labels ->> 'course', f.labels ->> 'assignment', f.labels ->> 'student', c.node_name, c.path
                  FROM (SELECT labels_pick(labels, '{course,assignment,student}') AS labels FROM failing_builds
                         WHERE labels ? 'assignment' ORDER BY started_at DESC LIMIT 1) AS f
                  JOIN current_files c ON c.labels @> f.labels AND c.path LIKE '%.c'
                 ORDER BY c.modified_at DESC LIMIT 1
                """)).Single();
            return new ClassData
            {
                DataSource = db.DataSource,
                OneStudent = new()
                {
                    ["course"] = (string)row[0]!, ["assignment"] = (string)row[1]!, ["student"] = (string)row[2]!,
                    ["node"] = (string)row[3]!, ["file"] = (string)row[4]!,
                },
                Everyone = new() { ["course"] = "__all", ["assignment"] = "__all", ["student"] = "__all", ["node"] = (string)row[3]!, ["file"] = (string)row[4]! },
            };
        }
    }
}
