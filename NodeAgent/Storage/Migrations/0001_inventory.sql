-- Inventory: each distinct list of entries is stored once (content-addressed by SHA-256);
-- a scan is one small row that points at its list.

CREATE TABLE file_lists (
    list_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash bytea       NOT NULL UNIQUE,
    entry_count  integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per entry of a list. path is the relative path as text; when the name is not valid
-- UTF-8, invalid bytes appear in path as \xHH and path_bytes holds the exact bytes.
CREATE TABLE file_list_entries (
    list_id     bigint      NOT NULL REFERENCES file_lists (list_id) ON DELETE CASCADE,
    ordinal     integer     NOT NULL,
    path        text        NOT NULL,
    path_bytes  bytea,
    entry_type  "char"      NOT NULL,
    size        bigint      NOT NULL,
    modified_at timestamptz NOT NULL,
    mode        integer     NOT NULL,
    PRIMARY KEY (list_id, ordinal)
);

CREATE TABLE scans (
    scan_id          uuid        PRIMARY KEY,
    node_name        text        NOT NULL,
    mount_path       text        NOT NULL,
    collected_at     timestamptz NOT NULL,
    list_id          bigint      NOT NULL REFERENCES file_lists (list_id),
    vanished_count   integer     NOT NULL DEFAULT 0,
    unreadable_count integer     NOT NULL DEFAULT 0,
    scan_duration_ms integer     NOT NULL DEFAULT 0
);

CREATE INDEX scans_collected_at ON scans (collected_at DESC);
CREATE INDEX scans_node_collected_at ON scans (node_name, collected_at DESC);

-- The original contract: SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4;
CREATE VIEW file_monitor AS
SELECT s.node_name    AS nodename,
       s.mount_path   AS mountpath,
       (SELECT coalesce(json_agg(e.path ORDER BY e.ordinal), '[]'::json)
          FROM file_list_entries e
         WHERE e.list_id = s.list_id) AS filelist,
       s.collected_at AS collectedat
  FROM scans s;

-- Exact bytes of every entry's name, whatever its encoding.
CREATE VIEW file_entries AS
SELECT s.scan_id, s.node_name, s.mount_path, s.collected_at,
       e.path, coalesce(e.path_bytes, convert_to(e.path, 'UTF8')) AS path_bytes,
       e.entry_type, e.size, e.modified_at, e.mode
  FROM scans s
  JOIN file_list_entries e ON e.list_id = s.list_id;
