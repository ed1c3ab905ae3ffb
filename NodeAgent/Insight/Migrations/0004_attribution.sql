-- Attribution: who a file or a process belongs to, as text labels (course, student, assignment, ...) derived from
-- named templates on paths and container hostnames.
--
-- The templates live here, in the database, rather than in the agents' configuration: every agent and every query
-- then sees one definition, and changing it is one statement, with no rollout of a DaemonSet. Labels are kept once
-- per distinct path or hostname (attributions), never on the events: an event gets its labels by joining its path,
-- so a template change rewrites that small table (backfill) and the whole history follows, while event tables stay
-- append-only.
--
-- Template syntax (matched against the whole subject):
--   {name}   a label: one or more characters of one path segment (no '/'); the shortest that lets the rest match
--   *        any characters within a segment;  ?  one character within a segment
--   **       any characters across segments;  a final '/**' also matches the directory itself
--   anything else is literal.
-- A 'path' template matches a path relative to the monitored directory (Agent:MountPath), as file events store it,
-- or an absolute path when the template starts with '/' (a process working outside the monitored directory, e.g.
-- in a container: '/workspace/{course}-{student}/{assignment}/**'). A 'hostname' template matches a container's
-- hostname. The first template that matches, by priority then name, gives the labels; a subject that matches none
-- keeps empty labels and its raw path.

CREATE TABLE attribution_templates (
    name        text        PRIMARY KEY,
    applies_to  text        NOT NULL CHECK (applies_to IN ('path', 'hostname')),
    pattern     text        NOT NULL,
    priority    integer     NOT NULL DEFAULT 100,
    -- Derived from pattern when a template is written (attribution_compile); any value given is replaced.
    regex       text        NOT NULL,
    label_names text[]      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per distinct subject ever stored, with the template that matched it (NULL: none) and its labels ('{}':
-- none). A subject is a file's path (kind 'path'), or a process's attribution key (kind 'process': its container's
-- hostname and its path, see process_events.attribution_key), so that events of either kind find their labels by
-- one indexed join.
CREATE TABLE attributions (
    subject_kind text  NOT NULL CHECK (subject_kind IN ('path', 'process')),
    subject      text  NOT NULL,
    template     text,
    labels       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (subject_kind, subject)
);

-- Written as each new path arrives, from many agents at once: without the pending list (fastupdate) no insert pays
-- for merging everyone's pending entries at once.
CREATE INDEX attributions_labels ON attributions USING gin (labels jsonb_path_ops) WITH (fastupdate = off);

-- A process is attributed by its container's hostname and by a path: its first source file, or else its working
-- directory, relative to the monitored directory when it lies below it (the agent stores that directory beside
-- each process). The key is the hostname ('' for none), a newline (which no hostname contains), then the path.
ALTER TABLE process_events ADD COLUMN mount_path text;
ALTER TABLE process_events ADD COLUMN attribution_key text GENERATED ALWAYS AS (
    coalesce(hostname, '') || E'\n' ||
    CASE
        WHEN mount_path IS NOT NULL AND starts_with(coalesce(source_files[1], cwd), rtrim(mount_path, '/') || '/')
            THEN substr(coalesce(source_files[1], cwd), length(rtrim(mount_path, '/')) + 2)
        ELSE coalesce(source_files[1], cwd, '')
    END) STORED;

-- The kept process that started this one and its kind, when there is one (gcc, compile, for the cc1 it runs); the
-- agent records them from now on, and rows stored before are linked here by pid and time. A build is a compiler
-- that no kept compiler started.
ALTER TABLE process_events ADD COLUMN parent_process_id uuid;
ALTER TABLE process_events ADD COLUMN parent_kind text CHECK (parent_kind IN ('compile', 'run', 'other'));
ALTER TABLE process_events ADD COLUMN is_build boolean
    GENERATED ALWAYS AS (kind = 'compile' AND parent_kind IS DISTINCT FROM 'compile') STORED;
UPDATE process_events c
   SET parent_process_id = q.process_id, parent_kind = q.kind
  FROM process_events q
 WHERE q.node_name = c.node_name AND q.pid = c.ppid AND q.process_id <> c.process_id
   AND q.started_at <= c.started_at AND (q.ended_at IS NULL OR q.ended_at >= c.started_at);

-- The events of a set of subjects over time (activity, history, recency).
-- Counting builds and runs per subject reads this index alone, not the wide rows (arguments, paths).
CREATE INDEX process_events_attribution ON process_events (attribution_key, started_at)
    INCLUDE (kind, is_build, exit_code, signal);
CREATE INDEX file_events_path_time ON file_events (path, occurred_at);
-- Events arrive in time order, so a block range index finds a time range across all nodes for a few pages of index.
CREATE INDEX file_events_occurred ON file_events USING brin (occurred_at);
CREATE INDEX process_events_started ON process_events USING brin (started_at);
CREATE INDEX file_events_renamed_from ON file_events (old_path, occurred_at) WHERE old_path IS NOT NULL;
CREATE INDEX file_state_path ON file_state (path);

-- Turns a template's pattern into an anchored regular expression and the names of its labels, in order. Every
-- quantifier is non-greedy, so each label takes the shortest value that lets the rest match
-- ('jcode-{subject}-{course}-{student}' on 'jcode-c-cs101-0042' gives subject 'c', course 'cs101', student '0042').
CREATE FUNCTION attribution_compile(pattern text, OUT regex text, OUT label_names text[])
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    i integer := 1;
    n integer := length(pattern);
    c text;
    close_at integer;
    label text;
BEGIN
    IF pattern IS NULL OR pattern = '' THEN
        RAISE EXCEPTION 'attribution template pattern is empty';
    END IF;
    regex := '^';
    label_names := '{}';
    WHILE i <= n LOOP
        c := substr(pattern, i, 1);
        IF c = '{' THEN
            close_at := strpos(substr(pattern, i + 1), '}');
            IF close_at = 0 THEN
                RAISE EXCEPTION 'attribution template "%": "{" at character % is not closed', pattern, i;
            END IF;
            label := substr(pattern, i + 1, close_at - 1);
            IF label !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
                RAISE EXCEPTION 'attribution template "%": label name "%" must be letters, digits and _ (not starting with a digit)', pattern, label;
            END IF;
            IF label = ANY (label_names) THEN
                RAISE EXCEPTION 'attribution template "%": label "%" appears twice', pattern, label;
            END IF;
            label_names := label_names || label;
            regex := regex || '([^/]+?)';
            i := i + close_at + 1;
        ELSIF c = '}' THEN
            RAISE EXCEPTION 'attribution template "%": "}" at character % has no "{"', pattern, i;
        ELSIF substr(pattern, i, 3) = '/**' AND i + 3 > n THEN
            regex := regex || '(?:/.*?)??';
            i := i + 3;
        ELSIF substr(pattern, i, 3) = '**/' THEN
            regex := regex || '(?:.*?/)??';
            i := i + 3;
        ELSIF substr(pattern, i, 2) = '**' THEN
            regex := regex || '.*?';
            i := i + 2;
        ELSIF c = '*' THEN
            regex := regex || '[^/]*?';
            i := i + 1;
        ELSIF c = '?' THEN
            regex := regex || '[^/]';
            i := i + 1;
        ELSIF c ~ '[A-Za-z0-9_/-]' THEN
            regex := regex || c;
            i := i + 1;
        ELSE
            regex := regex || '\' || c;
            i := i + 1;
        END IF;
    END LOOP;
    IF cardinality(label_names) = 0 THEN
        RAISE EXCEPTION 'attribution template "%" names no label: write one as {name}', pattern;
    END IF;
    regex := regex || '$';
END
$$;

CREATE FUNCTION attribution_templates_compile() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT c.regex, c.label_names INTO NEW.regex, NEW.label_names FROM attribution_compile(NEW.pattern) c;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER attribution_templates_compile
BEFORE INSERT OR UPDATE OF pattern, applies_to, priority ON attribution_templates
FOR EACH ROW EXECUTE FUNCTION attribution_templates_compile();

-- The first template of one kind ('path', 'hostname') that matches a text, and the labels it gives.
CREATE FUNCTION attribution_match(kind text, subject text, OUT template text, OUT labels jsonb)
LANGUAGE sql STABLE
AS $$
    SELECT t.name, (SELECT jsonb_object_agg(u.name, m[u.n]) FROM unnest(t.label_names) WITH ORDINALITY AS u(name, n))
      FROM attribution_templates t
     CROSS JOIN LATERAL regexp_match(subject, t.regex) AS m
     WHERE t.applies_to = kind
       AND m IS NOT NULL
       AND (kind = 'hostname' OR (left(t.pattern, 1) = '/') = (left(subject, 1) = '/'))
     ORDER BY t.priority, t.name
     LIMIT 1
$$;

-- The labels of one subject under the current templates. A process's are those of its path overlaid by those of its
-- container's hostname (the hostname wins where both give the same label); its template is the hostname's if any.
CREATE FUNCTION attribution_of(kind text, subject text, OUT template text, OUT labels jsonb)
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(h.template, p.template),
           CASE WHEN h.template IS NULL AND p.template IS NULL THEN '{}'::jsonb
                ELSE coalesce(p.labels, '{}') || coalesce(h.labels, '{}') END
      FROM (SELECT CASE WHEN kind = 'process' THEN left(subject, strpos(subject, E'\n') - 1) END AS hostname,
                   CASE WHEN kind = 'process' THEN substr(subject, strpos(subject, E'\n') + 1) ELSE subject END AS path) AS s
      LEFT JOIN LATERAL attribution_match('path', nullif(s.path, '')) AS p ON true
      LEFT JOIN LATERAL attribution_match('hostname', nullif(s.hostname, '')) AS h ON true
$$;

-- Adds the subjects of newly stored rows. Runs with the owner's rights (an agent's role needs no grant on
-- attributions). Holding a SHARE lock on the templates while labelling makes a concurrent template change wait
-- for this transaction, and this one wait for it, so no row is labelled by templates that are being replaced.
-- Subjects are inserted in key order so that agents adding the same new paths at once cannot deadlock.
CREATE FUNCTION attributions_add(kind text, subjects text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    LOCK TABLE attribution_templates IN SHARE MODE;
    INSERT INTO attributions (subject_kind, subject, template, labels)
    SELECT s.kind, s.subject, a.template, coalesce(a.labels, '{}')
      FROM (SELECT DISTINCT kind, p AS subject FROM unnest(subjects) AS p WHERE p IS NOT NULL) AS s
      LEFT JOIN LATERAL attribution_of(s.kind, s.subject) AS a ON true
     WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = s.kind AND x.subject = s.subject)
     ORDER BY s.kind, s.subject
    ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION paths_attribute() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM attributions_add('path', ARRAY(SELECT DISTINCT path FROM added));
    RETURN NULL;
END
$$;

CREATE TRIGGER file_events_attribute
AFTER INSERT ON file_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION paths_attribute();

-- The current state is written beside the events, so its paths are nearly always known already; a path that is
-- only in the state (written before the events existed) is labelled too.
CREATE TRIGGER file_state_attribute
AFTER INSERT ON file_state REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION paths_attribute();

CREATE FUNCTION process_events_attribute() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM attributions_add('process', ARRAY(SELECT DISTINCT attribution_key FROM added));
    RETURN NULL;
END
$$;

CREATE TRIGGER process_events_attribute_insert
AFTER INSERT ON process_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION process_events_attribute();

-- A template change relabels every subject: history follows the templates.
CREATE FUNCTION attributions_relabel() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    WITH fresh AS (
        SELECT s.subject_kind, s.subject, a.template, coalesce(a.labels, '{}') AS labels
          FROM attributions s
          LEFT JOIN LATERAL attribution_of(s.subject_kind, s.subject) AS a ON true)
    UPDATE attributions x
       SET template = f.template, labels = f.labels
      FROM fresh f
     WHERE x.subject_kind = f.subject_kind AND x.subject = f.subject
       AND (x.template IS DISTINCT FROM f.template OR x.labels <> f.labels);
    RETURN NULL;
END
$$;

CREATE TRIGGER attribution_templates_relabel
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attribution_templates
FOR EACH STATEMENT EXECUTE FUNCTION attributions_relabel();

-- Subjects stored before this migration.
INSERT INTO attributions (subject_kind, subject)
SELECT DISTINCT 'path', path FROM file_events
UNION
SELECT DISTINCT 'path', path FROM file_state
UNION
SELECT DISTINCT 'process', attribution_key FROM process_events;

-- Events with their labels. Every stored path and process key has its row in attributions (the triggers above, in
-- the same transaction, and the backfill), so the inner join loses nothing, and a label filter can start from the
-- labels' index.
CREATE VIEW labelled_file_events AS
SELECT e.*, a.labels, a.template
  FROM file_events e
  JOIN attributions a ON a.subject_kind = 'path' AND a.subject = e.path;

CREATE VIEW labelled_process_events AS
SELECT p.*, a.labels, a.template
  FROM process_events p
  JOIN attributions a ON a.subject_kind = 'process' AND a.subject = p.attribution_key;
