-- Writing a template no longer relabels in its own transaction. That relabel (every subject through
-- attribution_of, then activity_daily deleted and rebuilt) took minutes on 170,000 subjects, and for all that time
-- every agent's store waited: attributions_add's SHARE lock on the templates waits for the writer's ROW EXCLUSIVE
-- lock (a store with a new path), and the daily counts' upserts wait for the rows the rebuild deleted (every store).
-- Now a template write only records that the templates changed and returns; the relabel follows in short
-- transactions of at most a batch of subjects each (attribution_relabel_step, run by the agents' relabel loop or by
-- CALL attribution_relabel()), and stores take no lock that a template write or a relabel holds.
--
-- Glossary: a *change* is one statement that wrote templates (attribution_template_changes); the relabel *applies*
-- every change up to the newest when it starts; its *barrier* is the transactions in progress at a moment, which it
-- waits out (without locks) so that a subject labelled by a store under the old templates is committed, and so seen,
-- before the walk or the counts pass it.

CREATE TABLE attribution_template_changes (
    change_id  bigserial   PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- One row: where the relabel stands. phase: 'idle' (labels follow every change up to applied_change), 'waiting'
-- (for the barrier before the walk), 'relabelling' (walking subjects in key order after the cursor), 'settling'
-- (for the barrier before the counts), 'counting' (daily counts of each day after day_cursor made to agree with the
-- hourly ones under the new labels).
CREATE TABLE attribution_relabel (
    one             boolean     PRIMARY KEY DEFAULT true CHECK (one),
    phase           text        NOT NULL DEFAULT 'idle'
                                CHECK (phase IN ('idle', 'waiting', 'relabelling', 'settling', 'counting')),
    applied_change  bigint      NOT NULL DEFAULT 0,
    target_change   bigint      NOT NULL DEFAULT 0,
    barrier         pg_snapshot,
    cursor_kind     text,
    cursor_subject  text,
    day_cursor      timestamptz,
    subjects_walked bigint      NOT NULL DEFAULT 0,
    subjects_changed bigint     NOT NULL DEFAULT 0,
    started_at      timestamptz,
    finished_at     timestamptz
);
INSERT INTO attribution_relabel DEFAULT VALUES;

-- The same labels as 0007 gives new subjects, without the lock on the templates: a store that labels a new subject
-- under templates that are being replaced commits before the relabel's walk starts (its barrier), so the walk
-- relabels it.
CREATE OR REPLACE FUNCTION attributions_add(kind text, subjects text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
    unknown text[];
BEGIN
    SELECT array_agg(s.subject ORDER BY s.subject) INTO unknown
      FROM (SELECT DISTINCT p AS subject FROM unnest(subjects) AS p WHERE p IS NOT NULL) AS s
     WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = kind AND x.subject = s.subject);
    IF unknown IS NULL THEN
        RETURN;
    END IF;

    -- Rows go in key order, so that agents adding the same new subjects at once cannot deadlock.
    IF kind = 'path' THEN
        INSERT INTO attributions (subject_kind, subject, template, labels)
        SELECT 'path', s.subject, m.name, coalesce(m.labels, '{}')
          FROM unnest(unknown) AS s(subject)
          LEFT JOIN LATERAL (
                SELECT t.name, (SELECT jsonb_object_agg(u.name, r[u.n]) FROM unnest(t.label_names) WITH ORDINALITY AS u(name, n)) AS labels
                  FROM attribution_templates t
                 CROSS JOIN LATERAL regexp_match(s.subject, t.regex) AS r
                 WHERE t.applies_to = 'path'
                   AND s.subject <> ''
                   AND r IS NOT NULL
                   AND (left(t.pattern, 1) = '/') = (left(s.subject, 1) = '/')
                 ORDER BY t.priority, t.name
                 LIMIT 1) AS m ON true
         WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = 'path' AND x.subject = s.subject)
         ORDER BY s.subject
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO attributions (subject_kind, subject, template, labels)
        SELECT kind, s.subject, a.template, coalesce(a.labels, '{}')
          FROM unnest(unknown) AS s(subject)
          LEFT JOIN LATERAL attribution_of(kind, s.subject) AS a ON true
         WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = kind AND x.subject = s.subject)
         ORDER BY s.subject
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- The trigger function keeps its name; it now records the change only.
CREATE OR REPLACE FUNCTION attributions_relabel() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO attribution_template_changes DEFAULT VALUES;
    RETURN NULL;
END
$$;

-- The daily counts are made to agree with the hourly ones by the relabel, day by day, instead.
DROP TRIGGER attribution_templates_relabel_counts ON attribution_templates;

-- Whether every transaction of a barrier has ended.
CREATE FUNCTION attribution_barrier_passed(barrier pg_snapshot) RETURNS boolean
LANGUAGE sql VOLATILE
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(barrier) AS x
                        WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned() AND pg_xact_status(x) = 'in progress')
$$;

-- One step of the relabel, in the caller's (short) transaction: at most `batch` subjects relabelled, or one day of
-- daily counts made right, or a look at whether there is anything to do. Returns the phase it leaves the relabel in,
-- or 'busy' when another session is taking a step (the caller tries later). Labels are computed for the whole batch
-- in one statement, the templates joined to the subjects (what attribution_of gives, one subject at a time), and only
-- rows whose labels differ are written.
CREATE FUNCTION attribution_relabel_step(batch integer DEFAULT 5000) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
    st attribution_relabel;
    newest bigint;
    walked integer;
    changed integer;
    last_kind text;
    last_subject text;
    next_day timestamptz;
BEGIN
    SELECT * INTO st FROM attribution_relabel FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 'busy';
    END IF;
    SELECT coalesce(max(change_id), 0) INTO newest FROM attribution_template_changes;

    -- A change during the walk: the subjects passed were labelled by templates since replaced, so start again.
    IF newest > st.target_change OR (st.phase = 'idle' AND newest > st.applied_change) THEN
        UPDATE attribution_relabel
           SET phase = 'waiting', target_change = newest, barrier = pg_current_snapshot(), cursor_kind = NULL,
               cursor_subject = NULL, day_cursor = NULL, subjects_walked = 0, subjects_changed = 0,
               started_at = now(), finished_at = NULL;
        RETURN 'waiting';
    END IF;

    IF st.phase IN ('waiting', 'settling') THEN
        IF NOT attribution_barrier_passed(st.barrier) THEN
            RETURN st.phase;
        END IF;
        UPDATE attribution_relabel SET phase = CASE st.phase WHEN 'waiting' THEN 'relabelling' ELSE 'counting' END;
        RETURN CASE st.phase WHEN 'waiting' THEN 'relabelling' ELSE 'counting' END;
    END IF;

    IF st.phase = 'relabelling' THEN
        WITH next AS (
            SELECT s.subject_kind, s.subject, s.template, s.labels,
                   CASE WHEN s.subject_kind = 'process' THEN left(s.subject, strpos(s.subject, E'\n') - 1) END AS hostname,
                   CASE WHEN s.subject_kind = 'process' THEN substr(s.subject, strpos(s.subject, E'\n') + 1) ELSE s.subject END AS path
              FROM attributions s
             WHERE st.cursor_kind IS NULL OR (s.subject_kind, s.subject) > (st.cursor_kind, st.cursor_subject)
             ORDER BY s.subject_kind, s.subject
             LIMIT batch),
        fresh AS (
            SELECT n.subject_kind, n.subject, n.template AS old_template, n.labels AS old_labels,
                   coalesce(h.name, p.name) AS template,
                   CASE WHEN h.name IS NULL AND p.name IS NULL THEN '{}'::jsonb
                        ELSE coalesce(p.labels, '{}') || coalesce(h.labels, '{}') END AS labels
              FROM next n
              LEFT JOIN LATERAL (
                    SELECT t.name, (SELECT jsonb_object_agg(u.name, r[u.n]) FROM unnest(t.label_names) WITH ORDINALITY AS u(name, n)) AS labels
                      FROM attribution_templates t
                     CROSS JOIN LATERAL regexp_match(n.path, t.regex) AS r
                     WHERE t.applies_to = 'path' AND n.path <> '' AND r IS NOT NULL
                       AND (left(t.pattern, 1) = '/') = (left(n.path, 1) = '/')
                     ORDER BY t.priority, t.name
                     LIMIT 1) AS p ON true
              LEFT JOIN LATERAL (
                    SELECT t.name, (SELECT jsonb_object_agg(u.name, r[u.n]) FROM unnest(t.label_names) WITH ORDINALITY AS u(name, n)) AS labels
                      FROM attribution_templates t
                     CROSS JOIN LATERAL regexp_match(n.hostname, t.regex) AS r
                     WHERE t.applies_to = 'hostname' AND n.hostname <> '' AND r IS NOT NULL
                     ORDER BY t.priority, t.name
                     LIMIT 1) AS h ON true),
        written AS (
            UPDATE attributions x
               SET template = f.template, labels = f.labels
              FROM fresh f
             WHERE x.subject_kind = f.subject_kind AND x.subject = f.subject
               AND (f.old_template IS DISTINCT FROM f.template OR f.old_labels <> f.labels)
            RETURNING 1)
        SELECT (SELECT count(*) FROM next), (SELECT count(*) FROM written),
               (SELECT subject_kind FROM next ORDER BY subject_kind DESC, subject DESC LIMIT 1),
               (SELECT subject FROM next ORDER BY subject_kind DESC, subject DESC LIMIT 1)
          INTO walked, changed, last_kind, last_subject;

        IF walked < batch THEN
            -- Stores that read the old labels of subjects just relabelled may still be adding to the daily counts
            -- under them: the counts are settled once they have ended.
            UPDATE attribution_relabel
               SET phase = 'settling', barrier = pg_current_snapshot(), subjects_walked = subjects_walked + walked,
                   subjects_changed = subjects_changed + changed
            RETURNING phase INTO st.phase;
        ELSE
            UPDATE attribution_relabel
               SET cursor_kind = last_kind, cursor_subject = last_subject, subjects_walked = subjects_walked + walked,
                   subjects_changed = subjects_changed + changed;
        END IF;
        RETURN st.phase;
    END IF;

    IF st.phase = 'counting' THEN
        SELECT date_trunc('day', min(hour), 'UTC') INTO next_day
          FROM activity_hourly WHERE st.day_cursor IS NULL OR hour >= st.day_cursor + interval '1 day';
        IF next_day IS NULL THEN
            UPDATE attribution_relabel
               SET phase = 'idle', applied_change = target_change, barrier = NULL, finished_at = now();
            RETURN 'idle';
        END IF;
        -- One statement, one snapshot: every store adds to the hourly and the daily counts in one transaction, so
        -- in this snapshot the difference is what the relabel moved. It is added to the day's rows of node '',
        -- which no agent writes (the sum over nodes is what is asked).
        WITH correct AS (
            SELECT a.labels, sum(h.changes) AS changes, sum(h.builds) AS builds, sum(h.failed_builds) AS failed_builds,
                   sum(h.runs) AS runs, sum(h.failed_runs) AS failed_runs
              FROM activity_hourly h
              JOIN attributions a ON a.subject_kind = h.subject_kind AND a.subject = h.subject
             WHERE h.hour >= next_day AND h.hour < next_day + interval '1 day'
             GROUP BY 1),
        kept AS (
            SELECT d.labels, sum(d.changes) AS changes, sum(d.builds) AS builds, sum(d.failed_builds) AS failed_builds,
                   sum(d.runs) AS runs, sum(d.failed_runs) AS failed_runs
              FROM activity_daily d
             WHERE d.day = next_day
             GROUP BY 1),
        delta AS (
            SELECT coalesce(c.labels, k.labels) AS labels,
                   coalesce(c.changes, 0) - coalesce(k.changes, 0) AS changes,
                   coalesce(c.builds, 0) - coalesce(k.builds, 0) AS builds,
                   coalesce(c.failed_builds, 0) - coalesce(k.failed_builds, 0) AS failed_builds,
                   coalesce(c.runs, 0) - coalesce(k.runs, 0) AS runs,
                   coalesce(c.failed_runs, 0) - coalesce(k.failed_runs, 0) AS failed_runs
              FROM correct c FULL JOIN kept k ON k.labels = c.labels)
        INSERT INTO activity_daily (labels, day, node_name, changes, builds, failed_builds, runs, failed_runs)
        SELECT labels, next_day, '', changes, builds, failed_builds, runs, failed_runs
          FROM delta
         WHERE changes <> 0 OR builds <> 0 OR failed_builds <> 0 OR runs <> 0 OR failed_runs <> 0
         ORDER BY labels
        ON CONFLICT (labels, day, node_name) DO UPDATE
           SET changes = activity_daily.changes + excluded.changes, builds = activity_daily.builds + excluded.builds,
               failed_builds = activity_daily.failed_builds + excluded.failed_builds,
               runs = activity_daily.runs + excluded.runs, failed_runs = activity_daily.failed_runs + excluded.failed_runs;
        -- Label sets that no longer count anything that day (those the relabel moved away from) go: locked first, so
        -- that the check and the delete, in one later snapshot, see every count committed to them.
        PERFORM 1 FROM activity_daily
          WHERE day = next_day
            AND labels IN (SELECT labels FROM activity_daily WHERE day = next_day GROUP BY labels
                            HAVING sum(changes) = 0 AND sum(builds) = 0 AND sum(failed_builds) = 0 AND sum(runs) = 0
                               AND sum(failed_runs) = 0)
          ORDER BY labels, node_name
          FOR UPDATE;
        DELETE FROM activity_daily
         WHERE day = next_day
           AND labels IN (SELECT labels FROM activity_daily WHERE day = next_day GROUP BY labels
                           HAVING sum(changes) = 0 AND sum(builds) = 0 AND sum(failed_builds) = 0 AND sum(runs) = 0
                              AND sum(failed_runs) = 0);
        UPDATE attribution_relabel SET day_cursor = next_day;
        RETURN 'counting';
    END IF;

    RETURN st.phase;
END
$$;

-- The whole relabel from a session (an operator, a test, a benchmark): steps, each committed, until nothing is left.
CREATE PROCEDURE attribution_relabel(batch integer DEFAULT 5000)
LANGUAGE plpgsql
AS $$
DECLARE
    phase text;
BEGIN
    LOOP
        phase := attribution_relabel_step(batch);
        COMMIT;
        EXIT WHEN phase = 'idle';
        IF phase IN ('waiting', 'settling', 'busy') THEN
            PERFORM pg_sleep(0.05);
        END IF;
    END LOOP;
END
$$;

-- Template changes the stored labels do not follow yet, for the agents' metric (with the owner's rights, like the
-- step: an agent's role needs no grant on these tables).
CREATE FUNCTION attribution_relabel_pending() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
AS $$
    SELECT (SELECT coalesce(max(change_id), 0) FROM attribution_template_changes) - applied_change FROM attribution_relabel
$$;

-- Where the relabel stands, for operators and the agents' metrics: pending_changes > 0 means some labels (and the
-- daily counts) may still be those of older templates.
CREATE VIEW attribution_relabel_status AS
SELECT r.phase, attribution_relabel_pending() AS pending_changes,
       r.subjects_walked, r.subjects_changed,
       (SELECT count(*) FROM attributions) AS subjects,
       r.day_cursor AS counted_through, r.started_at, r.finished_at
  FROM attribution_relabel r;
