-- Process activity. One row per process (a thread group) that the agent keeps: inserted when it is seen
-- running (at the first batch after its exec), completed when it exits; both writes carry the same
-- process_id, so a retry or a late exit updates the row instead of adding one.
--   exe, cwd, argv    text (bytes that are not valid UTF-8 written \xHH), with the exact bytes beside
--                     them (exe_bytes, cwd_bytes, argv_bytes) where the text is not exact
--   argv_cut          the arguments were longer than ArgvMaxBytes and were cut there
--   kind              compile, run or other (Agent:Processes:Compile / Run globs on the executable's name)
--   source_files      the source files its arguments name, absolute (a compiler's sources, a script)
--   exit_code, signal one of them when it has ended: exit_code when it exited, signal when a signal ended it
--   missing           what could not be read from /proc at its exec (it was already gone): executable,
--                     arguments, working_directory, status, cgroup, hostname, parent_executable
CREATE TABLE process_events (
    process_id        uuid        PRIMARY KEY,
    node_name         text        NOT NULL,
    pid               integer     NOT NULL,
    ppid              integer,
    uid               integer,
    gid               integer,
    exe               text,
    exe_bytes         bytea,
    parent_exe        text,
    argv              text[],
    argv_bytes        bytea[],
    argv_cut          boolean     NOT NULL DEFAULT false,
    cwd               text,
    cwd_bytes         bytea,
    container_id      text,
    pod_uid           text,
    hostname          text,
    kind              text        NOT NULL CHECK (kind IN ('compile', 'run', 'other')),
    source_files      text[]      NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    exit_code         integer,
    signal            integer,
    duration          interval GENERATED ALWAYS AS (ended_at - started_at) STORED,
    missing           text[]      NOT NULL DEFAULT '{}',
    stored_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX process_events_node_started ON process_events (node_name, started_at);
CREATE INDEX process_events_container ON process_events (container_id, started_at) WHERE container_id IS NOT NULL;
CREATE INDEX process_events_cwd ON process_events (node_name, cwd, started_at);

-- A process is inserted running and updated at its exit: an agent role granted only SELECT and INSERT
-- (the DaemonSet's) gets UPDATE on this table too.
DO $$
DECLARE
    grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
         WHERE table_name = 'process_events' AND privilege_type = 'INSERT' AND grantee <> current_user
    LOOP
        EXECUTE format('GRANT UPDATE ON process_events TO %I', grantee_name);
    END LOOP;
END
$$;

-- Builds and runs, per working directory, with how they ended.
CREATE VIEW builds_and_runs AS
SELECT node_name, cwd, kind, exe, argv, source_files, started_at, ended_at, duration, exit_code, signal,
       container_id, pod_uid, hostname, process_id
  FROM process_events
 WHERE kind IN ('compile', 'run');

-- Builds that failed: a compiler that exited non-zero or was killed by a signal.
CREATE VIEW failing_builds AS
SELECT node_name, cwd, exe, argv, source_files, started_at, ended_at, exit_code, signal, container_id, hostname, process_id
  FROM process_events
 WHERE kind = 'compile' AND ended_at IS NOT NULL AND (exit_code <> 0 OR signal IS NOT NULL);

-- Everything kept that ran in one container, in order.
CREATE FUNCTION processes_in_container(container text)
RETURNS SETOF process_events
LANGUAGE sql STABLE
AS $$
    SELECT * FROM process_events WHERE container_id = container ORDER BY started_at, process_id
$$;
