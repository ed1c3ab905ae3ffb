-- The questions teaching staff ask, answered from the stored events with their labels (0004). Every function takes
-- a label filter as jsonb ('{"course": "cs101"}' keeps the subjects whose labels contain it; '{}' keeps all,
-- including subjects no template matched) and, where rows are grouped, the label names to group by (per). Times are
-- timestamptz (UTC as stored); buckets start at `since`.

-- The files that count as code for code size: sources and build files by name (a build's binaries do not).
CREATE FUNCTION code_file_pattern() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT '(\.(c|h|cc|cpp|cxx|hpp|hh|py|java|kt|scala|cs|js|ts|go|rs|rb|php|sh|s|S|asm|ml|hs|sql|r|R|jl|m|swift|lua|pl)|(^|/)(Makefile|makefile|CMakeLists\.txt|Dockerfile))$'
$$;

-- The chosen labels of a label set ('{}' when none is chosen), for grouping.
CREATE FUNCTION labels_pick(labels jsonb, per text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(jsonb_object_agg(k, labels -> k), '{}') FROM unnest(per) AS k WHERE labels ? k
$$;

-- A kept process is a build when it is a compiler that no kept compiler started (gcc, not the cc1 and as it runs).
CREATE FUNCTION started_by_compiler(parent uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT parent IS NOT NULL AND EXISTS (SELECT 1 FROM process_events q WHERE q.process_id = parent AND q.kind = 'compile')
$$;

CREATE INDEX process_events_failed_compiles ON process_events (started_at)
    WHERE kind = 'compile' AND ended_at IS NOT NULL AND (exit_code <> 0 OR signal IS NOT NULL);

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
   AND NOT started_by_compiler(p.parent_process_id);

-- Every version of every file, with its labels.
CREATE OR REPLACE VIEW file_versions AS
SELECT e.node_name, e.mount_path, e.path, e.event_type, e.occurred_at, e.size, e.modified_at, e.sha256,
       e.snapshot IS NOT NULL AS has_content, e.torn, e.too_large, e.not_hashed, e.source, e.event_id,
       c.content, coalesce(a.labels, '{}') AS labels
  FROM file_events e
  LEFT JOIN file_contents c ON c.sha256 = e.snapshot
  LEFT JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
 WHERE e.event_type IN ('create', 'modify', 'rename') AND e.entry_type = 'f';

-- The files on the nodes now, with their labels: per label set (WHERE labels @> ...), or a node's live inventory
-- (WHERE node_name = ...).
CREATE VIEW current_files AS
SELECT s.node_name, s.mount_path, s.path, s.entry_type, s.size, s.modified_at, s.mode, s.sha256, s.updated_at,
       coalesce(a.labels, '{}') AS labels, a.template
  FROM file_state s
  LEFT JOIN attributions a ON a.subject_kind = 'path' AND a.subject = s.path;

-- Every version of one file on one node, oldest first, with its content where it was kept; a rename carries the
-- history on under the new path (ask for the old one to see what came before).
CREATE FUNCTION file_history(node text, file_path text)
RETURNS TABLE (occurred_at timestamptz, event_type text, path text, old_path text, size bigint, sha256 bytea,
               content bytea, torn boolean, too_large boolean, source text, labels jsonb)
LANGUAGE sql STABLE
AS $$
    SELECT e.occurred_at, e.event_type, e.path, e.old_path, e.size, e.sha256, c.content, e.torn, e.too_large,
           e.source, coalesce(a.labels, '{}')
      FROM file_events e
      LEFT JOIN file_contents c ON c.sha256 = e.snapshot
      LEFT JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path
     WHERE e.node_name = node AND (e.path = file_path OR e.old_path = file_path)
     ORDER BY e.event_id
$$;

-- Changes, builds (failed), runs (failed) per time bucket and per chosen labels.
CREATE FUNCTION activity(since timestamptz, until timestamptz, bucket interval DEFAULT '1 hour',
                         filter jsonb DEFAULT '{}', per text[] DEFAULT '{}')
RETURNS TABLE (bucket_start timestamptz, labels jsonb, changes bigint, builds bigint, failed_builds bigint,
               runs bigint, failed_runs bigint)
LANGUAGE sql STABLE
AS $$
    WITH changes AS (
        SELECT date_bin(bucket, e.occurred_at, since) AS b, a.labels, count(*) AS n
          FROM attributions a
          JOIN file_events e ON e.path = a.subject
         WHERE a.subject_kind = 'path' AND a.labels @> filter
           AND e.occurred_at >= since AND e.occurred_at < until
         GROUP BY 1, 2),
    processes AS (
        SELECT date_bin(bucket, p.started_at, since) AS b, a.labels,
               count(*) FILTER (WHERE p.kind = 'compile' AND NOT started_by_compiler(p.parent_process_id)) AS builds,
               count(*) FILTER (WHERE p.kind = 'compile' AND (p.exit_code <> 0 OR p.signal IS NOT NULL)
                                  AND NOT started_by_compiler(p.parent_process_id)) AS failed_builds,
               count(*) FILTER (WHERE p.kind = 'run') AS runs,
               count(*) FILTER (WHERE p.kind = 'run' AND (p.exit_code <> 0 OR p.signal IS NOT NULL)) AS failed_runs
          FROM attributions a
          JOIN process_events p ON p.attribution_key = a.subject
         WHERE a.subject_kind = 'process' AND a.labels @> filter AND p.kind IN ('compile', 'run')
           AND p.started_at >= since AND p.started_at < until
         GROUP BY 1, 2)
    SELECT b, labels_pick(labels, per), sum(n)::bigint, sum(builds)::bigint, sum(failed_builds)::bigint,
           sum(runs)::bigint, sum(failed_runs)::bigint
      FROM (SELECT b, labels, n, 0 AS builds, 0 AS failed_builds, 0 AS runs, 0 AS failed_runs FROM changes
            UNION ALL
            SELECT b, labels, 0, builds, failed_builds, runs, failed_runs FROM processes) AS both_kinds
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
        SELECT greatest(date_bin(bucket, occurred_at, since), since - bucket) AS b, labels_pick(labels, per) AS l,
               coalesce(size, 0) - coalesce(lag(size) OVER w, 0) AS bytes,
               (size IS NOT NULL)::int - (lag(size) OVER w IS NOT NULL)::int AS files
          FROM sized
        WINDOW w AS (PARTITION BY node_name, path ORDER BY event_id)),
    per_bucket AS (
        SELECT b, l, sum(bytes) AS bytes, sum(files) AS files FROM deltas GROUP BY 1, 2),
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
           count(*) FILTER (WHERE p.kind = 'compile' AND NOT started_by_compiler(p.parent_process_id)),
           count(*) FILTER (WHERE p.kind = 'compile' AND (p.exit_code <> 0 OR p.signal IS NOT NULL)
                              AND NOT started_by_compiler(p.parent_process_id)),
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
