using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>File events reach the database exactly once, across an outage and across a restart of the agent.</summary>
public sealed class DeliveryTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Events_seen_during_a_database_outage_are_stored_once_when_it_returns()
    {
        await using var server = await PostgresServer.StartAsync();
        await using var watched = await WatchedTree.StartAsync(_tree, server, runAs: null);
        _tree.File("before.c", "0");
        await watched.WaitForEventsAsync(e => e.Any(x => x.Path == "before.c"));

        await server.StopServerAsync();
        for (var i = 0; i < 50; i++)
        {
            _tree.File($"during/{i:D2}.c", $"{i}");
        }

        _tree.File("before.c", "changed during the outage");
        await watched.Agent!.WaitForLinesAsync("Could not store batch of file events", 2, WatchedTree.Patience);
        await server.StartServerAsync();
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        await watched.SettleAsync();

        var events = await watched.EventsAsync();
        Assert.All(events.GroupBy(e => (e.Type, e.Path)), g => Assert.Single(g));
        Assert.Equal(50, events.Count(e => e.Type == "create" && e.Path.StartsWith("during/", StringComparison.Ordinal) && e.Source == "watch"));
        Assert.Single(events, e => e.Type == "modify" && e.Path == "before.c");
        // The contents kept while it waited are the ones stored when it returned (each is the content of its hash).
        Assert.Equal([[51L, 0L]], await watched.Database.RowsAsync(
            "SELECT count(*), count(*) FILTER (WHERE sha256 <> sha256(content)) FROM file_contents"));
    }

    [Fact]
    public async Task Outage_longer_than_the_spool_holds_folds_changes_per_path_and_loses_none()
    {
        await using var server = await PostgresServer.StartAsync();
        await using var watched = await WatchedTree.StartAsync(_tree, server, runAs: null, ("Agent__Changes__SpoolMaxBytes", "1048576"));

        await server.StopServerAsync();
        var content = new string('c', 1500);
        for (var i = 0; i < 3000; i++)
        {
            _tree.File($"many/{i / 300}/{i:D4}.c", content + i);
        }

        // Written again: while the spool is full these wait as paths, and the two writes become one create.
        for (var i = 0; i < 3000; i++)
        {
            _tree.File($"many/{i / 300}/{i:D4}.c", content + i + " again");
        }

        await watched.Agent!.WaitForLinesAsync("Could not store batch of file events", 2, WatchedTree.Patience);
        await server.StartServerAsync();
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        await watched.SettleAsync();

        var events = await watched.EventsAsync();
        Assert.True(3000 == events.Count(e => e.Type == "create" && e.EntryType == "f"),
            string.Join("\n", events.GroupBy(e => (e.Type, e.Source, e.EntryType)).Select(g => $"{g.Key} {g.Count()}")) + "\n" + string.Join("\n", watched.Agent!.Lines.Where(l => !l.Contains("dbug"))));
        Assert.Equal(events.Count(e => e.EntryType == "f"), events.Where(e => e.EntryType == "f").Select(e => e.Path).Distinct().Count() + events.Count(e => e.Type == "modify"));
        Assert.DoesNotContain(watched.Agent.Lines, l => l.Contains("dropped", StringComparison.Ordinal));
        Assert.True(events.Count(e => e.Type == "modify") < 3000, "the second writes of paths still waiting were folded into their create");
    }

    [Fact]
    public async Task Agent_killed_in_the_middle_of_a_burst_resumes_from_the_stored_state_and_stores_each_change_once()
    {
        await using var watched = await WatchedTree.StartAsync(_tree);
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 2000; i++)
            {
                _tree.File($"burst/{i / 500}/{i:D4}.py", $"print({i})");
                if (i % 100 == 0)
                {
                    await Task.Delay(10);
                }
            }
        });

        await watched.WaitForEventsAsync(e => e.Count(x => x.Path.StartsWith("burst/", StringComparison.Ordinal)) > 200);
        await watched.KillAgentAsync();
        await writer;
        // The rest of the burst happens while the agent is down.
        for (var i = 2000; i < 4000; i++)
        {
            _tree.File($"burst/{i / 500}/{i:D4}.py", $"print({i})");
        }

        await watched.StartAgentAsync();
        await watched.WaitUntilStoredStateEqualsDiskAsync();
        await watched.SettleAsync();

        var creates = (await watched.EventsAsync()).Where(e => e.Type == "create").ToList();
        Assert.Equal(4000 + 1 + 8, creates.Count);
        Assert.Equal(creates.Count, creates.Select(e => e.Path).Distinct().Count());
        // Some were seen by the watch before the kill, the rest by the scan at the restart.
        Assert.Contains(creates, e => e.Source == "watch");
        Assert.Contains(creates, e => e.Source == "scan");
    }

    [Fact]
    public async Task Disabled_changes_leave_the_inventory_working()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("a.c", "a");
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("Agent__Changes__Enabled", "false"), ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}")));
        await agent.WaitForLinesAsync("Successfully saved data", 1, WatchedTree.Patience);
        _tree.File("b.c", "b");
        await agent.WaitForLinesAsync("Successfully saved data", 1, TimeSpan.FromSeconds(2)).ContinueWith(_ => { });

        Assert.DoesNotContain(agent.Lines, l => l.Contains("Watching", StringComparison.Ordinal));
        await using var database = Npgsql.NpgsqlDataSource.Create(connectionString);
        await using var command = database.CreateCommand("SELECT count(*) FROM file_events");
        Assert.Equal(0L, await command.ExecuteScalarAsync());
    }
}
