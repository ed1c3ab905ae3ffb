using System.Net;
using System.Net.Sockets;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Agent;

/// <summary>What the agent says at start about its command line, its endpoints and its identity, and the migration-only mode.</summary>
public sealed class StartupTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    private Dictionary<string, string?> Environment(string? connectionString = "Host=127.0.0.1;Port=1;Database=x;Username=y", params (string Key, string? Value)[] more) =>
        AgentProcess.AgentEnvironment(connectionString, _tree.Root, more);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_lists_every_setting_with_its_default_and_exits_zero(string argument)
    {
        await using var agent = AgentProcess.Start(Environment(connectionString: null), argument);

        Assert.Equal(0, await agent.WaitForExitAsync(Patience));
        Assert.Contains(agent.Lines, l => l.Contains("Agent:MountPath", StringComparison.Ordinal) && l.Contains("/mnt/node-data", StringComparison.Ordinal));
        Assert.Contains(agent.Lines, l => l.Contains("Agent:Inventory:ScanInterval", StringComparison.Ordinal)
            && l.Contains("00:01:00", StringComparison.Ordinal) && l.Contains("formerly Agent:ScanInterval", StringComparison.Ordinal));
        Assert.Contains(agent.Lines, l => l.Contains("ConnectionStrings:monitordb", StringComparison.Ordinal));
        Assert.Contains(agent.Lines, l => l.Contains("Agent:MigrateOnly", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--Agent:RunOnce=true", "--help")]
    [InlineData("-h", "--Agent:RunOnce=true")]
    [InlineData("--colour=blue", "--help")]
    [InlineData("stray", "-h", "--version")]
    public async Task Help_wins_wherever_it_appears(params string[] arguments)
    {
        _tree.File("a.txt");

        await using var agent = AgentProcess.Start(Environment(null, ("Agent__RunOnce", "true")), arguments);

        Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
        Assert.Contains(agent.Lines, l => l.StartsWith("Usage: nodeagent", StringComparison.Ordinal));
        Assert.Contains(agent.Lines, l => l.Contains("Agent:MountPath", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Lines, l => l.StartsWith("nodeagent: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Version_prints_the_agent_version_and_exits_zero()
    {
        await using var agent = AgentProcess.Start(Environment(connectionString: null), "--version");

        Assert.Equal(0, await agent.WaitForExitAsync(Patience));
        Assert.StartsWith("nodeagent 0.1.0", Assert.Single(agent.Lines), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("stray", "unexpected argument 'stray'")]
    [InlineData("--Agent:Inventory:ScanIntervl=00:00:05", "unknown setting 'Agent:Inventory:ScanIntervl'")]
    [InlineData("--colour=blue", "unknown setting 'colour'")]
    [InlineData("--Agent:NodeName", "argument '--Agent:NodeName' has no value")]
    public async Task Unknown_arguments_are_refused_and_nothing_is_stored_even_when_run_once(string argument, string expected)
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");

        await using var agent = AgentProcess.Start(Environment(connectionString, ("Agent__RunOnce", "true")), argument);

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        var line = Assert.Single(agent.Lines);
        Assert.StartsWith("nodeagent: configuration error: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT to_regclass('scans') IS NULL", connection);
        Assert.Equal(true, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Known_settings_on_the_command_line_are_accepted_in_every_form()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");

        await using var agent = AgentProcess.Start(Environment(connectionString),
            "--Agent:RunOnce=true", "/Agent:ScanInterval", "00:05:00", "Agent:Inventory:SpoolCapacity=5", "--Logging:LogLevel:Default=Warning");

        Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
    }

    [Theory]
    [InlineData("urls", "bogus", "urls 'bogus': 'bogus' is not a URL")]
    [InlineData("HTTP_PORTS", "http", "HTTP_PORTS 'http': 'http' is not a TCP port")]
    public async Task Bad_endpoint_setting_is_one_line_naming_the_key_with_exit_2(string key, string value, string expected)
    {
        await using var agent = AgentProcess.Start(Environment(more: (key, value)));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        var line = Assert.Single(agent.Lines);
        Assert.StartsWith("nodeagent: configuration error: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Agent__Changes__Exclude", "/abs/**",
        "nodeagent: configuration error: Agent:Changes:Exclude: Path pattern '/abs/**' starts with '/': patterns are relative to the monitored directory; write 'abs/**'.")]
    [InlineData("Agent__Processes__Include", "gcc,[a-",
        "nodeagent: configuration error: Agent:Processes:Include: Path pattern '[a-' has a '[' without a closing ']'; write '[[]' to match a '[' itself.")]
    public async Task A_bad_path_pattern_is_one_line_naming_the_key_and_the_pattern_and_nothing_else(string key, string value, string expected)
    {
        await using var agent = AgentProcess.Start(Environment(more: (key, value)));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        Assert.Equal(expected, Assert.Single(agent.Lines));
    }

    [Fact]
    public async Task Port_in_use_is_one_line_naming_urls_with_exit_2_and_no_stack_trace()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        await using var agent = AgentProcess.Start(Environment(more: ("urls", $"http://127.0.0.1:{port}")));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        var line = Assert.Single(agent.Lines);
        Assert.StartsWith("nodeagent: configuration error: urls", line, StringComparison.Ordinal);
        Assert.Contains("address already in use", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Node_1")]
    [InlineData("node\u001bforged")]
    [InlineData("-node")]
    public async Task Node_name_that_Kubernetes_would_refuse_is_refused_naming_the_key(string nodeName)
    {
        await using var agent = AgentProcess.Start(Environment(more: ("Agent__NodeName", nodeName)));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        var line = Assert.Single(agent.Lines);
        Assert.Contains("Agent:NodeName", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', line);
    }

    [Fact]
    public async Task Node_name_longer_than_253_characters_is_refused()
    {
        await using var agent = AgentProcess.Start(Environment(more: ("Agent__NodeName", new string('a', 254))));

        Assert.Equal(2, await agent.WaitForExitAsync(Patience));
        Assert.Contains("at most 253 characters", Assert.Single(agent.Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mount_path_spelled_with_dots_is_stored_as_one_normalised_path()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("sub/a.txt");

        foreach (var spelling in new[] { _tree.Root + "/.", _tree.Root + "/sub/..", _tree.Root + "/" })
        {
            await using var agent = AgentProcess.Start(Environment(connectionString, ("Agent__RunOnce", "true"), ("Agent__MountPath", spelling)));
            Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT DISTINCT mountpath FROM file_monitor", connection);
        Assert.Equal(_tree.Root, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Migrate_only_creates_the_schema_and_exits_without_scanning()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.txt");

        await using var agent = AgentProcess.Start(Environment(connectionString, ("Agent__MigrateOnly", "true")));

        Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT (SELECT count(*) FROM node_monitor_migrations), (SELECT count(*) FROM scans)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.True(reader.GetInt64(0) > 0);
        Assert.Equal(0, reader.GetInt64(1));
    }

    [Fact]
    public async Task Agent_whose_role_may_only_read_and_insert_stores_into_a_migrated_schema()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        var role = $"agent_{Guid.NewGuid():N}"[..20];
        _tree.File("a.txt");
        await using (var migrate = AgentProcess.Start(Environment(connectionString, ("Agent__MigrateOnly", "true"))))
        {
            Assert.True(await migrate.WaitForExitAsync(Patience) == 0, migrate.Output);
        }

        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            // What the deploy guide grants the DaemonSet's role: no CREATE, no ownership.
            await using var grant = new NpgsqlCommand($"""
                CREATE ROLE {role} LOGIN;
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                GRANT CONNECT ON DATABASE "{database}" TO {role};
                GRANT USAGE ON SCHEMA public TO {role};
                GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
                """, connection);
            await grant.ExecuteNonQueryAsync();
        }

        var asAgent = new NpgsqlConnectionStringBuilder(connectionString) { Username = role }.ConnectionString;
        await using var agent = AgentProcess.Start(Environment(asAgent, ("Agent__RunOnce", "true")));

        Assert.True(await agent.WaitForExitAsync(Patience) == 0, agent.Output);
        await using var check = new NpgsqlConnection(connectionString);
        await check.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT filelist::text FROM file_monitor", check);
        Assert.Equal("[\"a.txt\"]", await command.ExecuteScalarAsync());
    }
}
