using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using Npgsql;

namespace NodeAgent.AppHostTests;

/// <summary>
/// A local run of the AppHost (needs a container runtime for PostgreSQL): both agents become healthy and each
/// stores the listing of its own sample directory in the shared database.
/// </summary>
public sealed class LocalRunTests
{
    private static readonly string[] Nodes = ["node-1", "node-2"];

    /// <summary>The sample files of each node (AppHost/samples/&lt;node&gt;), nested folders included.</summary>
    private static readonly Dictionary<string, string[]> SampleFiles = new()
    {
        ["node-1"] = ["motd.txt", "inventory.json", "daily.csv"],
        ["node-2"] = ["readme.md", "settings.ini", "nightly.sh"],
    };

    [Fact]
    public async Task Both_agents_become_healthy_and_store_their_own_directory()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var ct = cts.Token;

        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(ct);
        await using var app = await builder.BuildAsync(ct);
        await app.StartAsync(ct);

        // Each agent waits for the database; healthy means its /health (database included) answered 200.
        foreach (var node in Nodes)
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(node, ct);
        }

        foreach (var node in Nodes)
        {
            using var client = app.CreateHttpClient(node, "http");
            using var response = await client.GetAsync(new Uri("/health", UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var connectionString = await app.GetConnectionStringAsync("monitordb", ct);
        Assert.False(string.IsNullOrEmpty(connectionString));

        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var latest = await WaitForLatestScansAsync(dataSource, ct);

        foreach (var node in Nodes)
        {
            var (mountPath, fileList) = latest[node];
            Assert.EndsWith(Path.Combine("samples", node), mountPath.TrimEnd('/'), StringComparison.Ordinal);

            foreach (var file in SampleFiles[node])
            {
                Assert.Contains(file, fileList, StringComparison.Ordinal);
            }

            foreach (var file in SampleFiles.Where(s => s.Key != node).SelectMany(s => s.Value))
            {
                Assert.DoesNotContain(file, fileList, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>
    /// The newest file_monitor row of each node, once both nodes have one. The agents create the schema and
    /// write their first scan right after start, so the relation may not exist yet on the first attempts.
    /// </summary>
    private static async Task<Dictionary<string, (string MountPath, string FileList)>> WaitForLatestScansAsync(
        NpgsqlDataSource dataSource, CancellationToken ct)
    {
        const string sql = """
            SELECT DISTINCT ON (nodename) nodename, mountpath, filelist::text
            FROM file_monitor
            WHERE nodename = ANY(@nodes)
            ORDER BY nodename, collectedat DESC
            """;

        while (true)
        {
            var latest = new Dictionary<string, (string MountPath, string FileList)>(StringComparer.Ordinal);
            try
            {
                await using var command = dataSource.CreateCommand(sql);
                command.Parameters.AddWithValue("nodes", Nodes);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    latest[reader.GetString(0)] = (reader.GetString(1), reader.GetString(2));
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // Migrations have not run yet.
            }

            if (Nodes.All(latest.ContainsKey))
            {
                return latest;
            }

            await Task.Delay(TimeSpan.FromSeconds(2), ct);
        }
    }
}
