using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Insight;

/// <summary>The real agent's files and processes reach the staff's views with their labels.</summary>
public sealed class LabelledAgentTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task A_students_saved_file_and_build_are_labelled_from_the_template_of_their_directory()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(db.ConnectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Changes__QuietWindow", "00:00:00.05"),
            ("Agent__Changes__SnapshotInclude", "*.c"), HeldProcess.AgentEnvironment));
        await agent.WaitForLinesAsync("Recording process activity", 1, Patience);
        await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);

        var work = _tree.Dir("cs101-0042/hw1");
        _tree.File("cs101-0042/hw1/main.c", "int main(void) { return 0; }\n");
        await WaitForAsync(db, "SELECT count(*) FROM current_files WHERE path = 'cs101-0042/hw1/main.c' AND labels->>'student' = '0042'");
        await using (var gcc = HeldProcess.Gcc(work, "-o", "prog", "main.c"))
        {
            await gcc.WaitReadByAsync(agent, Patience);
            Assert.Equal(0, await gcc.ReleaseAsync(Patience));
        }

        await WaitForAsync(db, "SELECT count(*) FROM builds_and_runs WHERE kind = 'compile' AND ended_at IS NOT NULL AND labels @> '{\"course\": \"cs101\", \"student\": \"0042\", \"assignment\": \"hw1\"}'");
        await WaitForAsync(db, "SELECT count(*) FROM file_versions WHERE has_content AND labels->>'assignment' = 'hw1'");
        var builds = await db.RowsAsync("SELECT unit, builds, failed_builds FROM builds_and_runs_per('{\"course\": \"cs101\"}')");
        Assert.Equal([["0042", 1L, 0L]], builds);
    }

    [Fact]
    public async Task A_template_written_while_agents_run_relabels_what_they_stored()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        _tree.File("cs101-0042/hw1/main.c", "int main(void) { return 0; }\n");
        await using var agent = AgentProcess.Start(AgentProcess.AgentEnvironment(db.ConnectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{AgentProcess.FreePort()}"), ("Agent__Processes__Enabled", "false"),
            ("Agent__Insight__RelabelInterval", "00:00:00.2")));
        await WaitForAsync(db, "SELECT count(*) FROM current_files WHERE path = 'cs101-0042/hw1/main.c' AND labels->>'student' = '0042'");

        await db.ExecuteAsync("UPDATE attribution_templates SET pattern = '{group}-{member}/{task}/**' WHERE name = 'workspace'");

        await WaitForAsync(db, "SELECT count(*) FROM current_files WHERE path = 'cs101-0042/hw1/main.c' AND labels = '{\"group\": \"cs101\", \"member\": \"0042\", \"task\": \"hw1\"}'");
        await WaitForAsync(db, "SELECT count(*) FROM attribution_relabel_status WHERE phase = 'idle' AND pending_changes = 0");
    }

    private static async Task WaitForAsync(InsightDatabase db, string countSql)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (await db.ScalarAsync<long>(countSql) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"never true: {countSql}");
            await Task.Delay(100);
        }
    }
}
