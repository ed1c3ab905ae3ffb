using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Processes;

/// <summary>The real agent recording real processes into a real database.</summary>
public sealed class ProcessEventsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Compiles_and_runs_are_stored_with_sources_exit_codes_and_signals()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__Enabled", "false"), HeldProcess.AgentEnvironment));
        await agent.WaitForLinesAsync("Recording process activity", 1, Patience);
        var work = _tree.Dir("s001/hw1");
        _tree.File("s001/hw1/main.c", "int main(void) { return 0; }\n");

        await RunHeldAsync(agent, HeldProcess.Gcc(work, "-c", "-o", "main.o", "main.c"), expectedExit: 0);
        await RunHeldAsync(agent, HeldProcess.Python(work, "sys.exit(3)"), expectedExit: 3);
        await RunHeldAsync(agent, HeldProcess.Python(work, "import os; os.kill(os.getpid(), 11)"), expectedExit: 128 + 11);

        await using var database = NpgsqlDataSource.Create(connectionString);
        var deadline = DateTime.UtcNow + Patience;
        List<(string Kind, string Exe, string[] Sources, int? Exit, int? Signal, string Cwd)> rows = [];
        while (DateTime.UtcNow < deadline)
        {
            rows = [];
            try
            {
                await using var command = database.CreateCommand(
                    "SELECT kind, coalesce(exe, ''), source_files, exit_code, signal, cwd FROM process_events WHERE ended_at IS NOT NULL AND cwd = $1 ORDER BY started_at");
                command.Parameters.AddWithValue(work);
                await using var reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetFieldValue<string[]>(2),
                        reader.IsDBNull(3) ? null : reader.GetInt32(3), reader.IsDBNull(4) ? null : reader.GetInt32(4), reader.GetString(5)));
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // The agent records processes as soon as it subscribes; its first store creates the tables.
            }

            if (rows.Count(r => r.Exe.Contains("python", StringComparison.Ordinal)) >= 2 && rows.Any(r => r.Kind == "compile"))
            {
                break;
            }

            await Task.Delay(200);
        }

        var all = string.Join("\n", rows.Select(r => $"{r.Kind} {r.Exe} [{string.Join(' ', r.Sources)}] exit {r.Exit} signal {r.Signal}"));
        await using (var dump = database.CreateCommand("SELECT kind, exe, cwd, argv::text, exit_code, signal, ended_at IS NULL FROM process_events"))
        await using (var reader = await dump.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                all += $"\nrow: {reader.GetValue(0)} {reader.GetValue(1)} {reader.GetValue(2)} {reader.GetValue(3)} {reader.GetValue(4)} {reader.GetValue(5)} running={reader.GetValue(6)}";
            }
        }

        Assert.True(rows.Any(r => r.Kind == "compile" && r.Sources.Length > 0), all);
        var compile = rows.First(r => r.Kind == "compile" && r.Sources.Length > 0);
        Assert.True(rows.Where(r => r.Kind == "compile").All(r => r.Sources.SequenceEqual([Path.Combine(work, "main.c")])), all);
        Assert.Equal(0, compile.Exit);
        var pythons = rows.Where(r => r.Exe.Contains("python", StringComparison.Ordinal)).ToList();
        Assert.True(pythons.Count == 2, all);
        Assert.Equal((3, (int?)null), (pythons[0].Exit, pythons[0].Signal));
        Assert.Equal(((int?)null, 11), (pythons[1].Exit, pythons[1].Signal));
        Assert.All(pythons, p => Assert.Equal("run", p.Kind));

        // The views: the build is among the builds and runs of its directory, and it did not fail.
        await using var views = database.CreateCommand("SELECT (SELECT count(*) FROM builds_and_runs WHERE cwd = $1 AND kind = 'compile'), (SELECT count(*) FROM failing_builds WHERE cwd = $1)");
        views.Parameters.AddWithValue(work);
        await using var counts = await views.ExecuteReaderAsync();
        await counts.ReadAsync();
        Assert.True(counts.GetInt64(0) >= 1);
        Assert.Equal(0, counts.GetInt64(1));
    }

    [Fact]
    public async Task Where_the_connector_is_not_reachable_it_says_so_once_and_the_other_capabilities_go_on()
    {
        // The kernel sends process events only into the host's network namespace: an agent in a namespace of its
        // own (a pod without hostNetwork) cannot subscribe. It reaches PostgreSQL through the server's Unix socket.
        var server = await PostgresServer.Shared;
        var connectionString = server.UnixSocketConnectionString(await server.CreateDatabaseAsync());
        _tree.File("a.c", "a");
        await using var agent = AgentProcess.StartWrapped(null, ["unshare", "-n"], AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://0.0.0.0:{AgentProcess.FreePort()}")));

        await agent.WaitForLinesAsync("Process activity is not recorded", 1, Patience);
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);
        Assert.Equal(1, agent.CountLines("Process activity is not recorded"));
        var line = agent.Lines.Single(l => l.Contains("Process activity is not recorded", StringComparison.Ordinal));
        Assert.Contains("Connection refused", line, StringComparison.Ordinal);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task Processes_that_run_during_a_database_outage_are_stored_once_when_it_returns()
    {
        await using var server = await PostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync("outage") + ";Timeout=2";
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__Enabled", "false"), HeldProcess.AgentEnvironment));
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);
        var work = _tree.Dir("outage");

        await server.StopServerAsync();
        for (var code = 1; code <= 5; code++)
        {
            await RunHeldAsync(agent, HeldProcess.Python(work, $"sys.exit({code})"), expectedExit: code);
        }

        await agent.WaitForLinesAsync("Could not store batch of process events", 1, Patience);
        await server.StartServerAsync();
        await using var database = NpgsqlDataSource.Create(connectionString);
        var deadline = DateTime.UtcNow + Patience;
        List<int> codes = [];
        while (DateTime.UtcNow < deadline)
        {
            codes = [];
            try
            {
                await using var command = database.CreateCommand("SELECT exit_code FROM process_events WHERE cwd = $1 AND kind = 'run' AND ended_at IS NOT NULL ORDER BY started_at");
                command.Parameters.AddWithValue(work);
                await using var reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    codes.Add(reader.GetInt32(0));
                }
            }
            catch (NpgsqlException)
            {
                // The server is still starting.
            }

            if (codes.Count >= 5)
            {
                break;
            }

            await Task.Delay(200);
        }

        Assert.Equal([1, 2, 3, 4, 5], codes);
    }

    [Fact]
    public async Task A_database_emptied_under_the_running_agent_gets_its_schema_back_from_the_next_process_batch()
    {
        // Only the process store writes here (no file changes, the next scan an hour away): it must migrate again
        // itself when it finds its table gone, not wait for another capability to do it.
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__Enabled", "false"),
            ("Agent__Inventory__ScanInterval", "01:00:00"), HeldProcess.AgentEnvironment));
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);
        await using var database = NpgsqlDataSource.Create(connectionString);
        var before = _tree.Dir("before");
        await RunHeldAsync(agent, HeldProcess.Python(before, "sys.exit(6)"), expectedExit: 6);
        Assert.Equal([6], await StoredExitCodesAsync(database, before, agent));

        await database.RowsAsync("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        var after = _tree.Dir("after");
        await RunHeldAsync(agent, HeldProcess.Python(after, "sys.exit(7)"), expectedExit: 7);

        Assert.Equal([7], await StoredExitCodesAsync(database, after, agent));
    }

    /// <summary>The exit codes of the ended processes stored for <paramref name="cwd"/>, once there are any.</summary>
    private static async Task<List<int>> StoredExitCodesAsync(NpgsqlDataSource database, string cwd, AgentProcess agent)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var rows = await database.RowsAsync("SELECT exit_code FROM process_events WHERE cwd = $1 AND ended_at IS NOT NULL ORDER BY started_at", cwd);
                if (rows.Count > 0)
                {
                    return [.. rows.Select(r => (int)r[0]!)];
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // Not migrated (again) yet.
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"No ended process stored for {cwd} within {Patience}:\n{agent.Output}");
    }

    private static async Task RunHeldAsync(AgentProcess agent, HeldProcess held, int expectedExit)
    {
        await using (held)
        {
            await held.WaitReadByAsync(agent, Patience);
            Assert.Equal(expectedExit, await held.ReleaseAsync(Patience));
        }
    }
}
