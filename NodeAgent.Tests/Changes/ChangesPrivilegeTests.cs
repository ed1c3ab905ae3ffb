using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Changes;

/// <summary>
/// In Kubernetes a Job migrates as the database's owner and the agents run with a role granted only SELECT and INSERT
/// (the CloudNativePG values' statements): the current state of file changes is also updated and deleted, which the
/// migrations grant to such a role for the node it writes for (<see cref="Shared.AgentRolePrivilegeTests"/>: what it may not).
/// </summary>
public sealed class ChangesPrivilegeTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Agent_role_of_the_helm_values_can_keep_the_current_state_after_the_owner_migrates()
    {
        await using var database = await HelmRoleDatabase.CreateAsync("privileges");
        await using (var migrate = AgentProcess.Start(AgentProcess.AgentEnvironment(database.As(database.Owner), _tree.Root, ("Agent__MigrateOnly", "true"))))
        {
            Assert.Equal(0, await migrate.WaitForExitAsync(WatchedTree.Patience));
        }

        _tree.File("a.c", "one");
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(database.As(database.AgentRole), _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__QuietWindow", "00:00:00.05")));
        var check = database.Admin;
        await WaitForAsync(check, "SELECT count(*) FROM file_state WHERE path = 'a.c' AND size = 3");
        _tree.File("a.c", "changed");
        await WaitForAsync(check, "SELECT count(*) FROM file_state WHERE path = 'a.c' AND size = 7");
        File.Delete(Path.Combine(_tree.Root, "a.c"));
        await WaitForAsync(check, "SELECT count(*) FROM file_events WHERE path = 'a.c' AND event_type = 'delete'");
        await WaitForAsync(check, "SELECT 1 - count(*) FROM file_state WHERE path = 'a.c'");
        Assert.DoesNotContain(agent.Lines, l => l.Contains("permission denied", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Waits until <paramref name="sql"/> returns 1.</summary>
    private static async Task WaitForAsync(NpgsqlDataSource dataSource, string sql)
    {
        var deadline = DateTime.UtcNow + WatchedTree.Patience;
        while (DateTime.UtcNow < deadline)
        {
            await using var command = dataSource.CreateCommand(sql);
            if (Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) == 1)
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"never true: {sql}");
    }
}
