-- The questions teaching staff ask, answered from the stored events with their labels (0004). Every function takes
-- a label filter as jsonb ('{"course": "cs101"}' keeps the subjects whose labels contain it; '{}' keeps all,
-- including subjects no template matched) and, where rows are grouped, the label names to group by (per). Times are
-- timestamptz (UTC as stored); buckets start at `since`. At most four labels are grouped by.

-- The files that count as code for code size: sources and build files by name (a build's binaries do not).
CREATE FUNCTION code_file_pattern() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT '(\.(c|h|cc|cpp|cxx|hpp|hh|py|java|kt|scala|cs|js|ts|go|rs|rb|php|sh|s|S|asm|ml|hs|sql|r|R|jl|m|swift|lua|pl)|(^|/)(Makefile|makefile|CMakeLists\.txt|Dockerfile))$'
$$;

-- The chosen labels of a label set ('{}' when none is chosen), for grouping; at most four are chosen. One expression,
-- as volatile as jsonb_build_object (stable), so that it is inlined where it is used rather than called per row.
CREATE FUNCTION labels_pick(labels jsonb, per text[]) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(coalesce(per[1], ''), labels -> per[1], coalesce(per[2], ''), labels -> per[2],
                                                coalesce(per[3], ''), labels -> per[3], coalesce(per[4], ''), labels -> per[4]))
$$;
CREATE INDEX process_events_failed_builds ON process_events (started_at)
    WHERE is_build AND ended_at IS NOT NULL AND (exit_code <> 0 OR signal IS NOT NULL);

-- Activity per subject and hour, kept up to date as events are stored, so that a week or a month of activity is
-- summed from one row per subject and hour instead of one per event. Written by triggers with the owner's rights
-- (the agents' role is granted nothing here); rows are added in key order so concurrent agents cannot deadlock.
-- A process counts in the hour it started: inserted running, its exit later moves it from the running to the failed
-- or succeeded counts. Deleting old events leaves this table alone (see README for retention).
CREATE TABLE activity_hourly (
    subject_kind  text        NOT NULL CHECK (subject_kind IN ('path', 'process')),
    subject       text        NOT NULL,
    hour          timestamptz NOT NULL,
    changes       integer     NOT NULL DEFAULT 0,
    builds        integer     NOT NULL DEFAULT 0,
    failed_builds integer     NOT NULL DEFAULT 0,
    runs          integer     NOT NULL DEFAULT 0,
    failed_runs   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (subject_kind, subject, hour)
);

CREATE INDEX activity_hourly_hour ON activity_hourly (hour);

-- The same per label set and UTC day, so that a month of a whole class is a few thousand rows. Kept per node too: the
-- label set of paths no template matches ('{}') is shared by every node, and one row per set and day would be a
-- row every agent updates. A template change rebuilds it from the hourly counts (node '' then).
CREATE TABLE activity_daily (
    labels        jsonb       NOT NULL,
    day           timestamptz NOT NULL,
    node_name     text        NOT NULL,
    changes       bigint      NOT NULL DEFAULT 0,
    builds        bigint      NOT NULL DEFAULT 0,
    failed_builds bigint      NOT NULL DEFAULT 0,
    runs          bigint      NOT NULL DEFAULT 0,
    failed_runs   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (labels, day, node_name)
);

CREATE INDEX activity_daily_day ON activity_daily (day);

CREATE FUNCTION file_events_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO activity_hourly (subject_kind, subject, hour, changes)
    SELECT 'path', path, date_trunc('hour', occurred_at, 'UTC'), count(*) FROM added GROUP BY 2, 3 ORDER BY 2, 3
    ON CONFLICT (subject_kind, subject, hour) DO UPDATE SET changes = activity_hourly.changes + excluded.changes;
    INSERT INTO activity_daily (labels, day, node_name, changes)
    SELECT a.labels, date_trunc('day', e.occurred_at, 'UTC'), e.node_name, count(*)
      FROM added e JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (labels, day, node_name) DO UPDATE SET changes = activity_daily.changes + excluded.changes;
    RETURN NULL;
END
$$;

CREATE TRIGGER file_events_count
AFTER INSERT ON file_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION file_events_count();

-- What a set of process rows adds to the hourly counts (sign -1 takes rows away: the row before an update).
CREATE FUNCTION process_events_count(rows_added process_events[], rows_removed process_events[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    -- Each row's signed contribution, worked out once for both tables.
    WITH contributions AS (
        SELECT r.node_name, r.attribution_key, r.started_at,
               r.sign * r.is_build::int AS builds,
               r.sign * (r.is_build AND r.failed)::int AS failed_builds,
               r.sign * (r.kind = 'run')::int AS runs,
               r.sign * (r.kind = 'run' AND r.failed)::int AS failed_runs
          FROM (SELECT x.*, 1 AS sign, coalesce(x.exit_code, 0) <> 0 OR x.signal IS NOT NULL AS failed
                  FROM unnest(rows_added) AS x
                UNION ALL
                SELECT d.*, -1, coalesce(d.exit_code, 0) <> 0 OR d.signal IS NOT NULL
                  FROM unnest(rows_removed) AS d) AS r
         WHERE r.kind IN ('compile', 'run')),
    hourly AS (
        INSERT INTO activity_hourly (subject_kind, subject, hour, builds, failed_builds, runs, failed_runs)
        SELECT 'process', attribution_key, date_trunc('hour', started_at, 'UTC'),
               sum(builds), sum(failed_builds), sum(runs), sum(failed_runs)
          FROM contributions
         GROUP BY 2, 3
        HAVING sum(builds) <> 0 OR sum(failed_builds) <> 0 OR sum(runs) <> 0 OR sum(failed_runs) <> 0
         ORDER BY 2, 3
        ON CONFLICT (subject_kind, subject, hour) DO UPDATE
           SET builds = activity_hourly.builds + excluded.builds,
               failed_builds = activity_hourly.failed_builds + excluded.failed_builds,
               runs = activity_hourly.runs + excluded.runs,
               failed_runs = activity_hourly.failed_runs + excluded.failed_runs)
    INSERT INTO activity_daily (labels, day, node_name, builds, failed_builds, runs, failed_runs)
    SELECT a.labels, date_trunc('day', c.started_at, 'UTC'), c.node_name,
           sum(c.builds), sum(c.failed_builds), sum(c.runs), sum(c.failed_runs)
      FROM contributions c
      JOIN attributions a ON a.subject_kind = 'process' AND a.subject = c.attribution_key
     GROUP BY 1, 2, 3
    HAVING sum(c.builds) <> 0 OR sum(c.failed_builds) <> 0 OR sum(c.runs) <> 0 OR sum(c.failed_runs) <> 0
     ORDER BY 1, 2, 3
    ON CONFLICT (labels, day, node_name) DO UPDATE
       SET builds = activity_daily.builds + excluded.builds,
           failed_builds = activity_daily.failed_builds + excluded.failed_builds,
           runs = activity_daily.runs + excluded.runs,
           failed_runs = activity_daily.failed_runs + excluded.failed_runs;
END
$$;

CREATE FUNCTION process_events_count_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM process_events_count(ARRAY(SELECT ROW(a.*)::process_events FROM added AS a), '{}');
    RETURN NULL;
END
$$;

CREATE FUNCTION process_events_count_updated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM process_events_count(ARRAY(SELECT ROW(a.*)::process_events FROM added AS a),
                                ARRAY(SELECT ROW(r.*)::process_events FROM removed AS r));
    RETURN NULL;
END
$$;

CREATE TRIGGER process_events_count_inserted
AFTER INSERT ON process_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION process_events_count_inserted();

CREATE TRIGGER process_events_count_updated
AFTER UPDATE ON process_events REFERENCING OLD TABLE AS removed NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION process_events_count_updated();

-- The daily counts from the hourly ones, with the labels as they are now.
CREATE FUNCTION activity_daily_rebuild() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM activity_daily;
    INSERT INTO activity_daily (labels, day, node_name, changes, builds, failed_builds, runs, failed_runs)
    SELECT a.labels, date_trunc('day', h.hour, 'UTC'), '', sum(h.changes), sum(h.builds), sum(h.failed_builds),
           sum(h.runs), sum(h.failed_runs)
      FROM activity_hourly h
      JOIN attributions a ON a.subject_kind = h.subject_kind AND a.subject = h.subject
     GROUP BY 1, 2;
    RETURN NULL;
END
$$;

-- After attribution_templates_relabel (triggers of one event fire in name order).
CREATE TRIGGER attribution_templates_relabel_counts
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attribution_templates
FOR EACH STATEMENT EXECUTE FUNCTION activity_daily_rebuild();

-- Events stored before this migration (the process rows' daily counts come with them).
INSERT INTO activity_hourly (subject_kind, subject, hour, changes)
SELECT 'path', path, date_trunc('hour', occurred_at, 'UTC'), count(*) FROM file_events GROUP BY 2, 3;
INSERT INTO activity_daily (labels, day, node_name, changes)
SELECT a.labels, date_trunc('day', e.occurred_at, 'UTC'), e.node_name, count(*)
  FROM file_events e JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
 GROUP BY 1, 2, 3;
SELECT process_events_count(ARRAY(SELECT p FROM process_events AS p), '{}');

-- Every process with its labels (builds and runs, as before, plus labels and the subject's template).
CREATE OR REPLACE VIEW builds_and_runs AS
SELECT p.node_name, p.cwd, p.kind, p.exe, p.argv, p.source_files, p.started_at, p.ended_at, p.duration, p.exit_code,
       p.signal, p.container_id, p.pod_uid, p.hostname, p.process_id, p.labels, p.template
  FROM labelled_process_events p
 WHERE p.kind IN ('compile', 'run');

-- Builds that failed: a compiler, not started by another one, that exited non-zero or was killed by a signal, with
-- where it ran, what it compiled and where its output was to go (the value of -o, against its directory).
CREATE OR REPLACE VIEW failing_builds AS
SELECT p.node_name, p.cwd, p.exe, p.argv, p.source_files, p.started_at, p.ended_at, p.exit_code, p.signal,
       p.container_id, p.hostname, p.process_id, p.labels,
       CASE WHEN o.value IS NULL OR left(o.value, 1) = '/' OR p.cwd IS NULL THEN o.value
            ELSE rtrim(p.cwd, '/') || '/' || o.value END AS output_file
  FROM labelled_process_events p
  LEFT JOIN LATERAL (SELECT p.argv[array_position(p.argv, '-o') + 1] AS value) AS o ON true
 WHERE p.kind = 'compile' AND p.ended_at IS NOT NULL AND (p.exit_code <> 0 OR p.signal IS NOT NULL)
   AND p.is_build;

-- Every version of every file, with its labels.
CREATE OR REPLACE VIEW file_versions AS
SELECT e.node_name, e.mount_path, e.path, e.event_type, e.occurred_at, e.size, e.modified_at, e.sha256,
       e.snapshot IS NOT NULL AS has_content, e.torn, e.too_large, e.not_hashed, e.source, e.event_id,
       c.content, a.labels
  FROM file_events e
  JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
  LEFT JOIN file_contents c ON c.sha256 = e.snapshot
 WHERE e.event_type IN ('create', 'modify', 'rename') AND e.entry_type = 'f';

-- The files on the nodes now, with their labels: per label set (WHERE labels @> ...), or a node's live inventory
-- (WHERE node_name = ...).
CREATE VIEW current_files AS
SELECT s.node_name, s.mount_path, s.path, s.entry_type, s.size, s.modified_at, s.mode, s.sha256, s.updated_at,
       a.labels, a.template
  FROM file_state s
  JOIN attributions a ON a.subject_kind = 'path' AND a.subject = s.path;

-- Every version of one file on one node, oldest first, with its content where it was kept; a rename carries the
-- history on under the new path (ask for the old one to see what came before).
CREATE FUNCTION file_history(node text, file_path text)
RETURNS TABLE (occurred_at timestamptz, event_type text, path text, old_path text, size bigint, sha256 bytea,
               content bytea, torn boolean, too_large boolean, source text, labels jsonb)
LANGUAGE sql STABLE
AS $$
    SELECT e.occurred_at, e.event_type, e.path, e.old_path, e.size, e.sha256, c.content, e.torn, e.too_large,
           e.source, a.labels
      FROM file_events e
      JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
      LEFT JOIN file_contents c ON c.sha256 = e.snapshot
     WHERE e.node_name = node AND (e.path = file_path OR e.old_path = file_path)
     ORDER BY e.event_id
$$;

-- Whether a time range and bucket fall on whole units ('hour', 'day', UTC) of the kept counts, so they can answer.
CREATE FUNCTION counted_in(since timestamptz, until timestamptz, bucket interval, unit text) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT since = date_trunc(unit, since, 'UTC') AND until = date_trunc(unit, until, 'UTC')
           AND extract(epoch FROM bucket) >= extract(epoch FROM ('1 ' || unit)::interval)
           AND extract(epoch FROM bucket)::bigint % extract(epoch FROM ('1 ' || unit)::interval)::bigint = 0
$$;

-- Changes, builds (failed), runs (failed) per time bucket and per chosen labels. When since and until are on a UTC
-- midnight and the bucket is whole days, the daily counts answer; on the hour with whole hours, the hourly counts (the
-- dashboards ask so); otherwise the events themselves.
-- Events are counted per subject first and labelled after, which looks each subject's labels up once.
CREATE FUNCTION activity(since timestamptz, until timestamptz, bucket interval DEFAULT '1 hour',
                         filter jsonb DEFAULT '{}', per text[] DEFAULT '{}')
RETURNS TABLE (bucket_start timestamptz, labels jsonb, changes bigint, builds bigint, failed_builds bigint,
               runs bigint, failed_runs bigint)
LANGUAGE sql STABLE
-- Only one of its three sources runs, but the planner prices all three, and compiling the plan (JIT) for that price
-- would cost more than running it.
SET jit = off
AS $$
    WITH subjects AS (
        SELECT a.subject_kind, a.subject FROM attributions a WHERE filter <> '{}' AND a.labels @> filter),
    from_events AS (
        SELECT date_bin(bucket, e.occurred_at, since) AS b, 'path' AS kind, e.path AS subject, count(*) AS n,
               0 AS builds, 0 AS failed_builds, 0 AS runs, 0 AS failed_runs
          FROM file_events e
         WHERE NOT counted_in(since, until, bucket, 'hour')
           AND NOT counted_in(since, until, bucket, 'day') AND e.occurred_at >= since AND e.occurred_at < until
           AND (filter = '{}' OR e.path IN (SELECT subject FROM subjects WHERE subject_kind = 'path'))
         GROUP BY 1, 2, 3
        UNION ALL
        SELECT date_bin(bucket, p.started_at, since), 'process', p.attribution_key, 0,
               count(*) FILTER (WHERE p.is_build),
               count(*) FILTER (WHERE p.is_build AND (p.exit_code <> 0 OR p.signal IS NOT NULL)),
               count(*) FILTER (WHERE p.kind = 'run'),
               count(*) FILTER (WHERE p.kind = 'run' AND (p.exit_code <> 0 OR p.signal IS NOT NULL))
          FROM process_events p
         WHERE NOT counted_in(since, until, bucket, 'hour')
           AND NOT counted_in(since, until, bucket, 'day') AND p.kind IN ('compile', 'run') AND p.started_at >= since AND p.started_at < until
           AND (filter = '{}' OR p.attribution_key IN (SELECT subject FROM subjects WHERE subject_kind = 'process'))
         GROUP BY 1, 2, 3)
    -- Per bucket and label set first, then per chosen labels: the labels are picked once per set and bucket.
    SELECT b, labels_pick(l, per), sum(n)::bigint, sum(builds)::bigint, sum(failed_builds)::bigint, sum(runs)::bigint,
           sum(failed_runs)::bigint
      FROM (SELECT date_bin(bucket, h.hour, since) AS b, a.labels AS l, sum(h.changes) AS n, sum(h.builds) AS builds,
                   sum(h.failed_builds) AS failed_builds, sum(h.runs) AS runs, sum(h.failed_runs) AS failed_runs
              FROM activity_hourly h
              JOIN attributions a ON a.subject_kind = h.subject_kind AND a.subject = h.subject
             WHERE counted_in(since, until, bucket, 'hour') AND NOT counted_in(since, until, bucket, 'day')
               AND h.hour >= since AND h.hour < until AND a.labels @> filter
             GROUP BY 1, 2
            UNION ALL
            SELECT date_bin(bucket, d.day, since), d.labels, sum(d.changes), sum(d.builds), sum(d.failed_builds),
                   sum(d.runs), sum(d.failed_runs)
              FROM activity_daily d
             WHERE counted_in(since, until, bucket, 'day')
               AND d.day >= since AND d.day < until AND d.labels @> filter
             GROUP BY 1, 2
            UNION ALL
            SELECT k.b, a.labels, sum(k.n), sum(k.builds), sum(k.failed_builds), sum(k.runs), sum(k.failed_runs)
              FROM from_events k
              JOIN attributions a ON a.subject_kind = k.kind AND a.subject = k.subject
             WHERE NOT counted_in(since, until, bucket, 'hour')
               AND NOT counted_in(since, until, bucket, 'day')
             GROUP BY 1, 2) AS per_set
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;

-- Bytes of code (code_file_pattern) per chosen labels at the end of every bucket: each file counts with its size
-- after its latest change up to then (0 once deleted or renamed away), so the history before `since` counts too.
CREATE FUNCTION code_size(since timestamptz, until timestamptz, bucket interval DEFAULT '1 day',
                          filter jsonb DEFAULT '{}', per text[] DEFAULT '{}')
RETURNS TABLE (bucket_end timestamptz, labels jsonb, files bigint, bytes bigint)
LANGUAGE sql STABLE
AS $$
    WITH code AS (
        SELECT a.subject, a.labels FROM attributions a
         WHERE a.subject_kind = 'path' AND a.labels @> filter AND a.subject ~ code_file_pattern()),
    sized AS (
        SELECT e.node_name, e.path, e.event_id, e.occurred_at, c.labels,
               CASE WHEN e.event_type = 'delete' THEN NULL ELSE coalesce(e.size, 0) END AS size
          FROM code c JOIN file_events e ON e.path = c.subject
         WHERE e.occurred_at < until AND e.entry_type = 'f'
        UNION ALL
        SELECT e.node_name, e.old_path, e.event_id, e.occurred_at, c.labels, NULL
          FROM code c JOIN file_events e ON e.old_path = c.subject
         WHERE e.occurred_at < until AND e.entry_type = 'f'),
    deltas AS (
        SELECT greatest(date_bin(bucket, occurred_at, since), since - bucket) AS b, labels,
               coalesce(size, 0) - coalesce(lag(size) OVER w, 0) AS bytes,
               (size IS NOT NULL)::int - (lag(size) OVER w IS NOT NULL)::int AS files
          FROM sized
        WINDOW w AS (PARTITION BY node_name, path ORDER BY event_id)),
    per_bucket AS (
        SELECT b, labels_pick(labels, per) AS l, sum(bytes) AS bytes, sum(files) AS files FROM deltas GROUP BY 1, 2),
    grid AS (
        SELECT g.b, l.l FROM generate_series(since - bucket, until - bucket, bucket) AS g(b)
         CROSS JOIN (SELECT DISTINCT l FROM per_bucket) AS l),
    running AS (
        SELECT grid.b, grid.l,
               sum(coalesce(p.files, 0)) OVER (PARTITION BY grid.l ORDER BY grid.b) AS files,
               sum(coalesce(p.bytes, 0)) OVER (PARTITION BY grid.l ORDER BY grid.b) AS bytes
          FROM grid LEFT JOIN per_bucket p ON p.b = grid.b AND p.l = grid.l)
    SELECT b + bucket, l, files::bigint, bytes::bigint FROM running WHERE b >= since ORDER BY 1, 2
$$;

-- Per value of one label (by, e.g. each assignment): how code size is spread over the units of another (per, e.g.
-- students), from the files on the nodes now.
CREATE FUNCTION code_size_percentiles(filter jsonb DEFAULT '{}', by text DEFAULT 'assignment', per text DEFAULT 'student')
RETURNS TABLE (value text, units bigint, p50_bytes double precision, p90_bytes double precision, max_bytes bigint)
LANGUAGE sql STABLE
AS $$
    SELECT v, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY bytes),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY bytes), max(bytes)
      FROM (SELECT a.labels ->> by AS v, a.labels ->> per AS u, sum(s.size)::bigint AS bytes
              FROM attributions a
              JOIN file_state s ON s.path = a.subject
             WHERE a.subject_kind = 'path' AND a.labels @> filter AND a.labels ? by AND a.labels ? per
               AND a.subject ~ code_file_pattern() AND s.entry_type = 'f'
             GROUP BY 1, 2) AS units
     GROUP BY v
     ORDER BY v
$$;

-- The units (e.g. students) most recently active, by their latest file change, build or run.
CREATE FUNCTION recently_active(filter jsonb DEFAULT '{}', per text DEFAULT 'student', top integer DEFAULT 20)
RETURNS TABLE (value text, labels jsonb, last_active_at timestamptz, last_change_at timestamptz,
               last_process_at timestamptz)
LANGUAGE sql STABLE
AS $$
    WITH subjects AS (
        SELECT a.subject_kind, a.subject, a.labels FROM attributions a
         WHERE a.labels @> filter AND a.labels ? per),
    latest AS (
        SELECT s.labels,
               CASE WHEN s.subject_kind = 'path'
                    THEN (SELECT max(e.occurred_at) FROM file_events e WHERE e.path = s.subject) END AS change_at,
               CASE WHEN s.subject_kind = 'process'
                    THEN (SELECT max(p.started_at) FROM process_events p WHERE p.attribution_key = s.subject) END AS process_at
          FROM subjects s)
    SELECT labels ->> per, labels_pick(filter || labels, ARRAY(SELECT jsonb_object_keys(filter)) || per),
           greatest(max(change_at), max(process_at)), max(change_at), max(process_at)
      FROM latest
     GROUP BY 1, 2
     ORDER BY 3 DESC NULLS LAST, 1
     LIMIT top
$$;

-- Builds and runs per unit (e.g. student) within each value of a label (e.g. assignment); average them per value
-- for "builds and runs per student": SELECT value, avg(builds), avg(runs) FROM builds_and_runs_per(...) GROUP BY 1.
CREATE FUNCTION builds_and_runs_per(filter jsonb DEFAULT '{}', by text DEFAULT 'assignment', per text DEFAULT 'student',
                                    since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity')
RETURNS TABLE (value text, unit text, builds bigint, failed_builds bigint, runs bigint, failed_runs bigint,
               last_started_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT a.labels ->> by, a.labels ->> per,
           count(*) FILTER (WHERE p.is_build),
           count(*) FILTER (WHERE p.is_build AND (p.exit_code <> 0 OR p.signal IS NOT NULL)),
           count(*) FILTER (WHERE p.kind = 'run'),
           count(*) FILTER (WHERE p.kind = 'run' AND (p.exit_code <> 0 OR p.signal IS NOT NULL)),
           max(p.started_at)
      FROM attributions a
      JOIN process_events p ON p.attribution_key = a.subject
     WHERE a.subject_kind = 'process' AND a.labels @> filter AND a.labels ? by AND a.labels ? per
       AND p.kind IN ('compile', 'run') AND p.started_at >= since AND p.started_at < until
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;
