using System.Text.Json;
using Npgsql;

namespace NodeAgent.Tests.Insight;

/// <summary>Templates in the database turn paths and container hostnames into text labels, for history too.</summary>
public sealed class AttributionTests
{
    private static readonly DateTimeOffset Monday = new(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_path_template_labels_file_events_with_text_that_keeps_leading_zeros()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");

        await db.FileEventAsync("cs101-0042/hw3/src/main.c", "create", Monday, 10);
        await db.FileEventAsync("cs101-0042/hw3", "create", Monday, 0);

        var labels = await LabelsAsync(db, "SELECT labels FROM labelled_file_events ORDER BY path");
        Assert.All(labels, l => Assert.Equal(new Dictionary<string, string> { ["course"] = "cs101", ["student"] = "0042", ["assignment"] = "hw3" }, l));
    }

    [Fact]
    public async Task A_path_that_matches_no_template_keeps_empty_labels_and_its_raw_path()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");

        await db.FileEventAsync("README.md", "create", Monday, 5);

        var rows = await db.RowsAsync("SELECT path, labels::text, template FROM labelled_file_events");
        Assert.Equal(["README.md", "{}", null], Assert.Single(rows));
    }

    [Fact]
    public async Task Changing_a_template_relabels_the_history_already_stored()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        await db.FileEventAsync("cs101-0042/hw3/main.c", "create", Monday, 10);
        await db.ProcessAsync("compile", "/usr/bin/gcc", "/mnt/node-data/cs101-0042/hw3", Monday, sources: ["/mnt/node-data/cs101-0042/hw3/main.c"]);

        await db.ExecuteAsync("UPDATE attribution_templates SET pattern = '{group}-{member}/{task}/**' WHERE name = 'workspace'");
        await db.RelabelAsync();

        var expected = new Dictionary<string, string> { ["group"] = "cs101", ["member"] = "0042", ["task"] = "hw3" };
        Assert.Equal(expected, Assert.Single(await LabelsAsync(db, "SELECT labels FROM labelled_file_events")));
        Assert.Equal(expected, Assert.Single(await LabelsAsync(db, "SELECT labels FROM builds_and_runs")));

        await db.ExecuteAsync("DELETE FROM attribution_templates");
        await db.RelabelAsync();
        Assert.Empty(Assert.Single(await LabelsAsync(db, "SELECT labels FROM labelled_file_events")));
    }

    [Fact]
    public async Task A_process_is_labelled_by_its_source_below_the_mount_and_by_its_containers_hostname()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        await db.TemplateAsync("in-container", "path", "/workspace/{course}-{student}/{assignment}/**");
        await db.TemplateAsync("jcode", "hostname", "jcode-{subject}-{course}-{student}");

        // On the host, below the monitored directory: the first source file decides, relative to the mount.
        await db.ProcessAsync("compile", "/usr/bin/gcc", "/tmp", Monday, pid: 1, sources: ["/mnt/node-data/cs101-0042/hw3/main.c"]);
        // In a container: the hostname gives subject, course and student, its working directory the assignment.
        await db.ProcessAsync("run", "/workspace/cs102-0007/hw1/a.out", "/workspace/cs102-0007/hw1", Monday, pid: 2, hostname: "jcode-c-cs102-0007");
        // The hostname wins where both name a label.
        await db.ProcessAsync("run", "/usr/bin/python3", "/workspace/cs102-0007/hw2", Monday, pid: 3, hostname: "jcode-py-ds201-0099");
        // Neither matches.
        await db.ProcessAsync("run", "/usr/bin/python3", "/root", Monday, pid: 4, hostname: "build-runner");

        var labels = await LabelsAsync(db, "SELECT labels FROM labelled_process_events ORDER BY pid");
        Assert.Equal(new Dictionary<string, string> { ["course"] = "cs101", ["student"] = "0042", ["assignment"] = "hw3" }, labels[0]);
        Assert.Equal(new Dictionary<string, string> { ["subject"] = "c", ["course"] = "cs102", ["student"] = "0007", ["assignment"] = "hw1" }, labels[1]);
        Assert.Equal(new Dictionary<string, string> { ["subject"] = "py", ["course"] = "ds201", ["student"] = "0099", ["assignment"] = "hw2" }, labels[2]);
        Assert.Empty(labels[3]);
    }

    [Fact]
    public async Task Labels_take_the_shortest_values_that_let_the_rest_of_the_template_match()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("jcode", "hostname", "jcode-{subject}-{course}-{student}");
        await db.ProcessAsync("run", "/usr/bin/python3", "/", Monday, hostname: "jcode-py-ds201-team-7");

        Assert.Equal(new Dictionary<string, string> { ["subject"] = "py", ["course"] = "ds201", ["student"] = "team-7" },
            Assert.Single(await LabelsAsync(db, "SELECT labels FROM labelled_process_events")));
    }

    [Fact]
    public async Task The_first_matching_template_by_priority_gives_the_labels()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("generic", "path", "{owner}/**", priority: 200);
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**", priority: 10);
        await db.FileEventAsync("cs101-0042/hw3/main.c", "create", Monday, 1);
        await db.FileEventAsync("shared/notes.txt", "create", Monday, 1);

        var rows = await db.RowsAsync("SELECT path, template FROM labelled_file_events ORDER BY path");
        Assert.Equal([["cs101-0042/hw3/main.c", "workspace"], ["shared/notes.txt", "generic"]], rows);
    }

    [Theory]
    [InlineData("{course}/{course}/**", "label \"course\" appears twice")]
    [InlineData("{course/**", "is not closed")]
    [InlineData("course}/**", "has no \"{\"")]
    [InlineData("{1st}/**", "must be letters, digits and _")]
    [InlineData("shared/**", "names no label")]
    public async Task A_bad_template_is_refused_with_a_message_that_says_what_is_wrong(string pattern, string message)
    {
        await using var db = await InsightDatabase.CreateAsync();

        var error = await Assert.ThrowsAsync<PostgresException>(() => db.TemplateAsync("bad", "path", pattern));

        Assert.Contains(message, error.MessageText, StringComparison.Ordinal);
        Assert.Contains(pattern, error.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Literal_characters_of_a_template_are_not_regular_expression_syntax()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("dotted", "path", "{course}.v2/{student}/**");
        await db.FileEventAsync("cs101.v2/0042/main.c", "create", Monday, 1);
        await db.FileEventAsync("cs101xv2/0043/main.c", "create", Monday, 1);

        var rows = await db.RowsAsync("SELECT path, template FROM labelled_file_events ORDER BY path");
        Assert.Equal([["cs101.v2/0042/main.c", "dotted"], ["cs101xv2/0043/main.c", null]], rows);
    }

    [Fact]
    public async Task Snapshots_carry_the_labels_of_their_file()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", "{course}-{student}/{assignment}/**");
        await db.FileEventAsync("cs101-0042/hw3/main.c", "create", Monday, content: "int main;"u8.ToArray());

        var row = Assert.Single(await db.RowsAsync("SELECT content, labels->>'student' FROM file_versions"));
        Assert.Equal("int main;"u8.ToArray(), row[0]);
        Assert.Equal("0042", row[1]);
    }

    private static async Task<List<Dictionary<string, string>>> LabelsAsync(InsightDatabase db, string sql) =>
        [.. (await db.RowsAsync(sql)).Select(r => JsonSerializer.Deserialize<Dictionary<string, string>>((string)r[0]!)!)];
}
