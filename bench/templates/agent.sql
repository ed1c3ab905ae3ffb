-- One agent's store (psql -v subjects=... -v n=... -v client_id=...): a batch of file events on known paths and one new path, then a process.
BEGIN;
INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
SELECT gen_random_uuid(), 'node-' || :client_id, '/mnt/node-data',
       format('cs%s-%s/hw%s/f%s.c', 101 + m % 4, lpad((m / 40)::text, 4, '0'), m % 10, m), 'modify', 'f', now(), 100, 'watch'
  FROM generate_series(:n, :n + 19) m;
INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
VALUES (gen_random_uuid(), 'node-' || :client_id, '/mnt/node-data', format('cs102-new/hw1/%s.c', gen_random_uuid()), 'create', 'f', now(), 1, 'watch');
INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, hostname, kind, started_at, mount_path)
VALUES (gen_random_uuid(), 'node-' || :client_id, :n, '/usr/bin/gcc', ARRAY['gcc'], '/workspace/cs101-0001/hw1', 'jcode-c-cs101-0001', 'compile', now(), '/mnt/node-data');
COMMIT;
