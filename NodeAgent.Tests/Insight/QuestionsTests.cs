using System.Text.Json;

namespace NodeAgent.Tests.Insight;

/// <summary>The staff's questions as SQL: each function and view answers from labelled events as documented.</summary>
public sealed class QuestionsTests
{
    private static readonly DateTimeOffset Day1 = new(2026, 11, 2, 0, 0, 0, TimeSpan.Zero);
    private const string Gcc = "/usr/bin/x86_64-linux-gnu-gcc-12";
    private const string Cc1 = "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1";

    private static async Task<InsightDatabase> ClassAsync()
    {
        var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        return db;
    }

    [Fact]
    public async Task Activity_counts_changes_builds_runs_and_failures_per_bucket_and_chosen_labels()
    {
        await using var db = await ClassAsync();
        var hw1 = "/mnt/node-data/cs101-0042/hw1";
        await db.FileEventAsync("cs101-0042/hw1/main.c", "create", Day1.AddHours(1), 10);
        await db.FileEventAsync("cs101-0042/hw1/main.c", "modify", Day1.AddHours(1.5), 20);
        await db.FileEventAsync("cs101-0007/hw1/main.c", "create", Day1.AddHours(2.5), 10);
        // A failing build: the driver (pid 10) and the compiler proper it started (pid 11) count as one build.
        var gcc = await db.ProcessAsync("compile", Gcc, hw1, Day1.AddHours(1.6), exitCode: 1, pid: 10, sources: [$"{hw1}/main.c"], duration: TimeSpan.FromSeconds(2));
        await db.ProcessAsync("compile", Cc1, hw1, Day1.AddHours(1.6).AddMilliseconds(10), exitCode: 1, pid: 11, parent: gcc, sources: [$"{hw1}/main.c"]);
        await db.ProcessAsync("compile", Gcc, hw1, Day1.AddHours(1.7), pid: 12, sources: [$"{hw1}/main.c"]);
        await db.ProcessAsync("run", $"{hw1}/a.out", hw1, Day1.AddHours(1.8), signal: 11, pid: 13);
        await db.ProcessAsync("run", $"{hw1}/a.out", hw1, Day1.AddHours(1.9), pid: 14);

        var perStudent = await db.RowsAsync(
            "SELECT bucket_start, labels::text, changes, builds, failed_builds, runs, failed_runs FROM activity($1, $2, '1 hour', '{\"course\": \"cs101\"}', '{student}')",
            Day1, Day1.AddDays(1));

        Assert.Equal(
            [
                [Day1.AddHours(1).UtcDateTime, """{"student": "0042"}""", 2L, 2L, 1L, 2L, 1L],
                [Day1.AddHours(2).UtcDateTime, """{"student": "0007"}""", 1L, 0L, 0L, 0L, 0L],
            ],
            perStudent);

        var whole = await db.RowsAsync("SELECT labels::text, sum(changes)::bigint FROM activity($1, $2, '1 day') GROUP BY 1", Day1, Day1.AddDays(1));
        Assert.Equal([["{}", 3L]], whole);
    }

    [Fact]
    public async Task Activity_is_the_same_from_the_hourly_and_daily_counts_as_from_the_events_and_follows_a_process_to_its_exit()
    {
        await using var db = await ClassAsync();
        var hw1 = "/mnt/node-data/cs101-0042/hw1";
        await db.FileEventAsync("cs101-0042/hw1/main.c", "create", Day1.AddHours(1), 10);
        await db.FileEventAsync("cs101-0042/hw1/main.c", "modify", Day1.AddHours(3.5), 20);
        var gcc = await db.ProcessAsync("compile", Gcc, hw1, Day1.AddHours(3.6), pid: 10, sources: [$"{hw1}/main.c"]);
        var run = await db.ProcessAsync("run", $"{hw1}/a.out", hw1, Day1.AddHours(3.7), pid: 11);
        // Stored running first, as the agent does, then completed by its exit: a segfault and a failed build.
        await db.ExecuteAsync("UPDATE process_events SET ended_at = NULL, exit_code = NULL, signal = NULL WHERE process_id = ANY($1)", new[] { gcc, run });
        const string Sql = "SELECT bucket_start, changes, builds, failed_builds, runs, failed_runs FROM activity($1, $2, '2 hours')";

        var running = await db.RowsAsync(Sql, Day1, Day1.AddDays(1));
        await db.ExecuteAsync("UPDATE process_events SET ended_at = started_at + interval '1 second', exit_code = 1 WHERE process_id = $1", gcc);
        await db.ExecuteAsync("UPDATE process_events SET ended_at = started_at + interval '1 second', signal = 11 WHERE process_id = $1", run);
        var fromHours = await db.RowsAsync(Sql, Day1, Day1.AddDays(1));
        var fromEvents = await db.RowsAsync(Sql, Day1, Day1.AddDays(1).AddMilliseconds(-1));

        Assert.Equal([[Day1.UtcDateTime, 1L, 0L, 0L, 0L, 0L], [Day1.AddHours(2).UtcDateTime, 1L, 1L, 0L, 1L, 0L]], running);
        Assert.Equal([[Day1.UtcDateTime, 1L, 0L, 0L, 0L, 0L], [Day1.AddHours(2).UtcDateTime, 1L, 1L, 1L, 1L, 1L]], fromHours);
        Assert.Equal(fromHours, fromEvents);

        // Whole UTC days: the daily counts, also after a template change relabels them.
        const string PerDay = "SELECT bucket_start, labels::text, changes, builds, failed_builds, runs, failed_runs FROM activity($1, $2, '1 day', '{}', $3)";
        Assert.Equal([[Day1.UtcDateTime, """{"course": "cs101"}""", 2L, 1L, 1L, 1L, 1L]], await db.RowsAsync(PerDay, Day1, Day1.AddDays(1), new[] { "course" }));
        Assert.Equal(await db.RowsAsync(PerDay, Day1, Day1.AddDays(1).AddMilliseconds(-1), new[] { "course" }), await db.RowsAsync(PerDay, Day1, Day1.AddDays(1), new[] { "course" }));
        await db.ExecuteAsync("UPDATE attribution_templates SET pattern = '{group}-{member}/{task}/**' WHERE name = 'workspace'");
        await db.RelabelAsync();
        Assert.Equal([[Day1.UtcDateTime, """{"group": "cs101"}""", 2L, 1L, 1L, 1L, 1L]], await db.RowsAsync(PerDay, Day1, Day1.AddDays(1), new[] { "group" }));
    }

    [Fact]
    public async Task Code_size_follows_each_file_through_modify_rename_and_delete_and_ignores_binaries()
    {
        await using var db = await ClassAsync();
        await db.FileEventAsync("cs101-0042/hw1/main.c", "create", Day1.AddHours(1), 100);
        await db.FileEventAsync("cs101-0042/hw1/a.out", "create", Day1.AddHours(1), 16000);
        await db.FileEventAsync("cs101-0042/hw1/util.c", "create", Day1.AddHours(2), 50);
        await db.FileEventAsync("cs101-0042/hw1/main.c", "modify", Day1.AddDays(1).AddHours(3), 300);
        await db.FileEventAsync("cs101-0042/hw1/helpers.c", "rename", Day1.AddDays(1).AddHours(4), 50, oldPath: "cs101-0042/hw1/util.c");
        await db.FileEventAsync("cs101-0042/hw1/main.c", "delete", Day1.AddDays(2).AddHours(5), 300);

        var rows = await db.RowsAsync(
            "SELECT bucket_end, files, bytes FROM code_size($1, $2, '1 day', '{\"student\": \"0042\"}') ORDER BY 1",
            Day1.AddDays(1), Day1.AddDays(4));

        Assert.Equal(
            [
                [Day1.AddDays(2).UtcDateTime, 2L, 350L],
                [Day1.AddDays(3).UtcDateTime, 1L, 50L],
                [Day1.AddDays(4).UtcDateTime, 1L, 50L],
            ],
            rows);
    }

    [Fact]
    public async Task Code_size_percentiles_per_assignment_spread_over_students_from_the_files_there_now()
    {
        await using var db = await ClassAsync();
        for (var s = 1; s <= 10; s++)
        {
            await db.FileStateAsync($"cs101-{s:0000}/hw1/main.c", s * 100);
            await db.FileStateAsync($"cs101-{s:0000}/hw1/a.out", 99_999);
        }

        await db.FileStateAsync("cs101-0001/hw2/main.c", 7);
        await db.FileStateAsync("cs101-0001/hw2", 4096, type: 'd');

        var rows = await db.RowsAsync("SELECT value, units, p50_bytes, p90_bytes, max_bytes FROM code_size_percentiles('{\"course\": \"cs101\"}')");

        Assert.Equal([["hw1", 10L, 550.0, 910.0, 1000L], ["hw2", 1L, 7.0, 7.0, 7L]], rows);
    }

    [Fact]
    public async Task Recently_active_orders_students_by_their_latest_change_build_or_run()
    {
        await using var db = await ClassAsync();
        await db.FileEventAsync("cs101-0001/hw1/main.c", "create", Day1.AddHours(1), 1);
        await db.FileEventAsync("cs101-0002/hw1/main.c", "create", Day1.AddHours(2), 1);
        await db.FileEventAsync("cs101-0003/hw1/main.c", "create", Day1.AddHours(3), 1);
        await db.FileEventAsync("cs101-0003/hw2/main.c", "create", Day1.AddHours(9), 1);
        await db.ProcessAsync("run", "/usr/bin/python3", "/mnt/node-data/cs101-0001/hw1", Day1.AddHours(4));

        var rows = await db.RowsAsync(
            "SELECT value, labels::text, last_active_at FROM recently_active('{\"assignment\": \"hw1\"}', 'student', 2)");

        Assert.Equal(
            [
                ["0001", """{"student": "0001", "assignment": "hw1"}""", Day1.AddHours(4).UtcDateTime],
                ["0003", """{"student": "0003", "assignment": "hw1"}""", Day1.AddHours(3).UtcDateTime],
            ],
            rows);
    }

    [Fact]
    public async Task Builds_and_runs_per_student_count_a_build_once_whatever_compilers_it_started()
    {
        await using var db = await ClassAsync();
        var hw1 = "/mnt/node-data/cs101-0042/hw1";
        for (var i = 0; i < 3; i++)
        {
            var at = Day1.AddHours(i);
            var gcc = await db.ProcessAsync("compile", Gcc, hw1, at, exitCode: i == 0 ? 1 : 0, pid: 100 + (10 * i), sources: [$"{hw1}/main.c"], duration: TimeSpan.FromSeconds(1));
            await db.ProcessAsync("compile", Cc1, hw1, at.AddMilliseconds(5), exitCode: i == 0 ? 1 : 0, pid: 101 + (10 * i), parent: gcc, sources: [$"{hw1}/main.c"]);
        }

        await db.ProcessAsync("run", $"{hw1}/a.out", hw1, Day1.AddHours(5), pid: 200);
        await db.ProcessAsync("run", "/usr/bin/python3", "/mnt/node-data/cs101-0007/hw1", Day1.AddHours(5), pid: 201, exitCode: 2);

        var rows = await db.RowsAsync("SELECT value, unit, builds, failed_builds, runs, failed_runs FROM builds_and_runs_per('{\"course\": \"cs101\"}')");
        Assert.Equal([["hw1", "0007", 0L, 0L, 1L, 1L], ["hw1", "0042", 3L, 1L, 1L, 0L]], rows);

        var average = await db.RowsAsync("SELECT value, avg(builds)::float8, avg(runs)::float8 FROM builds_and_runs_per() GROUP BY 1");
        Assert.Equal([["hw1", 1.5, 1.0]], average);
    }

    [Fact]
    public async Task Failing_builds_list_each_failed_build_once_with_its_sources_and_where_its_output_was_to_go()
    {
        await using var db = await ClassAsync();
        var hw1 = "/mnt/node-data/cs101-0042/hw1";
        var gcc = await db.ProcessAsync("compile", Gcc, hw1, Day1, exitCode: 1, pid: 10, sources: [$"{hw1}/main.c"],
            argv: ["gcc", "-Wall", "-o", "prog", "main.c"], duration: TimeSpan.FromSeconds(1));
        await db.ProcessAsync("compile", Cc1, hw1, Day1.AddMilliseconds(5), exitCode: 1, pid: 11, parent: gcc, sources: [$"{hw1}/main.c"]);
        await db.ProcessAsync("compile", Gcc, hw1, Day1.AddHours(1), signal: 9, pid: 12, sources: [$"{hw1}/util.c"], argv: ["gcc", "-c", "util.c"]);
        await db.ProcessAsync("compile", Gcc, hw1, Day1.AddHours(2), pid: 13, sources: [$"{hw1}/main.c"]);

        var rows = await db.RowsAsync(
            "SELECT p.pid, f.exit_code, f.signal, f.source_files, f.output_file, f.labels->>'student' FROM failing_builds f JOIN process_events p USING (process_id) ORDER BY f.started_at");

        Assert.Equal(
            [
                [10, 1, null, new[] { $"{hw1}/main.c" }, $"{hw1}/prog", "0042"],
                [12, null, 9, new[] { $"{hw1}/util.c" }, null, "0042"],
            ],
            rows);
    }

    [Fact]
    public async Task File_history_gives_every_version_with_its_content_across_a_rename()
    {
        await using var db = await ClassAsync();
        await db.FileEventAsync("cs101-0042/hw1/draft.c", "create", Day1, content: "v1"u8.ToArray());
        await db.FileEventAsync("cs101-0042/hw1/draft.c", "modify", Day1.AddMinutes(1), content: "v2"u8.ToArray());
        await db.FileEventAsync("cs101-0042/hw1/main.c", "rename", Day1.AddMinutes(2), content: "v2"u8.ToArray(), oldPath: "cs101-0042/hw1/draft.c");
        await db.FileEventAsync("cs101-0042/hw1/other.c", "create", Day1.AddMinutes(3), content: "x"u8.ToArray());

        var rows = await db.RowsAsync("SELECT event_type, path, convert_from(content, 'UTF8'), labels->>'assignment' FROM file_history('node-1', 'cs101-0042/hw1/draft.c')");

        Assert.Equal([["create", "cs101-0042/hw1/draft.c", "v1", "hw1"], ["modify", "cs101-0042/hw1/draft.c", "v2", "hw1"], ["rename", "cs101-0042/hw1/main.c", "v2", "hw1"]], rows);
    }

    [Fact]
    public async Task Current_files_give_a_nodes_live_inventory_and_the_files_of_a_label_set()
    {
        await using var db = await ClassAsync();
        await db.FileStateAsync("cs101-0042/hw1/main.c", 10, node: "node-1");
        await db.FileStateAsync("cs101-0007/hw1/main.c", 20, node: "node-2");
        await db.FileStateAsync("scratch.txt", 30, node: "node-1");

        Assert.Equal([["cs101-0042/hw1/main.c"], ["scratch.txt"]], await db.RowsAsync("SELECT path FROM current_files WHERE node_name = 'node-1' ORDER BY path"));
        Assert.Equal([["node-2", 20L]], await db.RowsAsync("SELECT node_name, size FROM current_files WHERE labels @> '{\"student\": \"0007\"}'"));
        var labels = JsonSerializer.Deserialize<Dictionary<string, string>>(await db.ScalarAsync<string>("SELECT labels::text FROM current_files WHERE path = 'cs101-0042/hw1/main.c'"));
        Assert.Equal("cs101", labels!["course"]);
    }
}
