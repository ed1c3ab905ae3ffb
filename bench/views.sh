#!/usr/bin/env bash
# Query benchmark of the staff's questions on a class's worth of data: a throwaway PostgreSQL with the agent's schema
# (the agent itself migrates it), bench/classes/generate.sql fills it (STUDENTS students, DAYS days up to now), then
# every query of bench/classes/queries.sql (blocks after a line `-- query: <name>`) runs under
# EXPLAIN (ANALYZE, BUFFERS): once cold (right after a server restart: empty shared buffers, new connection; the
# kernel's page cache stays warm), then 5 times warm in the same session. The table (rows, cold ms, median of the
# warm ms, top plan node, whether that median is under 100 ms) goes to stdout and to bench/results/views-<date>.txt;
# every plan, with the plans of the statements inside SQL functions (auto_explain), to
# bench/results/views-plans.txt. Times are planning + execution as EXPLAIN reports them.
#
#   bench/views.sh [STUDENTS] [DAYS]      defaults: 200 30
#
# VIEWS_KEEP_SERVER=1 keeps the server (and its data) after the run until Enter or Ctrl+C, printing how to connect.
# NODEAGENT_BENCH_BINARY=path migrates with that agent binary instead of building one.
# Needs: the .NET SDK (unless NODEAGENT_BENCH_BINARY), PostgreSQL server binaries (with auto_explain), python3.
set -euo pipefail
students=${1:-200}
days=${2:-30}
case "$students$days" in *[!0-9]*|'') echo "usage: [VIEWS_KEEP_SERVER=1] bench/views.sh [STUDENTS] [DAYS]   (whole numbers; defaults 200 30)" >&2; exit 2;; esac
[ "$students" -gt 0 ] && [ "$days" -gt 0 ] || { echo "STUDENTS and DAYS must be positive" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
queries="$root/bench/classes/queries.sql"
[ -f "$queries" ] || { echo "views.sh: $queries not found" >&2; exit 1; }
work=$(mktemp -d /tmp/nodeagent-views.XXXXXX)
mkdir -p "$out"
. "$root/bench/lib.sh"
sleeper=
trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; throwaway_pg_stop; rm -rf "$work"' EXIT
stamp=$(date -u +%Y%m%d-%H%M%S)
report="$out/views-$stamp.txt"
plans="$out/views-plans.txt"

# Large enough to hold the generated data; WAL settings only speed up the load.
migrated_database "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=30min"
migrations=$(psql -X -At -d monitordb -c "SELECT string_agg(format('%s %s', version, name), ', ' ORDER BY version) FROM node_monitor_migrations")

echo "== generating $students students x $days days"
started=$(date +%s.%N)
psql -X -d monitordb -v ON_ERROR_STOP=1 -v students="$students" -v days="$days" -f "$root/bench/classes/generate.sql" | tee "$work/generate.out"
generate_s=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")

restart_server() {
  "${THROWAWAY_PG_AS[@]}" pg_ctl -D "$THROWAWAY_PG_DIR/data" -m fast -w restart >/dev/null
}

# One file per query: its name, then its text.
python3 - "$queries" "$work/q" <<'PY'
import os, re, sys
text, dest = open(sys.argv[1]).read(), sys.argv[2]
os.makedirs(dest)
blocks = re.split(r'^-- query:[ \t]*(\S+)[^\n]*\n', text, flags=re.M)
for i, (name, body) in enumerate(zip(blocks[1::2], blocks[2::2])):
    body = body.strip()
    if body:
        with open(os.path.join(dest, f"{i:03d}.sql"), "w") as f:
            f.write(name + "\n" + body.rstrip().rstrip(';') + "\n")
PY
ls "$work/q"/*.sql >/dev/null 2>&1 || { echo "views.sh: no '-- query: <name>' block in $queries" >&2; exit 1; }

echo "== running $(ls "$work/q" | wc -l) queries (cold, then 5 warm runs each)"
: >"$work/plans"
for file in "$work/q"/*.sql; do
  id=$(basename "$file" .sql)
  name=$(head -n 1 "$file")
  tail -n +2 "$file" >"$work/$id.query"
  {
    echo "\\o $work/$id.cold.json"
    echo "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)"; cat "$work/$id.query"; echo ";"
    for run in 1 2 3 4 5; do
      echo "\\o $work/$id.warm$run.json"
      echo "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)"; cat "$work/$id.query"; echo ";"
    done
    # Once more for the record, with the plans of the statements run inside functions that take 10 ms or more (all of
    # them would be one per row for a function called per row).
    echo "\\o $work/$id.plan.txt"
    echo "LOAD 'auto_explain';"
    echo "SET auto_explain.log_min_duration = 10; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;"
    echo "SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice;"
    echo "EXPLAIN (ANALYZE, BUFFERS)"; cat "$work/$id.query"; echo ";"
  } >"$work/$id.run.sql"
  restart_server
  if ! psql -X -q -At -d monitordb -v ON_ERROR_STOP=1 -f "$work/$id.run.sql" 2>"$work/$id.nested.txt"; then
    echo "query $name failed:" >&2; cat "$work/$id.nested.txt" >&2
    echo "$name" >>"$work/failed"
    continue
  fi
  printf '  %s\n' "$name"
  {
    printf '==== %s\n\n' "$name"
    cat "$work/$id.query"
    printf '\n---- plan (warm)\n'
    cat "$work/$id.plan.txt"
    if grep -q 'Query Text' "$work/$id.nested.txt"; then
      printf '\n---- statements inside functions (auto_explain)\n'
      sed 's/^psql:[^ ]*: NOTICE:  /NOTICE:  /' "$work/$id.nested.txt"
    fi
    printf '\n'
  } >>"$work/plans"
done

{
  echo "Node Monitor: the staff's queries on a generated class        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine:    $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "server:     $(psql -X -At -d monitordb -c 'SHOW server_version'), shared_buffers $(psql -X -At -d monitordb -c 'SHOW shared_buffers'), work_mem $(psql -X -At -d monitordb -c 'SHOW work_mem'), jit $(psql -X -At -d monitordb -c 'SHOW jit')"
  echo "schema:     $migrations"
  echo "data:       $students students x $days days, generated in $generate_s s (bench/classes/generate.sql); database $(psql -X -At -d monitordb -c 'SELECT pg_size_pretty(pg_database_size(current_database()))')"
  echo "            $(psql -X -At -d monitordb -c "SELECT string_agg(format('%s %s', t, n), ', ') FROM (VALUES ('file_events', (SELECT count(*) FROM file_events)), ('file_state', (SELECT count(*) FROM file_state)), ('file_contents', (SELECT count(*) FROM file_contents)), ('process_events', (SELECT count(*) FROM process_events))) v(t, n)")"
  echo "queries:    bench/classes/queries.sql; plans in bench/results/views-plans.txt"
  echo
  python3 - "$work" <<'PY'
import glob, json, os, statistics, sys
work = sys.argv[1]
def load(path):
    with open(path) as f:
        doc = json.load(f)[0]
    plan = doc["Plan"]
    ms = doc.get("Planning Time", 0.0) + doc["Execution Time"]
    return ms, plan
rows = []
for qfile in sorted(glob.glob(os.path.join(work, "q", "*.sql"))):
    qid = os.path.basename(qfile)[:-4]
    name = open(qfile).readline().strip()
    if not os.path.exists(os.path.join(work, f"{qid}.warm5.json")):
        rows.append((name, "-", "failed", "", "", ""))
        continue
    cold, plan = load(os.path.join(work, f"{qid}.cold.json"))
    warm = [load(os.path.join(work, f"{qid}.warm{i}.json"))[0] for i in range(1, 6)]
    median = statistics.median(warm)
    node = plan["Node Type"]
    if plan.get("Function Name"):
        node += f" ({plan['Function Name']})"
    returned = int(plan["Actual Rows"] * plan.get("Actual Loops", 1))
    rows.append((name, str(returned), f"{cold:.1f}", f"{median:.1f}", node, "yes" if median < 100 else "NO"))
header = ("query", "rows", "cold ms", "warm median ms", "top plan node", "< 100 ms")
widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
right = {1, 2, 3}
def fmt(r):
    return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
print(fmt(header))
print("  ".join("-" * w for w in widths))
for r in rows:
    print(fmt(r))
PY
} | tee "$report"
cp "$work/plans" "$plans"

if [ "${VIEWS_KEEP_SERVER:-0}" = 1 ]; then
  echo
  echo "The server keeps running:  psql -h $PGHOST -p $PGPORT -U postgres -d monitordb"
  echo "  (ConnectionStrings__monitordb=\"Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres\")"
  if [ -t 0 ]; then
    read -r -p "Enter stops it and removes its data. " _ || true
  else
    echo "Stop it with: kill -INT $$"
    trap 'exit 0' INT TERM
    while :; do sleep 3600 & sleeper=$!; wait "$sleeper" || true; done
  fi
fi
[ ! -s "$work/failed" ] || { echo "failed: $(tr '\n' ' ' <"$work/failed")" >&2; exit 1; }
