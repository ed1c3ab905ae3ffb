using System.Net;
using System.Text.Json;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Agent;

/// <summary>/health tells the truth: Unhealthy (503, NotReady) when the agent cannot do its job at all.</summary>
public sealed class HealthTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    private AgentProcess StartAgent(string connectionString, int port) => AgentProcess.Start(
        AgentProcess.AgentEnvironment(connectionString, _tree.Root, ("Agent__Inventory__ScanInterval", "00:00:01")),
        $"--urls=http://127.0.0.1:{port}");

    /// <summary>Polls /health until its inventory entry has <paramref name="status"/>; returns the whole report.</summary>
    private static async Task<(HttpStatusCode Code, JsonElement Report)> WaitForInventoryAsync(int port, string status)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        using var cancellation = new CancellationTokenSource(Patience);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(new Uri("/health", UriKind.Relative), cancellation.Token);
                var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellation.Token)).RootElement.Clone();
                if (report.GetProperty("checks").TryGetProperty("inventory", out var inventory) && inventory.GetProperty("status").GetString() == status)
                {
                    return (response.StatusCode, report);
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellation.Token);
        }
    }

    private static string Description(JsonElement report) =>
        report.GetProperty("checks").GetProperty("inventory").GetProperty("description").GetString()!;

    [Fact]
    public async Task Healthy_while_scans_are_stored()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");
        var port = AgentProcess.FreePort();
        await using var agent = StartAgent(connectionString, port);

        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);
        var (code, report) = await WaitForInventoryAsync(port, "Healthy");

        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        Assert.Contains("last scan stored", Description(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unhealthy_and_says_why_when_the_monitored_directory_is_deleted()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");
        var port = AgentProcess.FreePort();
        await using var agent = StartAgent(connectionString, port);
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);

        Directory.Delete(_tree.Root, recursive: true);
        var (code, report) = await WaitForInventoryAsync(port, "Unhealthy");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, code);
        Assert.Equal("Unhealthy", report.GetProperty("status").GetString());
        Assert.Contains("does not exist", Description(report), StringComparison.Ordinal);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task Unhealthy_when_the_database_user_may_not_write()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        var role = $"reader_{Guid.NewGuid():N}"[..20];
        await using (var harness = new StoreHarness(connectionString))
        {
            await harness.Migrator.MigrateAsync(default);
            await using var grant = harness.DataSource.CreateCommand($"""
                CREATE ROLE {role} LOGIN;
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                GRANT USAGE ON SCHEMA public TO {role};
                GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
                """);
            await grant.ExecuteNonQueryAsync();
        }

        _tree.File("a.txt");
        var port = AgentProcess.FreePort();
        await using var agent = StartAgent(new NpgsqlConnectionStringBuilder(connectionString) { Username = role }.ConnectionString, port);
        var (code, report) = await WaitForInventoryAsync(port, "Unhealthy");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, code);
        Assert.Contains("PostgreSQL refused", Description(report), StringComparison.Ordinal);
        Assert.Contains("42501", Description(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unhealthy_when_the_scans_table_is_dropped_under_the_agent()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");
        var port = AgentProcess.FreePort();
        await using var agent = StartAgent(connectionString, port);
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);

        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand("DROP TABLE scans CASCADE", connection);
            // The drop locks scans and everything that depends on it while the agent may be storing: PostgreSQL may
            // pick the drop as a deadlock's victim, and then it is simply tried again.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await drop.ExecuteNonQueryAsync();
                    break;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 5)
                {
                }
            }
        }

        var (code, report) = await WaitForInventoryAsync(port, "Unhealthy");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, code);
        Assert.Contains("42P01", Description(report), StringComparison.Ordinal);
    }
}
