using System.Diagnostics;
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

        var gcc = await RunHeldAsync(agent, HeldProcess.Gcc(work, "-c", "-o", "main.o", "main.c"), expectedExit: 0);
        var exits = await RunHeldAsync(agent, HeldProcess.Python(work, "sys.exit(3)"), expectedExit: 3);
        var segfaults = await RunHeldAsync(agent, HeldProcess.Python(work, "import os; os.kill(os.getpid(), 11)"), expectedExit: 128 + 11);

        await using var database = NpgsqlDataSource.Create(connectionString);
        var rows = await EndedAsync(database, work, [gcc, exits, segfaults], agent);
        var all = string.Join("\n", rows);
        Assert.Equal(("compile", Path.Combine(work, "main.c"), (int?)0, (int?)null), Summary(rows.Single(r => r.Pid == gcc)));
        Assert.True(rows.Where(r => r.Kind == "compile").All(r => r.Sources.SequenceEqual([Path.Combine(work, "main.c")])), all);
        Assert.Equal(("run", "", (int?)3, (int?)null), Summary(rows.Single(r => r.Pid == exits)));
        Assert.Equal(("run", "", (int?)null, (int?)11), Summary(rows.Single(r => r.Pid == segfaults)));

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
        List<int> pids = [];
        for (var code = 1; code <= 5; code++)
        {
            pids.Add(await RunHeldAsync(agent, HeldProcess.Python(work, $"sys.exit({code})"), expectedExit: code));
        }

        await agent.WaitForLinesAsync("Could not store batch of process events", 1, Patience);
        await server.StartServerAsync();
        await using var database = NpgsqlDataSource.Create(connectionString);

        var rows = await EndedAsync(database, work, pids, agent);
        Assert.Equal([1, 2, 3, 4, 5], rows.Where(r => pids.Contains(r.Pid)).Select(r => r.Exit));
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
        var first = await RunHeldAsync(agent, HeldProcess.Python(before, "sys.exit(6)"), expectedExit: 6);
        Assert.Equal(6, (await EndedAsync(database, before, [first], agent)).Single(r => r.Pid == first).Exit);

        await database.RowsAsync("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        var after = _tree.Dir("after");
        var second = await RunHeldAsync(agent, HeldProcess.Python(after, "sys.exit(7)"), expectedExit: 7);

        Assert.Equal(7, (await EndedAsync(database, after, [second], agent)).Single(r => r.Pid == second).Exit);
    }

    [Fact]
    public async Task A_process_replaced_by_an_exec_from_a_thread_that_is_not_its_leader_ends_once_at_the_exec_without_exit_code()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__Enabled", "false"), HeldProcess.AgentEnvironment));
        await agent.WaitForLinesAsync("Recording process activity", 1, Patience);
        var work = _tree.Dir("s001/hw2");

        // The kernel ends the leader (exit code 0) before the exec under its pid: the same rule as a leader's own exec.
        // Other processes start and end meanwhile, as on a busy node: their events come between that exit and the exec.
        int replaced;
        using (var busy = Process.Start(new ProcessStartInfo("sh", ["-c", "while :; do /bin/true; done"]) { WorkingDirectory = "/" })!)
        {
            try
            {
                replaced = await RunHeldAsync(agent, HeldProcess.Python(work,
                    "import os, threading; threading.Thread(target=lambda: os.execv(sys.executable, [sys.executable, '-c', 'import sys; sys.exit(4)'])).start(); threading.Event().wait()"),
                    expectedExit: 4);
            }
            finally
            {
                busy.Kill(entireProcessTree: true);
                await busy.WaitForExitAsync();
            }
        }

        await using var database = NpgsqlDataSource.Create(connectionString);
        var deadline = DateTime.UtcNow + Patience;
        List<Stored> images;
        do
        {
            images = [.. (await EndedAsync(database, work, [replaced], agent)).Where(r => r.Pid == replaced)];
            if (images.Count >= 2)
            {
                break;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);

        await Task.Delay(500);
        images = [.. (await EndedAsync(database, work, [replaced], agent)).Where(r => r.Pid == replaced)];
        Assert.True(images.Count == 2, string.Join("\n", images));
        Assert.Equal(((int?)null, (int?)null), (images[0].Exit, images[0].Signal));
        Assert.Equal(((int?)4, (int?)null), (images[1].Exit, images[1].Signal));
    }

    private sealed record Stored(int Pid, string Kind, string Exe, string[] Sources, int? Exit, int? Signal)
    {
        public override string ToString() => $"{Pid} {Kind} {Exe} [{string.Join(' ', Sources)}] exit {Exit} signal {Signal}";
    }

    private static (string Kind, string Sources, int? Exit, int? Signal) Summary(Stored row) => (row.Kind, string.Join(' ', row.Sources), row.Exit, row.Signal);

    /// <summary>
    /// The ended processes stored for <paramref name="cwd"/>, in the order they started, once every one of
    /// <paramref name="pids"/> is among them (others may be there too: a python3 on PATH may be a shim that runs more).
    /// </summary>
    private static async Task<List<Stored>> EndedAsync(NpgsqlDataSource database, string cwd, IReadOnlyCollection<int> pids, AgentProcess agent)
    {
        var deadline = DateTime.UtcNow + Patience;
        List<Stored> rows = [];
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                rows = [.. (await database.RowsAsync(
                        "SELECT pid, kind, coalesce(exe, ''), source_files, exit_code, signal FROM process_events WHERE cwd = $1 AND ended_at IS NOT NULL ORDER BY started_at", cwd))
                    .Select(r => new Stored((int)r[0]!, (string)r[1]!, (string)r[2]!, (string[])r[3]!, (int?)r[4], (int?)r[5]))];
                if (pids.All(pid => rows.Any(r => r.Pid == pid)))
                {
                    return rows;
                }
            }
            catch (NpgsqlException)
            {
                // Not migrated (again) yet, or the server is still starting.
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"Processes {string.Join(", ", pids)} were not all stored ended for {cwd} within {Patience}; stored:\n{string.Join("\n", rows)}\n{agent.Output}");
    }

    /// <summary>Runs a held process to its end once the agent has read it; its pid.</summary>
    private static async Task<int> RunHeldAsync(AgentProcess agent, HeldProcess held, int expectedExit)
    {
        await using (held)
        {
            await held.WaitReadByAsync(agent, Patience);
            Assert.Equal(expectedExit, await held.ReleaseAsync(Patience));
            return held.Id;
        }
    }
}
