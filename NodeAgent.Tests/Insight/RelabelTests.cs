using Npgsql;

namespace NodeAgent.Tests.Insight;

/// <summary>
/// Writing a template never holds the agents' stores, and the relabel that follows it, in short steps, leaves every
/// subject with the labels of its first matching template and the daily counts under those labels.
/// </summary>
public sealed class RelabelTests
{
    private const string Workspace = "{course}-{student}/{assignment}/**";
    private const string PerFile = "{course}-{student}/{assignment}/{file}";

    [Fact]
    public async Task Writing_a_template_does_not_hold_file_event_or_process_event_inserts()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", Workspace);
        await SubjectsAsync(db, 5000);

        // An operator's transaction that wrote a template and is still open, then a relabel step still open.
        await using var writer = await db.DataSource.OpenConnectionAsync();
        await Execute(writer, "BEGIN");
        await using (var begin = new NpgsqlCommand(
            "INSERT INTO attribution_templates (name, applies_to, pattern, priority) VALUES ('per-file', 'path', $1, 10)", writer))
        {
            begin.Parameters.AddWithValue(PerFile);
            await begin.ExecuteNonQueryAsync();
        }

        await StoreAsAnAgentAsync(db, "while the template's transaction is open");
        await Execute(writer, "COMMIT");

        await Execute(writer, "BEGIN");
        string phase;
        do
        {
            phase = await Scalar<string>(writer, "SELECT attribution_relabel_step(1000)");
        }
        while (phase != "counting");

        await Execute(writer, "SELECT attribution_relabel_step(1000)");
        await StoreAsAnAgentAsync(db, "while a relabel step's transaction is open");
        await Execute(writer, "COMMIT");
    }

    [Fact]
    public async Task After_the_relabel_every_subject_carries_the_labels_of_its_first_matching_template()
    {
        await using var db = await InsightDatabase.CreateAsync();
        await db.TemplateAsync("workspace", "path", Workspace);
        await db.TemplateAsync("jcode", "hostname", "jcode-{subject}-{course}-{student}", priority: 20);
        await SubjectsAsync(db, 3000);

        // A store that labelled a new path under the old templates, and commits only after they have changed.
        await using var store = await db.DataSource.OpenConnectionAsync();
        await Execute(store, "BEGIN");
        await Execute(store, """
            INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
            VALUES (gen_random_uuid(), 'node-9', '/mnt/node-data', 'cs103-0777/hw2/late.c', 'create', 'f', now(), 1, 'watch')
            """);
        await db.TemplateAsync("per-file", "path", PerFile, priority: 10);
        await db.ExecuteAsync("DELETE FROM attribution_templates WHERE name = 'jcode'");

        var relabel = db.RelabelAsync();
        await Task.Delay(300);
        Assert.False(relabel.IsCompleted, "the relabel waits for the store that labelled under the old templates");
        await Execute(store, "COMMIT");
        // Subjects that arrive while it runs.
        await db.FileEventAsync("cs104-0001/hw9/new.c", "create", DateTimeOffset.UtcNow);
        await db.ProcessAsync("compile", "/usr/bin/gcc", "/workspace/cs101-0001/hw1", DateTimeOffset.UtcNow, hostname: "jcode-c-cs101-0001");
        await relabel;

        Assert.Equal(0L, await db.ScalarAsync<long>("""
            SELECT count(*) FROM attributions s LEFT JOIN LATERAL attribution_of(s.subject_kind, s.subject) a ON true
             WHERE s.template IS DISTINCT FROM a.template OR s.labels <> coalesce(a.labels, '{}')
            """));
        Assert.Equal("per-file", await db.ScalarAsync<string>("SELECT template FROM attributions WHERE subject = 'cs103-0777/hw2/late.c'"));
        Assert.Empty(await db.RowsAsync("""
            SELECT labels::text, day, hourly.changes, daily.changes, hourly.builds, daily.builds
              FROM (SELECT a.labels, date_trunc('day', h.hour, 'UTC') AS day, sum(h.changes) AS changes, sum(h.builds) AS builds
                      FROM activity_hourly h JOIN attributions a USING (subject_kind, subject) GROUP BY 1, 2) AS hourly
              FULL JOIN (SELECT labels, day, sum(changes) AS changes, sum(builds) AS builds FROM activity_daily GROUP BY 1, 2) AS daily
                   USING (labels, day)
             WHERE hourly.changes IS DISTINCT FROM daily.changes OR hourly.builds IS DISTINCT FROM daily.builds
            """));
        Assert.Equal(["idle", 0L], Assert.Single(await db.RowsAsync("SELECT phase, pending_changes FROM attribution_relabel_status")));
    }

    /// <summary>Known paths, a new path and a process, as the agents store them, refused if they wait for a lock.</summary>
    private static async Task StoreAsAnAgentAsync(InsightDatabase db, string when)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await Execute(connection, "SET lock_timeout = '2s'");
        try
        {
            await Execute(connection, """
                BEGIN;
                INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
                SELECT gen_random_uuid(), 'node-1', '/mnt/node-data', format('cs%s-%s/hw%s/f%s.c', 101 + n % 4, lpad((n / 40)::text, 4, '0'), n % 10, n),
                       'modify', 'f', now(), 100, 'watch'
                  FROM generate_series(1, 20) n;
                COMMIT;
                BEGIN;
                INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
                VALUES (gen_random_uuid(), 'node-1', '/mnt/node-data', 'cs102-9999/hw1/brand-new.c', 'create', 'f', now(), 1, 'watch');
                INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, hostname, kind, started_at, ended_at, exit_code, mount_path)
                VALUES (gen_random_uuid(), 'node-1', 7, '/usr/bin/gcc', ARRAY['gcc'], '/workspace/cs101-0001/hw1', 'jcode-c-cs101-0001',
                        'compile', now(), now(), 0, '/mnt/node-data');
                COMMIT;
                """);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            Assert.Fail($"a store waited for a lock {when}: {e.MessageText}");
        }
    }

    /// <summary>Subjects with history: nine in ten file paths of students, one in ten processes in jcode containers.</summary>
    private static async Task SubjectsAsync(InsightDatabase db, int subjects)
    {
        await db.ExecuteAsync(
        """
        INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
        SELECT gen_random_uuid(), 'node-' || (n % 8), '/mnt/node-data',
               format('cs%s-%s/hw%s/f%s.c', 101 + n % 4, lpad((n / 40)::text, 4, '0'), n % 10, n),
               'modify', 'f', now() - (n % 240) * interval '1 hour', 100, 'watch'
          FROM generate_series(1, $1 * 9 / 10) n
        """, subjects);
        await db.ExecuteAsync(
        """
        INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, hostname, kind, started_at, ended_at, exit_code, mount_path)
        SELECT gen_random_uuid(), 'node-' || (n % 8), n, '/usr/bin/gcc', ARRAY['gcc', 'main.c'],
               format('/workspace/cs101-%s/hw%s/d%s', lpad((n / 40)::text, 4, '0'), n % 10, n),
               format('jcode-c-cs101-%s', lpad((n / 40)::text, 4, '0')), 'compile', now() - (n % 240) * interval '1 hour',
               now() - (n % 240) * interval '1 hour' + interval '1 second', n % 3, '/mnt/node-data'
          FROM generate_series(1, $1 - $1 * 9 / 10) n
        """, subjects);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> Scalar<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
