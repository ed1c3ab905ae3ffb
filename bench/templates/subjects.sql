-- SUBJECTS distinct subjects as the agents store them: nine in ten file paths below the mount (one event each, spread
-- over the last 30 days, so the hourly and daily counts hold them), one in ten processes in a jcode container (one
-- key each: hostname and working directory). A 'workspace' path template labels them as they arrive.
--   psql -d monitordb -v subjects=170000 -f bench/templates/subjects.sql
\if :{?subjects} \else \set subjects 170000 \endif
INSERT INTO attribution_templates (name, applies_to, pattern) VALUES ('workspace', 'path', '{course}-{student}/{assignment}/**');
INSERT INTO file_events (event_id, node_name, mount_path, path, event_type, entry_type, occurred_at, size, source)
SELECT gen_random_uuid(), 'node-' || (n % 8), '/mnt/node-data',
       format('cs%s-%s/hw%s/f%s.c', 101 + n % 4, lpad((n / 40)::text, 4, '0'), n % 10, n),
       'modify', 'f', now() - (n % 720) * interval '1 hour', 100, 'watch'
  FROM generate_series(1, :subjects * 9 / 10) n;
INSERT INTO process_events (process_id, node_name, pid, exe, argv, cwd, hostname, kind, started_at, ended_at, exit_code, mount_path)
SELECT gen_random_uuid(), 'node-' || (n % 8), n, '/usr/bin/gcc', ARRAY['gcc', 'main.c'], format('/workspace/cs101-%s/hw%s/d%s', lpad((n / 40)::text, 4, '0'), n % 10, n),
       format('jcode-c-cs101-%s', lpad((n / 40)::text, 4, '0')), 'compile', now() - (n % 720) * interval '1 hour',
       now() - (n % 720) * interval '1 hour' + interval '1 second', 0, '/mnt/node-data'
  FROM generate_series(1, :subjects - :subjects * 9 / 10) n;
ANALYZE;
SELECT subject_kind, count(*) FROM attributions GROUP BY 1 ORDER BY 1;
