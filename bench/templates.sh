#!/usr/bin/env bash
# What writing a template costs the fleet: a throwaway PostgreSQL with the agent's schema, SUBJECTS distinct subjects
# (bench/templates/subjects.sql: nine in ten file paths, one in ten process keys, with 30 days of hourly and daily
# counts), AGENTS loops that each store like an agent (bench/templates/agent.sql: 20 file events on known paths, one
# new path, one process; a new connection each time) five times a second, and, once they run, one template written
# that changes the labels of every path. Reports how long the template statement took, how long until every subject
# carried the new labels (the relabel, when the schema relabels apart from the statement: CALL attribution_relabel(),
# as an agent's relabel loop would run it), and the stores' latencies from the template's write until the labels
# followed: count, median, max, how many took over 1 s (each store is a new psql: its connection is in its time).
# Then checks every subject's labels, and the daily counts, against the templates and the hourly counts.
#
#   bench/templates.sh [SUBJECTS] [AGENTS]      defaults: 170000 4
#
# NODEAGENT_BENCH_BINARY=path migrates with that agent binary instead of building one (e.g. one built from an older
# commit, to compare).
set -euo pipefail
subjects=${1:-170000}
agents=${2:-4}
case "$subjects$agents" in *[!0-9]*|'') echo "usage: bench/templates.sh [SUBJECTS] [AGENTS]" >&2; exit 2;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nodeagent-templates.XXXXXX)
. "$root/bench/lib.sh"
loops=()
trap 'touch "$work/stop"; for p in "${loops[@]}"; do wait "$p" 2>/dev/null || true; done; throwaway_pg_stop; rm -rf "$work"' EXIT

migrated_database "-c shared_buffers=256MB -c max_wal_size=2GB"
echo "== migrations: $(psql -X -At -d monitordb -c "SELECT string_agg(version::text, ' ' ORDER BY version) FROM node_monitor_migrations")"
echo "== $subjects subjects"
psql -X -q -d monitordb -v ON_ERROR_STOP=1 -v subjects="$subjects" -f "$root/bench/templates/subjects.sql"

now() { date +%s.%N; }
store_loop() { # agent number: a store every 200 ms until $work/stop; each line: start end
  local i=$1 t0 t1
  while [ ! -e "$work/stop" ]; do
    t0=$(now)
    psql -X -q -d monitordb -v ON_ERROR_STOP=1 -v subjects="$subjects" -v n=$((RANDOM * 4 % (subjects * 9 / 10 - 20) + 1)) \
      -v client_id="$i" -f "$root/bench/templates/agent.sql" >/dev/null 2>>"$work/store-errors.log" || echo "failed" >>"$work/store-errors.log"
    t1=$(now)
    echo "$t0 $t1" >>"$work/stores-$i.txt"
    sleep 0.2
  done
}
for i in $(seq "$agents"); do store_loop "$i" & loops+=($!); done
sleep 3

echo "== writing a template that relabels every path"
t_write=$(now)
# What the stores wait for, 2 s into the write.
(sleep 2; psql -X -d monitordb -c "SELECT w.pid, w.wait_event_type || ':' || w.wait_event AS waits_for, l.locktype,
       coalesce(l.relation::regclass::text, '') AS relation, l.mode, b.pid AS held_by, left(b.query, 40) AS holder
  FROM pg_stat_activity w JOIN pg_locks l ON l.pid = w.pid AND NOT l.granted
  CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS h(pid) JOIN pg_stat_activity b ON b.pid = h.pid
 ORDER BY 1" >"$work/waits.txt" 2>&1) &
waits=$!
statement_ms=$(psql -X -q -d monitordb -v ON_ERROR_STOP=1 -c '\timing on' -c \
  "INSERT INTO attribution_templates (name, applies_to, pattern, priority) VALUES ('per-file', 'path', '{course}-{student}/{assignment}/{file}', 10)" \
  | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
t_written=$(now)
if [ "$(psql -X -At -d monitordb -c "SELECT to_regproc('attribution_relabel_step') IS NOT NULL")" = t ]; then
  psql -X -q -d monitordb -v ON_ERROR_STOP=1 -c "CALL attribution_relabel()"
fi
t_followed=$(now)
wait "$waits" || true
echo "== stores waiting 2 s into the write"; cat "$work/waits.txt"
sleep 2
touch "$work/stop"
for p in "${loops[@]}"; do wait "$p" || true; done
loops=()

stale=$(psql -X -At -d monitordb -c "SELECT count(*) FROM attributions s LEFT JOIN LATERAL attribution_of(s.subject_kind, s.subject) a ON true
                                     WHERE s.template IS DISTINCT FROM a.template OR s.labels <> coalesce(a.labels, '{}')")
daily=$(psql -X -At -d monitordb -c "SELECT count(*) FROM (SELECT a.labels, date_trunc('day', h.hour, 'UTC') d, sum(h.changes) c, sum(h.builds) b
                                       FROM activity_hourly h JOIN attributions a USING (subject_kind, subject) GROUP BY 1, 2) x
                                     FULL JOIN (SELECT labels, day d, sum(changes) c, sum(builds) b FROM activity_daily GROUP BY 1, 2) y USING (labels, d)
                                     WHERE x.c IS DISTINCT FROM y.c OR x.b IS DISTINCT FROM y.b")
python3 - "$t_write" "$t_written" "$t_followed" "$statement_ms" "$work"/stores-*.txt <<'PY'
import sys
w, written, followed, statement_ms = map(float, sys.argv[1:5])
rows = [tuple(map(float, l.split())) for f in sys.argv[5:] for l in open(f) if l.strip()]
before = [e - s for s, e in rows if e < w]
during = [e - s for s, e in rows if e >= w and s <= followed]
print(f"template statement: {statement_ms / 1000:.2f} s (server side); labels followed after {followed - w:.2f} s")
def line(name, xs):
    xs = sorted(xs)
    if not xs:
        print(f"{name}: none"); return
    print(f"{name}: {len(xs)} stores, median {xs[len(xs)//2]*1000:.0f} ms, max {xs[-1]*1000:.0f} ms, over 1 s: {sum(x > 1 for x in xs)}")
line("stores before the write", before)
line("stores from the write until the labels followed", during)
PY
echo "subjects whose labels differ from the templates': $stale; daily count rows that differ from the hourly ones: $daily"
[ -s "$work/store-errors.log" ] && { echo "store errors:"; sort "$work/store-errors.log" | uniq -c | head; } || true
