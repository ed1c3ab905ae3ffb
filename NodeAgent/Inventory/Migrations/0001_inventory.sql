-- Inventory. Each distinct list of entries is stored once, content-addressed by SHA-256; a scan is
-- one small row that points at its list. A list is stored column-wise in chunks of up to a few
-- thousand entries (arrays, compressed by TOAST), which keeps a million-entry list to a few hundred
-- rows and makes writing it one binary COPY of those rows.

CREATE TABLE file_lists (
    list_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash bytea       NOT NULL UNIQUE,
    entry_count  integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Entries first_ordinal .. first_ordinal + cardinality(paths) - 1 of a list, in the list's order
-- (tree order: each directory followed by everything below it, the entries of one directory in
-- byte order of their names). Element i of every array describes the same entry:
--   paths        relative path as text; bytes that are not valid UTF-8 are written \xHH
--   path_bytes   NULL when every name of the chunk is valid UTF-8; otherwise the exact bytes of
--                each name that is not (NULL elements for the names that are)
--   entry_types  one letter per entry, as find -printf %y: f d l p s c b (U unknown)
--   sizes, modified_at, modes (permission bits, mode & 07777)
-- Deleting a list deletes its chunks; a scan's reference to its list keeps both while it exists.
CREATE TABLE file_list_chunks (
    list_id       bigint        NOT NULL REFERENCES file_lists (list_id) ON DELETE CASCADE,
    first_ordinal integer       NOT NULL,
    paths         text[]        NOT NULL,
    path_bytes    bytea[],
    entry_types   text          NOT NULL,
    sizes         bigint[]      NOT NULL,
    modified_at   timestamptz[] NOT NULL,
    modes         integer[]     NOT NULL,
    PRIMARY KEY (list_id, first_ordinal)
);

-- lz4 where the server has it (PostgreSQL 14+ built with lz4); the default compression otherwise.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE file_list_chunks
                 ALTER COLUMN paths SET COMPRESSION lz4,
                 ALTER COLUMN sizes SET COMPRESSION lz4,
                 ALTER COLUMN modified_at SET COMPRESSION lz4,
                 ALTER COLUMN modes SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

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
       (SELECT coalesce(json_agg(e.path ORDER BY c.first_ordinal, e.n), '[]'::json)
          FROM file_list_chunks c
         CROSS JOIN LATERAL unnest(c.paths) WITH ORDINALITY AS e(path, n)
         WHERE c.list_id = s.list_id) AS filelist,
       s.collected_at AS collectedat
  FROM scans s;

-- One row per entry of every scan, with the exact bytes of its name whatever its encoding.
CREATE VIEW file_entries AS
SELECT s.scan_id, s.node_name, s.mount_path, s.collected_at,
       c.first_ordinal + e.n::integer - 1 AS ordinal,
       e.path,
       coalesce(e.path_bytes, convert_to(e.path, 'UTF8')) AS path_bytes,
       substr(c.entry_types, e.n::integer, 1) AS entry_type,
       e.size, e.modified_at, e.mode
  FROM scans s
  JOIN file_list_chunks c ON c.list_id = s.list_id
 CROSS JOIN LATERAL unnest(c.paths, c.path_bytes, c.sizes, c.modified_at, c.modes)
       WITH ORDINALITY AS e(path, path_bytes, size, modified_at, mode, n);
