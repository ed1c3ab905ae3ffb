-- Least privilege for the agents' role. The owner of the tables migrates (the Job nodeagent-migrate in Kubernetes) and
-- the agents log in with a role granted SELECT and INSERT on every table by default (the CloudNativePG values). Such a
-- role must write only its own node's rows, and nothing the owner's triggers derive from them:
--   - the migrations table, the labels (attributions), the templates and the activity counts are the owner's: the
--     role keeps SELECT and loses every other privilege; the triggers that write them run with the owner's rights;
--   - every row it writes into scans, file_events, file_state and process_events carries the node that its
--     transaction declares (SET LOCAL node_monitor.node_name), and only such rows may be updated or deleted by it;
--   - a file content it adds is the content its SHA-256 says, since every node's events may point at it.
-- None of this applies to the tables' owner or a superuser (the Aspire AppHost and the single-user Bitnami setup
-- run the agent as the owner), exactly as row-level security exempts them. With one role shared by every node the
-- declared node is whatever the session says: this binds rows to the declaration, not to a credential (README,
-- "What the agent's role can do").

-- The node the current transaction writes for; NULL when it declared none.
CREATE FUNCTION node_monitor_node() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT nullif(current_setting('node_monitor.node_name', true), '')
$$;

-- Whether the current role is held to its declared node on a table: what row-level security exempts (a superuser, a
-- role with BYPASSRLS, the owner and the roles that have its privileges) is exempt here too.
CREATE FUNCTION node_monitor_restricted(tbl oid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT NOT (r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'USAGE'))
      FROM pg_class c, pg_roles r
     WHERE c.oid = tbl AND r.rolname = current_user
$$;

-- The check of the tables the agent fills with binary COPY, which row-level security would refuse outright for a role
-- subject to it ("COPY FROM not supported with row-level security"): once per statement, over the rows it wrote (and,
-- for an update, the rows as they were).
CREATE FUNCTION node_rows_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    node text;
    other text;
BEGIN
    IF NOT node_monitor_restricted(TG_RELID) THEN
        RETURN NULL;
    END IF;
    node := node_monitor_node();
    IF TG_OP = 'UPDATE' THEN
        SELECT r.node_name INTO other FROM removed r WHERE r.node_name IS DISTINCT FROM node LIMIT 1;
    END IF;
    IF other IS NULL THEN
        SELECT a.node_name INTO other FROM added a WHERE a.node_name IS DISTINCT FROM node LIMIT 1;
    END IF;
    IF other IS NULL THEN
        RETURN NULL;
    END IF;
    IF node IS NULL THEN
        RAISE EXCEPTION 'role % has not declared its node (node_monitor.node_name) and may not write %', current_user, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'role % writes for node % and may not write rows of node % in %', current_user, node, other, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER scans_node
AFTER INSERT ON scans REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION node_rows_check();

CREATE TRIGGER file_events_node
AFTER INSERT ON file_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION node_rows_check();

CREATE TRIGGER process_events_node_insert
AFTER INSERT ON process_events REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION node_rows_check();

CREATE TRIGGER process_events_node_update
AFTER UPDATE ON process_events REFERENCING OLD TABLE AS removed NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION node_rows_check();

-- The current state is upserted and deleted, never copied: row-level security. Another node's rows are invisible to
-- an update or a delete (nothing happens to them), and an upsert that meets one is refused.
ALTER TABLE file_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY file_state_read ON file_state FOR SELECT USING (true);
CREATE POLICY file_state_insert ON file_state FOR INSERT WITH CHECK (node_name = (SELECT node_monitor_node()));
CREATE POLICY file_state_update ON file_state FOR UPDATE
    USING (node_name = (SELECT node_monitor_node())) WITH CHECK (node_name = (SELECT node_monitor_node()));
CREATE POLICY file_state_delete ON file_state FOR DELETE USING (node_name = (SELECT node_monitor_node()));

-- Contents are shared by every node's events, found by their SHA-256: a content stored under another content's hash
-- would be shown for every later version with that hash, on any node.
CREATE FUNCTION file_contents_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF node_monitor_restricted(TG_RELID) AND EXISTS (SELECT 1 FROM added a WHERE a.sha256 <> sha256(a.content)) THEN
        RAISE EXCEPTION 'role % may only store a content under its own SHA-256 in file_contents', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER file_contents_check
AFTER INSERT ON file_contents REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION file_contents_check();

-- The owner's tables: every role but the owner keeps what it may read and nothing else (the default privileges gave
-- the agents' role INSERT on them, and on every table the owner creates later: a later owner-only table needs the
-- same revoke).
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT c.oid::regclass AS tbl, a.grantee, bool_or(a.privilege_type = 'SELECT') AS reads
          FROM pg_class c
         CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid IN ('node_monitor_migrations'::regclass, 'attributions'::regclass, 'attribution_templates'::regclass,
                         'activity_hourly'::regclass, 'activity_daily'::regclass,
                         'attribution_template_changes'::regclass, 'attribution_relabel'::regclass)
           AND a.grantee <> c.relowner
         GROUP BY 1, 2
        HAVING bool_or(a.privilege_type <> 'SELECT')
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', g.tbl,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
        IF g.reads THEN
            EXECUTE format('GRANT SELECT ON %s TO %s', g.tbl,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
        END IF;
    END LOOP;

    -- 0003 gave UPDATE on the whole row to every role that inserts processes; an exit changes three columns.
    FOR g IN
        SELECT DISTINCT a.grantee
          FROM pg_class c
         CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid = 'process_events'::regclass AND a.grantee <> c.relowner AND a.privilege_type = 'UPDATE'
    LOOP
        EXECUTE format('REVOKE UPDATE ON process_events FROM %1$s; GRANT UPDATE (ended_at, exit_code, signal) ON process_events TO %1$s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
END
$$;

-- The triggers that label new paths and processes and count activity write the owner's tables: they run with the
-- owner's rights themselves, so the functions they call need not be callable by anyone else (called directly, those
-- would add labels and counts for any rows given to them). ALTER, not CREATE OR REPLACE: the bodies stay as 0004,
-- 0005 and 0007 left them.
ALTER FUNCTION paths_attribute() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION process_events_attribute() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION process_events_count_inserted() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION process_events_count_updated() SECURITY DEFINER SET search_path FROM CURRENT;
REVOKE EXECUTE ON FUNCTION attributions_add(text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION process_events_count(process_events[], process_events[]) FROM PUBLIC;
