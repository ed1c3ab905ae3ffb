-- A class's worth of agent output: STUDENTS students of 4 courses working for DAYS days on assignments (one
-- every 3 days: hw1..hw10 in 30 days) on 8 nodes, written into file_events, file_state, file_contents and
-- process_events the way the agents would have written them, for timing the queries teaching staff run
-- (bench/views.sh). The volume grows linearly with STUDENTS and with DAYS.
--
--   psql -d monitordb -v students=200 -v days=30 -v end=now -v seed=1 -v tz=UTC -f bench/classes/generate.sql
--
-- Every variable is optional (defaults above). end is the moment the data stop (nothing happens after it;
-- processes running then have no end); tz is the students' time zone, for their working hours (mostly
-- 10:00-02:00 local). The same variables, end included, give the same data.
--
-- Model. Student n of course c (cs101, cs102, ds201, se301 in turn; n = 0001, 0002, ... within a course) works
-- in {c}-{n}/hw{k}/ below the mount /mnt/node-data of one of 8 nodes; hw k is released on day 3(k-1) and most
-- of its sessions fall in the 5 days after that. A session is a run of steps minutes apart: a save of one
-- file, a build (gcc directly or through make), a `make clean`, a run of python3 main.py (ds201); a successful
-- build writes a.out and is usually followed by ./a.out. Files are created from a template at the assignment's
-- first session; sources grow from ~200 B to up to ~8 KB over their versions, and every version's content is a
-- prefix of one C-like (or Python) text per file, so consecutive versions share most of their bytes, like real
-- edits. Half the students work in a jcode container (hostname jcode-{subject}-{course}-{student}, cwd
-- /workspace/...), the others on the host.
--
-- The rows go in through plain INSERT ... SELECT into the real tables, so that whatever triggers a newer
-- schema has fire as they would for the agents' writes; where the attribution templates table exists (0004), the
-- workspace and jcode templates go in first. The tables must be empty.

\set ON_ERROR_STOP on
\if :{?students} \else \set students 200 \endif
\if :{?days} \else \set days 30 \endif
\if :{?end} \else \set end now \endif
\if :{?seed} \else \set seed 1 \endif
\if :{?tz} \else \set tz UTC \endif
\set QUIET on
\pset footer off

\set gen_started `date +%s.%N`

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM file_events) OR EXISTS (SELECT 1 FROM file_state)
       OR EXISTS (SELECT 1 FROM file_contents) OR EXISTS (SELECT 1 FROM process_events) THEN
        RAISE EXCEPTION 'generate.sql fills empty tables only: file_events, file_state, file_contents or process_events has rows';
    END IF;
END
$$;

BEGIN;
SET LOCAL work_mem = '256MB';
SET LOCAL temp_buffers = '512MB';

CREATE TEMP TABLE g_cfg ON COMMIT DROP AS
SELECT :students::integer AS students,
       :days::integer AS days,
       :'end'::timestamptz AS end_at,
       :'tz'::text AS tz,
       -- Local midnight of the first day: day DAYS-1 is the one end falls in.
       date_trunc('day', :'end'::timestamptz AT TIME ZONE :'tz') - (:days - 1) * interval '1 day' AS day0;

DO $$
BEGIN
    IF (SELECT students < 1 OR days < 1 FROM g_cfg) THEN
        RAISE EXCEPTION 'generate.sql: students and days must be at least 1';
    END IF;
END
$$;

-- Uniform [0, 1) from a seeded hash of up to four keys: every random choice is a function of what it is
-- about, so the data do not depend on plans or on the order rows are produced in.
SELECT format($fmt$
CREATE FUNCTION pg_temp.rnd(a bigint, b bigint DEFAULT 0, c bigint DEFAULT 0, d bigint DEFAULT 0) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $body$
        SELECT (hashint8extended(d # hashint8extended(c # hashint8extended(b # hashint8extended(a, %1$s), %1$s), %1$s), %1$s)
                & 4503599627370495)::double precision / 4503599627370496
    $body$
$fmt$, :seed::bigint) \gexec

-- A UUID version 7: the millisecond (48 bits), the version, 12 bits (EventIds' counter), the variant, then 62 bits
-- of a hash. Every parameter is used once, so that calls are inlined whatever their arguments.
CREATE FUNCTION pg_temp.uuid7(ms bigint, counter bigint, noise bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT (lpad(to_hex(ms), 12, '0') || '7' || lpad(to_hex(counter & 4095), 3, '0')
                || to_hex((noise & 4611686018427387903) | x'8000000000000000'::bigint))::uuid
    $$;

CREATE FUNCTION pg_temp.epoch_ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(date_part('epoch', t) * 1000)::bigint $$;

-- Students: course, number (text, leading zeros), node, container or host, how much they work.
CREATE TEMP TABLE g_student ON COMMIT DROP AS
SELECT s, c.ci, c.course, c.subject, x.student, c.course || '-' || x.student AS dir,
       'node-' || (1 + floor(pg_temp.rnd(1, s) * 8))::integer AS node,
       pg_temp.rnd(2, s) < 0.5 AS in_container,
       0.35 + 1.3 * pg_temp.rnd(3, s) AS diligence,
       pg_temp.rnd(4, s) < 0.35 AS keeps_notes,
       pg_temp.rnd(5, s) < 0.3 AS uses_make,
       CASE WHEN pg_temp.rnd(2, s) < 0.5 THEN 1000 ELSE 100000 + c.ci * 10000 + (s - 1) / 4 END AS uid,
       CASE WHEN pg_temp.rnd(2, s) < 0.5 THEN 1000 ELSE 100000 + c.ci * 10000 END AS gid
  FROM generate_series(1, :students) s
  JOIN (VALUES (0, 'cs101', 'c'), (1, 'cs102', 'c'), (2, 'ds201', 'py'), (3, 'se301', 'c')) c(ci, course, subject)
    ON c.ci = (s - 1) % 4
 CROSS JOIN LATERAL (SELECT ((s - 1) / 4 + 1)::text AS n) n
 CROSS JOIN LATERAL (SELECT lpad(n.n, greatest(4, length(n.n)), '0') AS student) x;
ANALYZE g_student;

-- When they work (local hour of a session's start): evenings most, hardly at dawn.
CREATE TEMP TABLE g_hour ON COMMIT DROP AS
SELECT h, coalesce(sum(w) OVER (ORDER BY h ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) / total AS lo,
       sum(w) OVER (ORDER BY h) / total AS hi
  FROM (SELECT h, w, sum(w) OVER () AS total
          FROM unnest(ARRAY[6, 4, 2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 5, 6, 5, 6, 7, 7, 7, 6, 5, 6, 8, 9, 9, 8]::numeric[])
               WITH ORDINALITY AS u(w, o)
         CROSS JOIN LATERAL (SELECT (o - 1)::integer AS h) x) w;

-- Assignments per student: how many sessions, and whether there is a notes file, a scratch test.c, a rename.
CREATE TEMP TABLE g_hw ON COMMIT DROP AS
SELECT h.*, h.has_notes AND pg_temp.rnd(14, s, k) < 0.25 AS renames_notes
  FROM (SELECT st.*, k, 3 * (k - 1) AS release_day,
               CASE WHEN pg_temp.rnd(10, s, k) < 0.04 THEN 0
                    ELSE 1 + floor(pg_temp.rnd(11, s, k) * 7 * st.diligence)::integer END AS nsess,
               pg_temp.rnd(12, s, k) < 0.12 AS has_scratch,
               st.keeps_notes AND pg_temp.rnd(13, s, k) < 0.6 AS has_notes
          FROM g_student st CROSS JOIN g_cfg cfg CROSS JOIN generate_series(1, greatest(1, (cfg.days + 2) / 3)) k) h;
ANALYZE g_hw;

CREATE TEMP TABLE g_session ON COMMIT DROP AS
SELECT x.*,
       row_number() OVER (PARTITION BY s, k ORDER BY start_at) = 1 AS first_of_hw,
       row_number() OVER (PARTITION BY s, k ORDER BY start_at DESC) = 1 AS last_of_hw,
       row_number() OVER (PARTITION BY s ORDER BY start_at) = 1 AS first_of_student
  FROM (SELECT h.*, j, (h.s::bigint * 1024 + h.k) * 64 + j AS sess,
               d.day,
               (cfg.day0 + d.day * interval '1 day' + hr.h * interval '1 hour'
                + pg_temp.rnd(23, h.s, h.k, j) * interval '1 hour') AT TIME ZONE cfg.tz AS start_at,
               45 + pg_temp.rnd(24, h.s, h.k, j) * 270 AS gap_s,
               8 + floor(pg_temp.rnd(25, h.s, h.k, j) * 36)::integer AS nsteps
          FROM g_hw h
         CROSS JOIN g_cfg cfg
         CROSS JOIN LATERAL generate_series(1, h.nsess) j
         CROSS JOIN LATERAL (SELECT h.release_day + CASE WHEN pg_temp.rnd(20, h.s, h.k, j) < 0.82
                                                         THEN floor(pg_temp.rnd(21, h.s, h.k, j) * 5)
                                                         ELSE 5 + floor(pg_temp.rnd(21, h.s, h.k, j) * 5) END::integer AS day) d
          JOIN g_hour hr ON pg_temp.rnd(22, h.s, h.k, j) >= hr.lo AND pg_temp.rnd(22, h.s, h.k, j) < hr.hi) x;
ANALYZE g_session;

-- Steps: strictly in order within a session (at least a tenth of the session's gap apart).
CREATE TEMP TABLE g_step ON COMMIT DROP AS
SELECT ss.s, ss.k, ss.j, ss.sess, ss.day, ss.course, ss.subject, i,
       ss.start_at + (i + 0.9 * pg_temp.rnd(30, ss.sess, i)) * ss.gap_s * interval '1 second' AS t,
       CASE WHEN a.action = 'notes' AND NOT ss.has_notes THEN 'main.c'
            WHEN a.action = 'test.c' AND NOT ss.has_scratch THEN 'util.c'
            ELSE a.action END AS action
  FROM g_session ss
 CROSS JOIN LATERAL generate_series(1, ss.nsteps) i
 CROSS JOIN LATERAL (SELECT pg_temp.rnd(31, ss.sess, i) AS r) r
 CROSS JOIN LATERAL (SELECT CASE WHEN ss.subject = 'c' THEN
                                CASE WHEN r < 0.36 THEN 'main.c' WHEN r < 0.52 THEN 'util.c' WHEN r < 0.59 THEN 'util.h'
                                     WHEN r < 0.62 THEN 'Makefile' WHEN r < 0.66 THEN 'notes' WHEN r < 0.70 THEN 'test.c'
                                     WHEN r < 0.97 THEN 'build' ELSE 'clean' END
                            ELSE
                                CASE WHEN r < 0.24 THEN 'main.py' WHEN r < 0.42 THEN 'main.c' WHEN r < 0.50 THEN 'util.c'
                                     WHEN r < 0.53 THEN 'util.h' WHEN r < 0.55 THEN 'Makefile' WHEN r < 0.59 THEN 'notes'
                                     WHEN r < 0.62 THEN 'test.c' WHEN r < 0.80 THEN 'build' WHEN r < 0.98 THEN 'pyrun'
                                     ELSE 'clean' END
                            END AS action) a;
ANALYZE g_step;

-- Builds: gcc -Wall -o a.out main.c util.c (or make, which runs gcc -Wall -g ...): cc1 for main.c, then for
-- util.c, then the link. A fifth fail: a compile error in one of the files, or an undefined reference at
-- the link. Durations from ~50 ms to ~3 s.
CREATE TEMP TABLE g_build ON COMMIT DROP AS
SELECT b.*,
       b.b_end + CASE WHEN b.fail IN ('main', 'util') THEN 4 ELSE 10 + b.link_ms END * interval '1 millisecond' AS g_end
  FROM (SELECT st.*, sd.uses_make AND pg_temp.rnd(40, st.sess, st.i) < 0.85 OR pg_temp.rnd(40, st.sess, st.i) < 0.08 AS via_make,
               CASE WHEN pg_temp.rnd(41, st.sess, st.i) >= 0.2 THEN ''
                    WHEN pg_temp.rnd(42, st.sess, st.i) < 0.6 THEN 'main'
                    WHEN pg_temp.rnd(42, st.sess, st.i) < 0.8 THEN 'util'
                    ELSE 'link' END AS fail,
               st.t + interval '4 milliseconds' AS a_start,
               st.t + (4 + ms.a) * interval '1 millisecond' AS a_end,
               st.t + (4 + ms.a + 12) * interval '1 millisecond' AS b_start,
               st.t + (4 + ms.a + 12 + ms.b) * interval '1 millisecond' AS b_end,
               ms.link AS link_ms
          FROM g_step st
          JOIN g_student sd USING (s)
         CROSS JOIN LATERAL (SELECT 25 + 1500 * pg_temp.rnd(43, st.sess, st.i) ^ 3 AS a,
                                    20 + 900 * pg_temp.rnd(44, st.sess, st.i) ^ 3 AS b,
                                    30 + 400 * pg_temp.rnd(45, st.sess, st.i) ^ 2 AS link) ms
         WHERE st.action = 'build') b;
ANALYZE g_build;

-- What happens to each file, in order: writes (the template copied at the assignment's first session, saves,
-- a.out by a successful build), deletes (make clean, the scratch file at the end), the notes rename.
CREATE TEMP TABLE g_op ON COMMIT DROP AS
SELECT ss.s, ss.k, f.fkind, ss.start_at - interval '1 second' + f.n * interval '3 milliseconds' AS t, 'write' AS op
  FROM g_session ss
 CROSS JOIN LATERAL (VALUES (1, 'main.c'), (2, 'util.c'), (3, 'util.h'), (4, 'Makefile'), (5, 'main.py')) f(n, fkind)
 WHERE ss.first_of_hw AND (f.fkind <> 'main.py' OR ss.subject = 'py')
UNION ALL
SELECT s, k, action, t, 'write' FROM g_step WHERE action NOT IN ('build', 'clean', 'pyrun')
UNION ALL
SELECT s, k, 'a.out', g_end, 'write' FROM g_build WHERE fail = ''
UNION ALL
SELECT s, k, 'a.out', t + interval '9 milliseconds', 'delete' FROM g_step WHERE action = 'clean'
UNION ALL
SELECT ss.s, ss.k, 'test.c', ss.start_at + (ss.nsteps + 1) * ss.gap_s * interval '1 second', 'delete'
  FROM g_session ss WHERE ss.last_of_hw AND ss.has_scratch
UNION ALL
SELECT ss.s, ss.k, 'notes', ss.start_at + interval '30 seconds', 'rename'
  FROM g_session ss WHERE ss.last_of_hw AND ss.renames_notes;

-- A delete needs the file to be there, a rename a version to rename; the notes file is notes.md from its
-- rename on.
CREATE TEMP TABLE g_fop ON COMMIT DROP AS
SELECT v.*,
       CASE WHEN v.op <> 'write' THEN v.op
            WHEN lag(v.op) OVER w IS NULL OR lag(v.op) OVER w = 'delete' THEN 'create'
            ELSE 'modify' END AS event_type,
       lead(v.t) OVER w AS next_t
  FROM (SELECT o.*,
               count(*) FILTER (WHERE o.op = 'write') OVER w AS v,
               count(*) FILTER (WHERE o.op = 'write') OVER (PARTITION BY o.s, o.k, o.fkind) AS nv,
               max(o.t) FILTER (WHERE o.op = 'write') OVER w AS written_at,
               lag(o.op) OVER w AS prev_op,
               max(o.t) FILTER (WHERE o.op = 'rename') OVER (PARTITION BY o.s, o.k, o.fkind) AS renamed_at
          FROM g_op o
        WINDOW w AS (PARTITION BY o.s, o.k, o.fkind ORDER BY o.t ROWS UNBOUNDED PRECEDING)) v
 WHERE v.op = 'write'
    OR v.op = 'delete' AND v.prev_op IN ('write', 'rename')
    OR v.op = 'rename' AND v.v > 0
WINDOW w AS (PARTITION BY v.s, v.k, v.fkind ORDER BY v.t);
ANALYZE g_fop;

-- Size of version v of n: from the template's to the final one, growing fast early, with some noise.
CREATE TEMP TABLE g_version ON COMMIT DROP AS
SELECT DISTINCT ON (s, k, fkind, v) s, k, fkind, v,
       CASE WHEN fkind = 'a.out' THEN 15800 + floor(pg_temp.rnd(50, s, k, v) * 1800)::bigint
            ELSE round(sz.init + (sz.final - sz.init) * ((v - 1)::double precision / greatest(nv - 1, 1)) ^ 0.75
                       * (1 + 0.06 * (pg_temp.rnd(51, s * 1024 + k, hashtext(fkind), v) - 0.5)))::bigint END AS size
  FROM g_fop
 CROSS JOIN LATERAL (SELECT pg_temp.rnd(52, s * 1024 + k, hashtext(fkind)) AS r1, pg_temp.rnd(53, s * 1024 + k, hashtext(fkind)) AS r2) r
 CROSS JOIN LATERAL (SELECT CASE fkind WHEN 'main.c' THEN 220 + 250 * r1 WHEN 'util.c' THEN 200 + 200 * r1
                                       WHEN 'util.h' THEN 200 + 100 * r1 WHEN 'Makefile' THEN 150 + 60 * r1
                                       WHEN 'main.py' THEN 200 + 200 * r1 WHEN 'test.c' THEN 200 + 150 * r1
                                       ELSE 60 + 200 * r1 END AS init,
                            CASE fkind WHEN 'main.c' THEN 2500 + 5600 * r2 WHEN 'util.c' THEN 900 + 3500 * r2
                                       WHEN 'util.h' THEN 300 + 900 * r2 WHEN 'Makefile' THEN 200 + 250 * r2
                                       WHEN 'main.py' THEN 800 + 5000 * r2 WHEN 'test.c' THEN 300 + 1200 * r2
                                       ELSE 300 + 3000 * r2 END AS final) sz
 WHERE v > 0
 ORDER BY s, k, fkind, v;
ANALYZE g_version;

-- Texts the versions are prefixes of: one per file, long enough for its largest version.
CREATE TEMP TABLE g_block ON COMMIT DROP AS
SELECT * FROM (VALUES
 ('c', 1, E'static int %1$s(const int *xs, int n)\n{\n    int acc = %2$s;\n    for (int i = 0; i < n; i++) {\n        if (xs[i] %% %3$s == 0)\n            acc += xs[i];\n        else\n            acc -= xs[i] / %4$s;\n    }\n    return acc;\n}\n\n'),
 ('c', 2, E'void %1$s(char *buf, size_t len)\n{\n    size_t j = 0;\n    for (size_t i = 0; i < len && buf[i] != ''\\0''; i++) {\n        if (buf[i] != '' '' && buf[i] != ''\\t'')\n            buf[j++] = buf[i];\n    }\n    buf[j] = ''\\0'';\n}\n\n'),
 ('c', 3, E'struct node *%1$s(struct node *head, int key)\n{\n    /* TODO: keys above %2$s */\n    while (head != NULL && head->key != key)\n        head = head->next;\n    return head;\n}\n\n'),
 ('c', 4, E'static void %1$s(int *a, int lo, int hi)\n{\n    int pivot = a[(lo + hi) / 2];\n    int i = lo, j = hi;\n    while (i <= j) {\n        while (a[i] < pivot)\n            i++;\n        while (a[j] > pivot)\n            j--;\n        if (i <= j) {\n            int tmp = a[i];\n            a[i++] = a[j];\n            a[j--] = tmp;\n        }\n    }\n    if (lo < j)\n        %1$s(a, lo, j);\n    if (i < hi)\n        %1$s(a, i, hi);\n}\n\n'),
 ('c', 5, E'int %1$s(FILE *in, int *out, int max)\n{\n    int n = 0;\n    while (n < max && fscanf(in, "%%d", &out[n]) == 1)\n        n++;\n    if (n > %2$s)\n        fprintf(stderr, "%1$s: %%d values\\n", n);\n    return n;\n}\n\n'),
 ('c', 6, E'double %1$s(const double *v, int n)\n{\n    double sum = 0.0;\n    for (int i = 0; i < n; i++)\n        sum += v[i] * %3$s.0;\n    return n > 0 ? sum / n : 0.0;\n}\n\n'),
 ('c', 7, E'#define %5$s_MAX %2$s\n\nstatic int %1$s_table[%5$s_MAX];\n\nvoid %1$s_init(void)\n{\n    memset(%1$s_table, 0, sizeof %1$s_table);\n    %1$s_table[0] = %4$s;\n}\n\n'),
 ('c', 8, E'int %1$s(const char *s)\n{\n    int h = %4$s;\n    while (*s)\n        h = h * 31 + *s++;\n    return h %% %2$s;\n}\n\n'),
 ('py', 1, E'def %1$s(rows, limit=%2$s):\n    out = []\n    for row in rows:\n        if len(out) >= limit:\n            break\n        if row and row[0] %% %3$s == 0:\n            out.append(row)\n    return out\n\n\n'),
 ('py', 2, E'def %1$s(path):\n    with open(path) as f:\n        data = [line.strip().split(",") for line in f if line.strip()]\n    return {r[0]: float(r[%3$s %% len(r)]) for r in data if len(r) > 1}\n\n\n'),
 ('py', 3, E'class %6$s:\n    def __init__(self, size=%2$s):\n        self.items = [0] * size\n        self.count = 0\n\n    def push(self, x):\n        self.items[self.count %% len(self.items)] = x\n        self.count += 1\n\n\n'),
 ('py', 4, E'def %1$s(values):\n    mean = sum(values) / max(len(values), 1)\n    var = sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)\n    return mean, var ** 0.5\n\n\n')
) b(lang, n, template);

-- A pool of pieces the files are made of: functions (C or Python) and util.h's prototypes.
CREATE TEMP TABLE g_piece ON COMMIT DROP AS
SELECT l.lang, g.n, CASE WHEN l.lang = 'h' THEN format(E'int %s(const int *xs, int n);\n', nm.name)
                       ELSE format(b.template, nm.name, (10 + h % 990)::text, (2 + h % 8)::text, (1 + h % 97)::text,
                                   upper(nm.name), replace(initcap(nm.name), '_', '')) END AS piece
  FROM (VALUES ('c', 8), ('py', 4), ('h', 1)) l(lang, templates)
 CROSS JOIN generate_series(0, 1999) g(n)
 CROSS JOIN LATERAL (SELECT abs(hashint8extended(g.n, hashtext(l.lang) # :seed)) AS h) hh
 CROSS JOIN LATERAL (SELECT (ARRAY['sum', 'count', 'scan', 'parse', 'merge', 'split', 'find', 'swap', 'fill', 'check',
                                   'print', 'read', 'sort', 'push', 'pop', 'grow'])[1 + hh.h % 16]
                            || '_' || (ARRAY['items', 'buf', 'line', 'nums', 'grid', 'list', 'node', 'word', 'row', 'cols',
                                             'stack', 'queue'])[1 + (hh.h / 16) % 12]
                            || CASE WHEN g.n >= 192 THEN (g.n / 192)::text ELSE '' END AS name) nm
  LEFT JOIN g_block b ON b.lang = l.lang AND b.n = 1 + (hh.h / 192) % l.templates;

-- One text per file, long enough for its largest version, kept uncompressed so that a version is a slice of it.
CREATE TEMP TABLE g_base (s integer, k integer, fkind text, base bytea) ON COMMIT DROP;
ALTER TABLE g_base ALTER COLUMN base SET STORAGE EXTERNAL;
INSERT INTO g_base
WITH files AS (
    SELECT DISTINCT v.s, v.k, v.fkind, st.dir
      FROM g_version v JOIN g_student st USING (s)
     WHERE v.fkind IN ('main.c', 'util.c', 'util.h', 'Makefile', 'main.py', 'test.c')
), bodies AS (
    SELECT f.s, f.k, f.fkind, string_agg(pc.piece, '' ORDER BY p.n) AS body
      FROM files f
     CROSS JOIN LATERAL generate_series(1, CASE f.fkind WHEN 'util.h' THEN 64 WHEN 'test.c' THEN 16
                                                        WHEN 'util.c' THEN 36 ELSE 64 END) p(n)
      JOIN g_piece pc ON pc.lang = CASE f.fkind WHEN 'main.py' THEN 'py' WHEN 'util.h' THEN 'h' ELSE 'c' END
                     AND pc.n = abs(hashint8extended((f.s::bigint * 1024 + f.k) * 64 + p.n, hashtext(f.fkind))) % 2000
     WHERE f.fkind <> 'Makefile'
     GROUP BY f.s, f.k, f.fkind
)
SELECT f.s, f.k, f.fkind, convert_to(
       CASE f.fkind
         WHEN 'Makefile' THEN
           format(E'# hw%s (%s)\nCC = gcc\nCFLAGS = -Wall -g\nSRCS = main.c util.c\n\na.out: $(SRCS) util.h\n\t$(CC) $(CFLAGS) -o $@ $(SRCS)\n\n'
                  'run: a.out\n\t./a.out\n\ntest: a.out\n\t./a.out < input.txt > output.txt\n\tdiff -u expected.txt output.txt\n\n'
                  'clean:\n\trm -f a.out *.o\n\n.PHONY: run test clean\n', f.k, f.dir)
           || E'\ndebug: CFLAGS += -O0 -g3 -fsanitize=address,undefined\ndebug: a.out\n\nvalgrind: a.out\n\tvalgrind --leak-check=full ./a.out < input.txt\n'
           || E'\nsubmit: clean\n\ttar czf ../submit.tgz .\n\n# make test ARGS="-v"\n'
         WHEN 'util.h' THEN format(E'/* %s hw%s util.h */\n#ifndef UTIL_H\n#define UTIL_H\n\n#include <stddef.h>\n\n', f.dir, f.k)
         WHEN 'main.py' THEN format(E'# %s hw%s main.py\nimport sys\nimport csv\nfrom collections import Counter\n\n\n', f.dir, f.k)
         ELSE format(E'/* %s hw%s %s */\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include "util.h"\n\n', f.dir, f.k, f.fkind)
       END || coalesce(b.body, ''), 'UTF8')
  FROM files f
  LEFT JOIN bodies b USING (s, k, fkind);
ANALYZE g_base;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM g_version v JOIN g_base b USING (s, k, fkind) WHERE octet_length(b.base) < v.size) THEN
        RAISE EXCEPTION 'generate.sql: a base text is shorter than a version of its file';
    END IF;
END
$$;

-- Contents: once per file and size (two versions of one size are one content, as a save without a change).
CREATE TEMP TABLE g_content ON COMMIT DROP AS
SELECT v.s, v.k, v.fkind, v.size, sha256(substring(b.base FROM 1 FOR v.size::integer)) AS sha
  FROM (SELECT DISTINCT s, k, fkind, size FROM g_version) v
  JOIN g_base b USING (s, k, fkind);
ANALYZE g_content;

-- The events, as the agent records them. Mode: 0644 files, 0755 a.out and directories. A change is seen a
-- moment after the write (modified_at a few ms before occurred_at); ~6 % of the saves that stood for more than
-- 2.5 minutes were missed by the watch and found by the next minute's scan instead.
CREATE TEMP TABLE g_ev0 ON COMMIT DROP AS
SELECT st.s, st.node, st.dir || '/hw' || o.k || '/' || p.name AS path,
       CASE WHEN o.op = 'rename' THEN st.dir || '/hw' || o.k || '/notes.txt' END AS old_path,
       o.event_type, 'f' AS entry_type,
       CASE WHEN scan.missed THEN date_trunc('minute', o.t) + interval '1 minute' + pg_temp.rnd(60, o.s * 1024 + o.k, hashtext(o.fkind), o.v) * interval '900 milliseconds'
            ELSE o.t END AS occurred_at,
       CASE WHEN scan.missed THEN 'scan' ELSE 'watch' END AS source,
       ver.size,
       o.written_at - (1 + pg_temp.rnd(61, o.s * 1024 + o.k, hashtext(o.fkind), o.v) * 20) * interval '1 millisecond' AS modified_at,
       CASE WHEN o.fkind = 'a.out' THEN 493 ELSE 420 END AS mode,
       coalesce(c.sha, sha256(convert_to(format('%s %s %s %s %s', :seed, o.s, o.k, o.fkind, CASE WHEN o.fkind = 'a.out' THEN o.v ELSE ver.size END), 'UTF8'))) AS sha256,
       CASE WHEN o.event_type IN ('create', 'modify') THEN c.sha END AS snapshot,
       o.fkind = 'a.out' AND o.op = 'write' AND pg_temp.rnd(62, o.s * 1024 + o.k, o.v) < 0.003 AS torn
  FROM g_fop o
  JOIN g_student st USING (s)
  JOIN g_version ver USING (s, k, fkind, v)
  LEFT JOIN g_content c ON (c.s, c.k, c.fkind, c.size) = (o.s, o.k, o.fkind, ver.size)
 CROSS JOIN LATERAL (SELECT CASE WHEN o.fkind <> 'notes' THEN o.fkind
                                 WHEN o.renamed_at IS NOT NULL AND o.t >= o.renamed_at THEN 'notes.md'
                                 ELSE 'notes.txt' END AS name) p
 CROSS JOIN LATERAL (SELECT o.event_type = 'modify' AND o.fkind <> 'a.out'
                            AND coalesce(o.next_t, 'infinity') > o.t + interval '150 seconds'
                            AND pg_temp.rnd(63, o.s * 1024 + o.k, hashtext(o.fkind), o.v) < 0.06 AS missed) scan
UNION ALL
-- Directories: the student's at their first session, the assignment's at its first.
SELECT st.s, st.node, d.path, NULL, 'create', 'd', d.t, 'watch', 4096, d.t - interval '2 milliseconds', 493, NULL, NULL, false
  FROM g_session ss
  JOIN g_student st USING (s)
 CROSS JOIN LATERAL (VALUES (st.dir, ss.start_at - interval '2 seconds', ss.first_of_student),
                            (st.dir || '/hw' || ss.k, ss.start_at - interval '1500 milliseconds', ss.first_of_hw)) d(path, t, wanted)
 WHERE d.wanted;
ANALYZE g_ev0;

-- Ids as EventIds makes them: the millisecond the event was recorded (after the 100 ms quiet window for the
-- watch, at once for a scan), then a counter within that millisecond, per agent (node).
CREATE TEMP TABLE g_ev ON COMMIT DROP AS
SELECT e.*,
       pg_temp.uuid7(e.id_ms, row_number() OVER (PARTITION BY e.node, e.id_ms ORDER BY e.occurred_at, e.path) - 1,
                     hashint8extended(e.id_ms # hashtext(e.node || e.path || e.event_type), :seed)) AS event_id,
       to_timestamp(e.id_ms::double precision / 1000) + (3 + 25 * pg_temp.rnd(64, e.id_ms, hashtext(e.path))) * interval '1 millisecond' AS stored_at
  FROM (SELECT g.*, pg_temp.epoch_ms(g.occurred_at) + CASE WHEN g.source = 'watch' THEN 100 ELSE 2 END AS id_ms
          FROM g_ev0 g, g_cfg cfg
         WHERE g.occurred_at <= cfg.end_at) e;
ANALYZE g_ev;

-- Processes. A command (a build with its compilers, a run) is a group of processes; pid: the node's counter at the
-- group's start, moving with time (~200 a second, wrapping at pid_max) and with every group, its processes after
-- it. The interactive shell a session's commands start from is the parent of its top-level processes.
CREATE TEMP TABLE g_proc0 ON COMMIT DROP AS
WITH ctx AS (
    SELECT ss.sess, st.*, ss.k, ss.day,
           CASE WHEN st.in_container THEN '/workspace/' ELSE '/mnt/node-data/' END || st.dir || '/hw' || ss.k AS cwd,
           CASE WHEN st.in_container THEN encode(sha256(convert_to(format('container %s %s %s', :seed, st.s, ss.day), 'UTF8')), 'hex') END AS container_id,
           CASE WHEN st.in_container THEN (SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-'
                                                  || substr('89ab', 1 + ss.s % 4, 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12)
                                             FROM (SELECT md5(format('pod %s %s %s', :seed, st.s, ss.day / 7)) AS h) x) END AS pod_uid,
           CASE WHEN st.in_container THEN 'jcode-' || st.subject || '-' || st.course || '-' || st.student END AS hostname,
           1000 + (pg_temp.epoch_ms(ss.start_at) / 40 * 8 + 4190000 - 1 - floor(pg_temp.rnd(70, ss.sess) * 4000)::bigint) % 4190000 AS shell_pid
      FROM g_session ss JOIN g_student st USING (s)
), gcc AS (
    SELECT '/usr/bin/x86_64-linux-gnu-gcc-12' AS exe, '/usr/lib/gcc/x86_64-linux-gnu/12/cc1' AS cc1, '/usr/bin/make' AS make
)
-- Builds: [make], gcc, cc1 main.c, cc1 util.c.
SELECT x.s, x.node, b.t AS grp_t, b.sess * 1024 + b.i * 2 AS grp, r.pid_offset,
       CASE WHEN r.pid_offset > 0 THEN r.ppid_offset END AS ppid_offset, x.shell_pid,
       x.uid, x.gid, r.exe, r.parent_exe, r.argv, x.cwd, x.container_id, x.pod_uid, x.hostname, r.kind, r.source_files,
       r.started_at, r.ended_at, r.exit_code, NULL::integer AS signal
  FROM g_build b
  JOIN ctx x USING (sess)
 CROSS JOIN gcc
 CROSS JOIN LATERAL (VALUES
     (0, 0, gcc.make, '/usr/bin/bash', ARRAY['make'], 'other', '{}'::text[], b.t, b.g_end + interval '3 milliseconds',
      CASE WHEN b.fail = '' THEN 0 ELSE 2 END, b.via_make),
     (CASE WHEN b.via_make THEN 1 ELSE 0 END, 0, gcc.exe, CASE WHEN b.via_make THEN gcc.make ELSE '/usr/bin/bash' END,
      CASE WHEN b.via_make THEN ARRAY['gcc', '-Wall', '-g', '-o', 'a.out', 'main.c', 'util.c'] ELSE ARRAY['gcc', '-Wall', '-o', 'a.out', 'main.c', 'util.c'] END,
      'compile', ARRAY[x.cwd || '/main.c', x.cwd || '/util.c'], b.t + CASE WHEN b.via_make THEN interval '2 milliseconds' ELSE interval '0' END,
      b.g_end, CASE WHEN b.fail = '' THEN 0 ELSE 1 END, true),
     (CASE WHEN b.via_make THEN 2 ELSE 1 END, CASE WHEN b.via_make THEN 1 ELSE 0 END, gcc.cc1, gcc.exe,
      ARRAY[gcc.cc1, '-quiet', '-imultiarch', 'x86_64-linux-gnu', 'main.c', '-quiet', '-dumpdir', 'a-', '-dumpbase', 'main.c',
            '-dumpbase-ext', '.c', '-mtune=generic', '-march=x86-64', '-Wall', '-o', '/tmp/cc' || substr(md5(b.sess || 'a' || b.i), 1, 6) || '.s'],
      'compile', ARRAY[x.cwd || '/main.c'], b.a_start, b.a_end, CASE WHEN b.fail = 'main' THEN 1 ELSE 0 END, true),
     (CASE WHEN b.via_make THEN 4 ELSE 3 END, CASE WHEN b.via_make THEN 1 ELSE 0 END, gcc.cc1, gcc.exe,
      ARRAY[gcc.cc1, '-quiet', '-imultiarch', 'x86_64-linux-gnu', 'util.c', '-quiet', '-dumpdir', 'a-', '-dumpbase', 'util.c',
            '-dumpbase-ext', '.c', '-mtune=generic', '-march=x86-64', '-Wall', '-o', '/tmp/cc' || substr(md5(b.sess || 'b' || b.i), 1, 6) || '.s'],
      'compile', ARRAY[x.cwd || '/util.c'], b.b_start, b.b_end, CASE WHEN b.fail = 'util' THEN 1 ELSE 0 END, true)
   ) r(pid_offset, ppid_offset, exe, parent_exe, argv, kind, source_files, started_at, ended_at, exit_code, wanted)
 WHERE r.wanted
UNION ALL
-- ./a.out after most successful builds: mostly fine, sometimes a crash (SIGSEGV), a non-zero exit, or Ctrl-C.
SELECT x.s, x.node, r.started_at, b.sess * 1024 + b.i * 2 + 1, 0, NULL, x.shell_pid, x.uid, x.gid,
       x.cwd || '/a.out', '/usr/bin/bash',
       CASE WHEN pg_temp.rnd(81, b.sess, b.i) < 0.3 THEN ARRAY['./a.out', (1 + floor(pg_temp.rnd(82, b.sess, b.i) * 100))::integer::text] ELSE ARRAY['./a.out'] END,
       x.cwd, x.container_id, x.pod_uid, x.hostname, 'run', '{}'::text[],
       r.started_at, r.started_at + r.ms * interval '1 millisecond',
       CASE WHEN r.outcome = 'ok' THEN 0 WHEN r.outcome = 'fail' THEN 1 END,
       CASE WHEN r.outcome = 'segv' THEN 11 WHEN r.outcome = 'int' THEN 2 END
  FROM g_build b
  JOIN ctx x USING (sess)
 CROSS JOIN LATERAL (SELECT b.g_end + (2 + 23 * pg_temp.rnd(83, b.sess, b.i)) * interval '1 second' AS started_at,
                            CASE WHEN pg_temp.rnd(84, b.sess, b.i) < 0.08 THEN 'segv' WHEN pg_temp.rnd(84, b.sess, b.i) < 0.11 THEN 'fail'
                                 WHEN pg_temp.rnd(84, b.sess, b.i) < 0.125 THEN 'int' ELSE 'ok' END AS outcome,
                            pg_temp.rnd(85, b.sess, b.i) AS rd) r0
 CROSS JOIN LATERAL (SELECT r0.started_at, r0.outcome,
                            CASE WHEN r0.outcome = 'int' THEN 5000 + 55000 * r0.rd ELSE 5 + 2000 * r0.rd ^ 3 END AS ms) r
 WHERE b.fail = '' AND pg_temp.rnd(80, b.sess, b.i) < 0.7
UNION ALL
-- python3 main.py (ds201), make clean.
SELECT x.s, x.node, st.t, st.sess * 1024 + st.i * 2, 0, NULL, x.shell_pid, x.uid, x.gid,
       CASE WHEN st.action = 'pyrun' THEN '/usr/bin/python3.11' ELSE '/usr/bin/make' END, '/usr/bin/bash',
       CASE WHEN st.action = 'pyrun' THEN ARRAY['python3', 'main.py'] ELSE ARRAY['make', 'clean'] END,
       x.cwd, x.container_id, x.pod_uid, x.hostname,
       CASE WHEN st.action = 'pyrun' THEN 'run' ELSE 'other' END,
       CASE WHEN st.action = 'pyrun' THEN ARRAY[x.cwd || '/main.py'] ELSE '{}'::text[] END,
       st.t,
       st.t + CASE WHEN st.action = 'pyrun' THEN 60 + 2900 * pg_temp.rnd(90, st.sess, st.i) ^ 2 ELSE 6 + 10 * pg_temp.rnd(90, st.sess, st.i) END * interval '1 millisecond',
       CASE WHEN st.action = 'pyrun' AND pg_temp.rnd(91, st.sess, st.i) < 0.25 THEN 1 ELSE 0 END,
       NULL
  FROM g_step st
  JOIN ctx x USING (sess)
 WHERE st.action IN ('pyrun', 'clean')
UNION ALL
-- A few programs left running at the end (an endless loop, a server waiting for input).
SELECT x.s, x.node, r.started_at, -x.s, 0, NULL, x.shell_pid, x.uid, x.gid,
       CASE WHEN x.subject = 'py' THEN '/usr/bin/python3.11' ELSE x.cwd || '/a.out' END, '/usr/bin/bash',
       CASE WHEN x.subject = 'py' THEN ARRAY['python3', 'main.py'] ELSE ARRAY['./a.out'] END,
       x.cwd, x.container_id, x.pod_uid, x.hostname, 'run',
       CASE WHEN x.subject = 'py' THEN ARRAY[x.cwd || '/main.py'] ELSE '{}'::text[] END,
       r.started_at, NULL, NULL, NULL
  FROM (SELECT DISTINCT ON (ss.s) ss.s, ss.sess FROM g_session ss, g_cfg cfg
         WHERE ss.start_at < cfg.end_at - interval '1 hour' AND pg_temp.rnd(95, ss.s) < 0.03
         ORDER BY ss.s, ss.start_at DESC) last
  JOIN ctx x USING (sess)
 CROSS JOIN g_cfg cfg
 CROSS JOIN LATERAL (SELECT cfg.end_at - (1 + 40 * pg_temp.rnd(96, x.s)) * interval '1 minute' AS started_at) r;
ANALYZE g_proc0;

-- Nothing after the end; what had not ended by then is running. Ids as Guid.CreateVersion7 at the exec (random
-- within the millisecond); stored by the next batch, a few ms later.
CREATE TEMP TABLE g_proc ON COMMIT DROP AS
SELECT p.s, p.node, pid.base + p.pid_offset AS pid, coalesce(pid.base + p.ppid_offset, p.shell_pid) AS ppid, p.uid, p.gid, p.exe, p.parent_exe, p.argv, p.cwd, p.container_id, p.pod_uid, p.hostname,
       p.kind, p.source_files, p.started_at,
       CASE WHEN p.ended_at <= cfg.end_at THEN p.ended_at END AS ended_at,
       CASE WHEN p.ended_at <= cfg.end_at THEN p.exit_code END AS exit_code,
       CASE WHEN p.ended_at <= cfg.end_at THEN p.signal END AS signal,
       pg_temp.uuid7(pg_temp.epoch_ms(p.started_at), n.noise >> 20, n.noise) AS process_id,
       p.started_at + (2 + 20 * pg_temp.rnd(97, p.grp, pg_temp.epoch_ms(p.started_at))) * interval '1 millisecond' AS stored_at
  FROM (SELECT g.*, dense_rank() OVER (PARTITION BY g.node ORDER BY g.grp_t, g.grp) AS grp_rank
          FROM g_proc0 g, g_cfg cfg WHERE g.started_at <= cfg.end_at) p
 CROSS JOIN LATERAL (SELECT 1000 + (pg_temp.epoch_ms(p.grp_t) / 40 * 8 + 5 * p.grp_rank) % 4190000 AS base) pid
 CROSS JOIN g_cfg cfg
 CROSS JOIN LATERAL (SELECT hashint8extended(p.grp # pg_temp.epoch_ms(p.started_at) # hashtext(p.node || p.argv[1]), :seed) AS noise) n;

-- Attribution templates, before the rows they label are inserted: the students' directories below the mount,
-- the same directories as a container sees them, and the containers' hostnames.
INSERT INTO attribution_templates (name, applies_to, pattern)
VALUES ('workspace', 'path', '{course}-{student}/{assignment}/**'),
       ('in-container', 'path', '/workspace/{course}-{student}/{assignment}/**'),
       ('jcode', 'hostname', 'jcode-{subject}-{course}-{student}')
ON CONFLICT (name) DO NOTHING;

-- The kept process that started each one (make for gcc, gcc for its cc1), as the agent links them.
CREATE INDEX ON g_proc (node, pid);
ANALYZE g_proc;

-- The real tables, in the order the agents write them: contents before the events that reference them.
INSERT INTO file_contents (sha256, size, content, first_seen_at)
SELECT DISTINCT ON (c.sha) c.sha, c.size, substring(b.base FROM 1 FOR c.size::integer), f.first_seen_at
  FROM g_content c
  JOIN g_base b USING (s, k, fkind)
  JOIN (SELECT snapshot, min(stored_at) AS first_seen_at FROM g_ev WHERE snapshot IS NOT NULL GROUP BY snapshot) f ON f.snapshot = c.sha
 ORDER BY c.sha;

INSERT INTO file_events (event_id, node_name, mount_path, path, path_bytes, old_path, old_path_bytes, event_type, entry_type,
                         occurred_at, stored_at, size, modified_at, mode, sha256, snapshot, not_hashed, torn, too_large, source)
SELECT event_id, node, '/mnt/node-data', path, NULL, old_path, NULL, event_type, entry_type,
       occurred_at, stored_at, size, modified_at, mode, sha256, snapshot, false, torn, false, source
  FROM g_ev
 ORDER BY stored_at, event_id;

-- The state the events leave: per path, its last event (a rename also ends its old path), unless that
-- removed it.
INSERT INTO file_state (node_name, mount_path, path_bytes, path, entry_type, size, modified_at, mode, sha256, last_event_id, updated_at)
SELECT node, '/mnt/node-data', convert_to(path, 'UTF8'), path, entry_type, size, modified_at, mode, sha256, event_id, occurred_at
  FROM (SELECT DISTINCT ON (node, path) *
          FROM (SELECT node, path, event_type <> 'delete' AS present, entry_type, size, modified_at, mode, sha256, event_id, occurred_at
                  FROM g_ev
                UNION ALL
                SELECT node, old_path, false, entry_type, size, modified_at, mode, sha256, event_id, occurred_at
                  FROM g_ev WHERE event_type = 'rename') t
         ORDER BY node, path, event_id DESC) last
 WHERE present;

INSERT INTO process_events (process_id, node_name, pid, ppid, uid, gid, exe, exe_bytes, parent_exe, argv, argv_bytes, argv_cut,
                            cwd, cwd_bytes, container_id, pod_uid, hostname, kind, source_files, started_at, ended_at,
                            exit_code, signal, missing, stored_at, mount_path, parent_process_id, parent_kind)
SELECT p.process_id, p.node, p.pid::integer, p.ppid::integer, p.uid, p.gid, p.exe, NULL, p.parent_exe, p.argv, NULL, false,
       p.cwd, NULL, p.container_id, p.pod_uid, p.hostname, p.kind, p.source_files, p.started_at, p.ended_at,
       p.exit_code, p.signal, '{}', p.stored_at, '/mnt/node-data', parent.process_id, parent.kind
  FROM g_proc p
  LEFT JOIN LATERAL (SELECT q.process_id, q.kind FROM g_proc q
                      WHERE q.node = p.node AND q.pid = p.ppid AND q.started_at <= p.started_at
                        AND (q.ended_at IS NULL OR q.ended_at >= p.started_at)
                      ORDER BY q.started_at DESC LIMIT 1) AS parent ON true
 ORDER BY p.stored_at, p.process_id;

COMMIT;

-- The whole database: what triggers filled beside the tables too (as autovacuum would have by now).
VACUUM (ANALYZE);

\set gen_finished `date +%s.%N`
\echo
SELECT :students AS students, :days AS days, :seed AS seed,
       round((:gen_finished - :gen_started)::numeric, 1) AS seconds,
       pg_size_pretty(pg_database_size(current_database())) AS database_size;
SELECT t AS "table", n AS rows, pg_size_pretty(pg_total_relation_size(t::regclass)) AS total_size
  FROM (VALUES ('file_events', (SELECT count(*) FROM file_events)),
               ('file_state', (SELECT count(*) FROM file_state)),
               ('file_contents', (SELECT count(*) FROM file_contents)),
               ('process_events', (SELECT count(*) FROM process_events))) v(t, n);
