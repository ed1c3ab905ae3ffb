using System.Net;
using System.Text.Json;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Agent;

/// <summary>The agent as an operator runs it: a real process, real PostgreSQL, real directories.</summary>
public sealed class AgentProcessTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    private Dictionary<string, string?> Environment(string? connectionString, params (string Key, string? Value)[] more) =>
        AgentProcess.AgentEnvironment(connectionString, _tree.Root, more);

    [Fact]
    public async Task RunOnce_scans_stores_logs_one_saved_line_and_exits_zero()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("one.txt");
        _tree.File("two/three.txt");

        await using var agent = AgentProcess.Start(Environment(connectionString, ("Agent__RunOnce", "true")));
        var exitCode = await agent.WaitForExitAsync(Patience);

        Assert.True(exitCode == 0, agent.Output);
        var saved = Assert.Single(agent.Lines, l => l.Contains("Successfully saved data", StringComparison.Ordinal));
        Assert.Contains("node node-under-test", saved, StringComparison.Ordinal);
        Assert.Contains($"path {_tree.Root}", saved, StringComparison.Ordinal);
        Assert.Contains("3 entries", saved, StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT nodename, filelist::text FROM file_monitor", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("node-under-test", reader.GetString(0));
        Assert.Equal("[\"one.txt\", \"two\", \"two/three.txt\"]", reader.GetString(1));
    }

    [Fact]
    public async Task RunOnce_logs_the_long_running_agents_lines_at_the_levels_the_logging_section_sets()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("one.txt");

        await using (var agent = AgentProcess.Start(Environment(connectionString, ("Agent__RunOnce", "true"),
                         ("Logging__LogLevel__Microsoft.Hosting.Lifetime", "Warning"))))
        {
            Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
            Assert.DoesNotContain(agent.Lines, l => l.Contains("Microsoft.Hosting.Lifetime", StringComparison.Ordinal));
            Assert.All(agent.Lines, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: [\w.]+\[\d+\] \S", l));
            var saved = Assert.Single(agent.Lines, l => l.Contains("Successfully saved data", StringComparison.Ordinal));
            Assert.Matches(@" info: NodeAgent\.Inventory\.InventoryStore\[\d+\] Successfully saved data for node node-under-test, path .+: 1 entries, .+\)$", saved);
        }

        // The console's own section, as for the long-running agent's console logger.
        await using (var agent = AgentProcess.Start(Environment(connectionString, ("Agent__RunOnce", "true"),
                         ("Logging__Console__LogLevel__Default", "Warning"))))
        {
            Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
            Assert.Empty(agent.Lines);
        }
    }

    [Fact]
    public async Task Unreadable_directory_is_counted_and_logged_and_the_scan_goes_on()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("open/visible.txt");
        _tree.File("locked/hidden.txt");
        // root reads everything, so the agent runs as nobody to meet a directory it may not list.
        _tree.Shell("chmod 755 . open && chmod 644 open/visible.txt && chmod 000 locked");

        await using var agent = AgentProcess.StartAs("nobody", Environment(connectionString, ("Agent__RunOnce", "true")));
        var exitCode = await agent.WaitForExitAsync(Patience);

        Assert.True(exitCode == 0, agent.Output);
        Assert.Contains(agent.Lines, l => l.Contains("Skipped locked: Permission denied", StringComparison.Ordinal));
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT f.filelist::text, s.unreadable_count FROM file_monitor f JOIN scans s ON s.collected_at = f.collectedat", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("[\"locked\", \"open\", \"open/visible.txt\"]", reader.GetString(0));
        Assert.Equal(1, reader.GetInt32(1));
    }

    [Fact]
    public async Task Agent_reaches_a_tls_only_database_through_the_libpq_variables_a_secret_provides()
    {
        await using var server = await PostgresServer.StartAsync(tlsOnly: true);
        var connectionString = await server.CreateDatabaseAsync("tls") + ";SSL Mode=Require";
        _tree.File("secure.txt");
        var builder = new NpgsqlConnectionStringBuilder(connectionString);

        await using var agent = AgentProcess.Start(Environment(null,
            ("Agent__RunOnce", "true"),
            ("PGHOST", "127.0.0.1"), ("PGPORT", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("PGDATABASE", builder.Database), ("PGUSER", "postgres"), ("PGPASSWORD", "from-the-secret"), ("PGSSLMODE", "require")));
        var exitCode = await agent.WaitForExitAsync(Patience);

        Assert.True(exitCode == 0, agent.Output);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT filelist::text FROM file_monitor", connection);
        Assert.Equal("[\"secure.txt\"]", await command.ExecuteScalarAsync());
        Assert.DoesNotContain("from-the-secret", agent.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunOnce_against_an_unreachable_database_exits_nonzero_with_a_clear_line_and_no_password()
    {
        var port = AgentProcess.FreePort();
        const string Password = "Sup3r-S3cret-Pa55";
        await using var agent = AgentProcess.Start(Environment(
            $"Host=127.0.0.1;Port={port};Database=monitordb;Username=monitor;Password={Password};Timeout=2",
            ("Agent__RunOnce", "true")));

        var exitCode = await agent.WaitForExitAsync(Patience);

        Assert.Equal(1, exitCode);
        var error = Assert.Single(agent.Lines, l => l.Contains("Could not store the scan", StringComparison.Ordinal));
        Assert.Contains($"127.0.0.1:{port}/monitordb as monitor", error, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, agent.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", agent.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Agent__ScanInterval", "soon", "Agent:ScanInterval 'soon' is not a time span")]
    [InlineData("Agent__ScanInterval", "00:00:00", "Agent:ScanInterval '00:00:00' must be between")]
    [InlineData("Agent__RunOnce", "maybe", "Agent:RunOnce 'maybe' is not a boolean")]
    [InlineData("Agent__MountPath", "relative/dir", "Agent:MountPath 'relative/dir' must be an absolute path")]
    [InlineData("ConnectionStrings__monitordb", "Host=db;Colour=blue;Password=hunter2", "ConnectionStrings:monitordb is not a valid Npgsql connection string")]
    public async Task Bad_setting_stops_the_agent_with_one_line_naming_the_key(string key, string value, string expected)
    {
        await using var agent = AgentProcess.Start(Environment("Host=127.0.0.1;Database=x;Username=y", (key, value)));

        var exitCode = await agent.WaitForExitAsync(Patience);

        Assert.Equal(2, exitCode);
        var line = Assert.Single(agent.Lines);
        Assert.StartsWith("nodeagent: configuration error: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_connection_string_names_the_key()
    {
        await using var agent = AgentProcess.Start(Environment(null));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        Assert.Contains("ConnectionStrings:monitordb is not set", Assert.Single(agent.Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_mount_path_stops_the_agent_with_one_line_naming_it()
    {
        var missing = Path.Combine(_tree.Root, "not-mounted");
        await using var agent = AgentProcess.Start(Environment("Host=127.0.0.1;Database=x;Username=y", ("Agent__MountPath", missing)));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        Assert.Equal($"nodeagent: Agent:MountPath '{missing}' does not exist (is the hostPath volume mounted?).", Assert.Single(agent.Lines));
    }

    [Fact]
    public async Task Mount_path_that_is_a_file_stops_the_agent_with_one_line_naming_it()
    {
        var file = _tree.File("not-a-dir");
        await using var agent = AgentProcess.Start(Environment("Host=127.0.0.1;Database=x;Username=y", ("Agent__MountPath", file)));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        Assert.Equal($"nodeagent: Agent:MountPath '{file}' is not a directory.", Assert.Single(agent.Lines));
    }

    [Fact]
    public async Task Long_running_agent_serves_health_alive_and_metrics_and_stops_on_sigterm()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");
        var port = AgentProcess.FreePort();
        await using var agent = AgentProcess.Start(
            Environment(connectionString, ("Agent__ScanInterval", "00:00:01")), $"--urls=http://127.0.0.1:{port}");
        await agent.WaitForLinesAsync("Successfully saved data", 2, Patience);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        var alive = await http.GetAsync(new Uri("/alive", UriKind.Relative));
        var health = await http.GetAsync(new Uri("/health", UriKind.Relative));
        var healthJson = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var exitCode = await agent.TerminateAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("Healthy", healthJson.GetProperty("status").GetString());
        Assert.True(healthJson.GetProperty("timestamp").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Equal("Healthy", healthJson.GetProperty("checks").GetProperty("PostgreSql").GetProperty("status").GetString());
        Assert.Contains("nodemonitor_scans_total{", metrics, StringComparison.Ordinal);
        Assert.Contains("result=\"stored\"", metrics, StringComparison.Ordinal);
        Assert.Contains("nodemonitor_scan_duration_seconds_bucket{", metrics, StringComparison.Ordinal);
        Assert.Contains("nodemonitor_scan_entries{", metrics, StringComparison.Ordinal);
        Assert.Contains("nodemonitor_spool_scans{", metrics, StringComparison.Ordinal);
        Assert.Equal(0, exitCode);
    }

    [Fact]
    public async Task Health_is_degraded_but_ready_while_alive_stays_ok_when_the_database_is_unreachable()
    {
        var port = AgentProcess.FreePort();
        await using var agent = AgentProcess.Start(
            Environment($"Host=127.0.0.1;Port={AgentProcess.FreePort()};Database=x;Username=y;Timeout=2"), $"--urls=http://127.0.0.1:{port}");
        await agent.WaitForLinesAsync("Could not store scan", 3, Patience);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        var alive = await http.GetAsync(new Uri("/alive", UriKind.Relative));
        var health = await http.GetAsync(new Uri("/health", UriKind.Relative));
        var healthJson = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        // An outage must not make every pod of the DaemonSet NotReady: 200, Degraded, and why.
        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("Degraded", healthJson.GetProperty("status").GetString());
        Assert.Equal("Degraded", healthJson.GetProperty("checks").GetProperty("PostgreSql").GetProperty("status").GetString());
        var inventory = healthJson.GetProperty("checks").GetProperty("inventory");
        Assert.Equal("Degraded", inventory.GetProperty("status").GetString());
        Assert.Contains("attempts to store a scan failed", inventory.GetProperty("description").GetString(), StringComparison.Ordinal);
        // Published at 0 from the start: the outage must have moved it.
        var retries = metrics.Split('\n').Single(l => l.StartsWith("nodemonitor_store_retries_total", StringComparison.Ordinal));
        Assert.True(double.Parse(retries[(retries.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture) >= 1, retries);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task Sigterm_during_an_outage_stops_promptly_and_says_what_was_not_stored()
    {
        _tree.File("a.txt");
        await using var agent = AgentProcess.Start(
            Environment($"Host=127.0.0.1;Port={AgentProcess.FreePort()};Database=x;Username=y;Timeout=2", ("Agent__ScanInterval", "00:00:01")),
            $"--urls=http://127.0.0.1:{AgentProcess.FreePort()}");
        await agent.WaitForLinesAsync("Could not store scan", 3, Patience);

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        var exitCode = await agent.TerminateAsync(TimeSpan.FromSeconds(40));

        Assert.Equal(0, exitCode);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"took {stopwatch.Elapsed} to stop");
        Assert.Contains(agent.Lines, l => l.Contains("Shutting down with", StringComparison.Ordinal) && l.Contains("scans not stored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_scan_the_database_rejects_for_its_data_is_given_up_and_later_scans_are_stored()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync("rejects");
        await using (var harness = new StoreHarness(connectionString))
        {
            await harness.Migrator.MigrateAsync(default);
            // Scans taken in the agent's first seconds are rejected as bad data, on every attempt.
            await using var command = harness.DataSource.CreateCommand("""
                CREATE TABLE reject_before AS SELECT now() + interval '5 seconds' AS cutoff;
                CREATE FUNCTION reject_early() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.collected_at < (SELECT cutoff FROM reject_before) THEN
                        RAISE EXCEPTION 'value out of range for this test' USING ERRCODE = '22003';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER reject_early BEFORE INSERT ON scans FOR EACH ROW EXECUTE FUNCTION reject_early();
                """);
            await command.ExecuteNonQueryAsync();
        }

        _tree.File("a.txt");
        await using var agent = AgentProcess.Start(Environment(connectionString, ("Agent__ScanInterval", "00:00:01")), $"--urls=http://127.0.0.1:{AgentProcess.FreePort()}");
        await agent.WaitForLinesAsync("Successfully saved data", 2, Patience);
        await agent.TerminateAsync(TimeSpan.FromSeconds(20));

        var givenUp = agent.Lines.Where(l => l.Contains("Gave up storing the scan of node node-under-test", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(givenUp);
        Assert.All(givenUp, l => Assert.Contains("22003", l, StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Lines, l => l.Contains("retrying in", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Database_outage_loses_no_scan_and_stores_each_exactly_once_in_order()
    {
        await using var server = await PostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync("outage");
        _tree.File("a.txt");
        await using var agent = AgentProcess.Start(Environment(connectionString + ";Timeout=2", ("Agent__ScanInterval", "00:00:01")), $"--urls=http://127.0.0.1:{AgentProcess.FreePort()}");
        await agent.WaitForLinesAsync("Successfully saved data", 2, Patience);

        await server.StopServerAsync();
        await agent.WaitForLinesAsync("Could not store scan", 3, Patience);
        _tree.File("added-during-outage.txt");
        await Task.Delay(TimeSpan.FromSeconds(3));
        await server.StartServerAsync();
        await agent.WaitForLinesAsync("reachable again", 1, Patience);
        // Let the spool drain and a few fresh scans land, then stop the agent.
        var stored = agent.CountLines("Successfully saved data");
        await agent.WaitForLinesAsync("Successfully saved data", stored + 2, Patience);
        Assert.Equal(0, await agent.TerminateAsync(TimeSpan.FromSeconds(20)));

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT collected_at FROM scans ORDER BY collected_at", connection);
        var times = new List<DateTime>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                times.Add(reader.GetDateTime(0));
            }
        }

        // Every scan the agent reported as saved is in the table once, and scans kept coming every second throughout.
        Assert.Equal(agent.CountLines("Successfully saved data"), times.Count);
        Assert.DoesNotContain(agent.Lines, l => l.Contains("dropped", StringComparison.Ordinal));
        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToList();
        Assert.True(gaps.Max() < TimeSpan.FromSeconds(2.5), $"a gap of {gaps.Max()} means scans were lost:\n{agent.Output}");
        Assert.True(times.Count >= 8, agent.Output);
    }
}
