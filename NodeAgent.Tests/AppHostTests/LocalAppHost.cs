using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Npgsql;

namespace NodeAgent.AppHostTests;

/// <summary>
/// The real AppHost in run mode with PostgreSQL from this machine's server binaries (<c>Postgres:Mode=local</c>, no
/// container engine needed) and the dashboard on, its cluster in a temporary directory that is removed afterwards.
/// Ports are the orchestrator's random ones, so a test run and a developer's <c>dotnet run</c> do not collide.
/// </summary>
public sealed class LocalAppHost : IAsyncLifetime
{
    /// <summary>Tests that start the AppHost run one after another: each starts a dozen processes on two cores.</summary>
    public const string Collection = "AppHost runs";

    public static readonly string[] Nodes = ["node-1", "node-2"];

    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    private readonly string _apiKey = Guid.NewGuid().ToString("N");
    private string? _directory;

    public DistributedApplication App { get; private set; } = null!;

    /// <summary>The cluster's data directory (Postgres:DataDirectory).</summary>
    public string DataDirectory => Path.Combine(_directory!, "postgres");

    public Uri DashboardUrl { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("nodemonitor-apphost-").FullName;
        // As root the server runs as the postgres user, which must be able to reach its data directory.
        File.SetUnixFileMode(_directory, (UnixFileMode)0b111_101_101);

        using var cts = new CancellationTokenSource(StartTimeout);
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            new DistributedApplicationTestingBuilderOptions { EnableDashboard = true },
            ["--Postgres:Mode=local", $"--Postgres:DataDirectory={DataDirectory}", $"--AppHost:DashboardApiKey={_apiKey}"],
            cts.Token);
        App = await builder.BuildAsync(cts.Token);
        await App.StartAsync(cts.Token);

        foreach (var node in Nodes)
        {
            await App.ResourceNotifications.WaitForResourceHealthyAsync(node, cts.Token);
        }

        DashboardUrl = new Uri((await App.GetDashboardUrlAsync(cts.Token))!.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>Stops and disposes the app (the orchestrator stops every resource); the data directory stays.</summary>
    public async Task StopAsync()
    {
        if (App is not null)
        {
            await App.DisposeAsync();
            App = null!;
        }
    }

    public async Task DisposeAsync()
    {
        await StopAsync();

        if (_directory is not null && Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    public async Task<NpgsqlDataSource> OpenDatabaseAsync(CancellationToken ct)
    {
        var connectionString = await App.GetConnectionStringAsync("monitordb", ct);
        Assert.False(string.IsNullOrEmpty(connectionString));
        return NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>A client for the dashboard's telemetry API, with its API key.</summary>
    public HttpClient CreateDashboardClient()
    {
        var client = new HttpClient { BaseAddress = DashboardUrl };
        client.DefaultRequestHeaders.Add("x-api-key", _apiKey);
        return client;
    }

    /// <summary>The newest file_monitor row of each node collected after <paramref name="after"/>, once every node has one.</summary>
    public static async Task<Dictionary<string, (string MountPath, string FileList, DateTime CollectedAt)>> WaitForScansAsync(
        NpgsqlDataSource dataSource, string[] nodes, DateTime after, CancellationToken ct)
    {
        const string sql = """
            SELECT DISTINCT ON (nodename) nodename, mountpath, filelist::text, collectedat
            FROM file_monitor
            WHERE nodename = ANY(@nodes) AND collectedat > @after
            ORDER BY nodename, collectedat DESC
            """;

        while (true)
        {
            var latest = new Dictionary<string, (string, string, DateTime)>(StringComparer.Ordinal);
            try
            {
                await using var command = dataSource.CreateCommand(sql);
                command.Parameters.AddWithValue("nodes", nodes);
                command.Parameters.AddWithValue("after", after);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    latest[reader.GetString(0)] = (reader.GetString(1), reader.GetString(2), reader.GetDateTime(3));
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // The agents have not created the schema yet.
            }

            if (nodes.All(latest.ContainsKey))
            {
                return latest;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }

    /// <summary>The names of the spans the dashboard holds for one resource (none yet: empty).</summary>
    public static async Task<IReadOnlyList<string>> SpanNamesAsync(HttpClient dashboard, string resource, CancellationToken ct)
    {
        using var response = await dashboard.GetAsync(new Uri($"/api/telemetry/spans?resource={Uri.EscapeDataString(resource)}&limit=1000", UriKind.Relative), ct);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return []; // the resource has sent no telemetry yet
        }

        response.EnsureSuccessStatusCode();
        using var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
        return [.. document.RootElement.GetProperty("data").GetProperty("resourceSpans").EnumerateArray()
            .SelectMany(resourceSpans => resourceSpans.GetProperty("scopeSpans").EnumerateArray())
            .SelectMany(scopeSpans => scopeSpans.GetProperty("spans").EnumerateArray())
            .Select(span => span.GetProperty("name").GetString()!)];
    }

    /// <summary>The messages of the structured logs the dashboard holds for one resource (none yet: empty).</summary>
    public static async Task<IReadOnlyList<string>> LogMessagesAsync(HttpClient dashboard, string resource, CancellationToken ct)
    {
        using var response = await dashboard.GetAsync(new Uri($"/api/telemetry/logs?resource={Uri.EscapeDataString(resource)}&limit=1000", UriKind.Relative), ct);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return [];
        }

        response.EnsureSuccessStatusCode();
        using var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
        return [.. document.RootElement.GetProperty("data").GetProperty("resourceLogs").EnumerateArray()
            .SelectMany(resourceLogs => resourceLogs.GetProperty("scopeLogs").EnumerateArray())
            .SelectMany(scopeLogs => scopeLogs.GetProperty("logRecords").EnumerateArray())
            .Select(record => record.TryGetProperty("body", out var body) ? body.ToString() : "")];
    }

    /// <summary>Whether the dashboard has received metrics from the resource.</summary>
    public static async Task<bool> HasMetricsAsync(HttpClient dashboard, string resource, CancellationToken ct)
    {
        using var response = await dashboard.GetAsync(new Uri("/api/telemetry/resources", UriKind.Relative), ct);
        response.EnsureSuccessStatusCode();
        using var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
        return document.RootElement.EnumerateArray().Any(r =>
            r.GetProperty("name").GetString() == resource && r.TryGetProperty("hasMetrics", out var has) && has.GetBoolean());
    }
}

