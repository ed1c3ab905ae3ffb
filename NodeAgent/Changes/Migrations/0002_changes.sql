-- File changes. An event is one change of one path (create, modify, delete, rename, attrib), seen by
-- the watch (source 'watch') or by comparing a scan with the current state (source 'scan'). The
-- current state per node and path is kept beside the events, changed in the same transaction as the
-- events that change it, so that after every stored batch it equals what the events say. Contents of
-- changed source files are kept once per distinct SHA-256.

-- Contents, written once. PostgreSQL compresses them (TOAST, lz4 where the server has it) from a
-- small size on (toast_tuple_target), so a snapshot is read back with a plain SELECT, no decoder.
CREATE TABLE file_contents (
    sha256        bytea       PRIMARY KEY,
    size          bigint      NOT NULL,
    content       bytea       NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now()
) WITH (toast_tuple_target = 128);

DO $$
BEGIN
    EXECUTE 'ALTER TABLE file_contents ALTER COLUMN content SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

-- Paths as in file_list_chunks: text (bytes that are not valid UTF-8 written \xHH), and their exact
-- bytes where the text is not exact.
--   entry_type   as find -printf %y: f d l p s c b (U unknown)
--   size, modified_at, mode (permission bits), sha256: the entry after the change (before it, for a
--                delete); sha256 is NULL for anything but a regular file, and when not_hashed
--   snapshot     the sha256 of the content kept in file_contents, when it was kept
--   not_hashed   larger than HashMaxBytes (or it could not be read)
--   torn         it kept changing while it was read: hash and snapshot may mix two versions
--   too_large    its name asks for a snapshot but it is larger than SnapshotMaxBytes
--   event_id     a UUID version 7 that increases in the order the agent recorded the events (ORDER BY
--                event_id is that order)
--   occurred_at  when the agent saw the change (UTC, the agent's clock); stored_at when it was stored
CREATE TABLE file_events (
    event_id       uuid        PRIMARY KEY,
    node_name      text        NOT NULL,
    mount_path     text        NOT NULL,
    path           text        NOT NULL,
    path_bytes     bytea,
    old_path       text,
    old_path_bytes bytea,
    event_type     text        NOT NULL CHECK (event_type IN ('create', 'modify', 'delete', 'rename', 'attrib')),
    entry_type     text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    size           bigint,
    modified_at    timestamptz,
    mode           integer,
    sha256         bytea,
    snapshot       bytea       REFERENCES file_contents (sha256),
    not_hashed     boolean     NOT NULL DEFAULT false,
    torn           boolean     NOT NULL DEFAULT false,
    too_large      boolean     NOT NULL DEFAULT false,
    source         text        NOT NULL CHECK (source IN ('watch', 'scan'))
);

-- History of one file (by its path now, or the path it was renamed from), and what changed on a node since T.
CREATE INDEX file_events_path ON file_events (node_name, path, occurred_at);
CREATE INDEX file_events_old_path ON file_events (node_name, old_path, occurred_at) WHERE old_path IS NOT NULL;
CREATE INDEX file_events_node_time ON file_events (node_name, occurred_at);

-- The current state: one row per node, mount and path (keyed by the exact bytes).
CREATE TABLE file_state (
    node_name     text        NOT NULL,
    mount_path    text        NOT NULL,
    path_bytes    bytea       NOT NULL,
    path          text        NOT NULL,
    entry_type    text        NOT NULL,
    size          bigint      NOT NULL,
    modified_at   timestamptz NOT NULL,
    mode          integer     NOT NULL,
    sha256        bytea,
    last_event_id uuid        NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (node_name, mount_path, path_bytes)
);

-- Every version of every file: its events that carry content (create, modify, rename), with the content when kept.
CREATE VIEW file_versions AS
SELECT e.node_name, e.mount_path, e.path, e.event_type, e.occurred_at, e.size, e.modified_at, e.sha256,
       e.snapshot IS NOT NULL AS has_content, e.torn, e.too_large, e.not_hashed, e.source, e.event_id,
       c.content
  FROM file_events e
  LEFT JOIN file_contents c ON c.sha256 = e.snapshot
 WHERE e.event_type IN ('create', 'modify', 'rename') AND e.entry_type = 'f';

-- Every change on a node since a moment, oldest first.
CREATE FUNCTION file_changes_since(node text, since timestamptz)
RETURNS SETOF file_events
LANGUAGE sql STABLE
AS $$
    SELECT * FROM file_events WHERE node_name = node AND occurred_at >= since ORDER BY event_id
$$;

-- An agent may run with a role that is only granted SELECT and INSERT on new tables (the DaemonSet's,
-- when a Job migrates as the owner): the current state is also updated and deleted, so every role that
-- may insert into it gets that too.
DO $$
DECLARE
    grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
         WHERE table_name = 'file_state' AND privilege_type = 'INSERT' AND grantee <> current_user
    LOOP
        EXECUTE format('GRANT UPDATE, DELETE ON file_state TO %I', grantee_name);
    END LOOP;
END
$$;
