#!/usr/bin/env bash
# Inventory benchmark: one RunOnce of the agent (whole process: start, scan, store, exit) on a
# 200,000-entry tree, against the floor of `find -printf` piped into `psql \copy` of the same rows,
# run alternately; reports medians of wall time and peak RSS (JIT, JIT with ReadyToRun, NativeAOT), and the
# bytes one unchanged rescan adds to the database.
#
#   bench/run.sh [ENTRIES] [ROUNDS]      defaults: 200000 7
# NODEAGENT_BENCH_BINARY=path measures that NativeAOT binary alone (no builds, no JIT or ReadyToRun rows).
# Needs: the .NET SDK, PostgreSQL server binaries, GNU time; NativeAOT needs clang (CLANG=clang-14).
set -euo pipefail
entries=${1:-200000}
rounds=${2:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nodeagent-bench.XXXXXX)
out="$root/bench/results"
mkdir -p "$out"
. "$root/NodeAgent/throwaway-postgres.sh"
trap 'throwaway_pg_stop; rm -rf "$work"' EXIT

aot=0
if [ -n "${NODEAGENT_BENCH_BINARY:-}" ]; then
  # A given NativeAOT binary only: no builds, no JIT or ReadyToRun rows.
  echo "== agent: $NODEAGENT_BENCH_BINARY (NODEAGENT_BENCH_BINARY)"
  mkdir -p "$work/aot" && ln -s "$(readlink -f "$NODEAGENT_BENCH_BINARY")" "$work/aot/NodeAgent"
  aot=1 builds=()
else
  echo "== building"
  dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -p:PublishAot=false -o "$work/jit" >"$out/build-jit.log"
  # The same JIT build with ReadyToRun code for every assembly (framework-dependent, linux-x64).
  dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -r linux-x64 --self-contained false -p:PublishAot=false \
    -p:PublishReadyToRun=true -o "$work/r2r" >"$out/build-r2r.log"
  builds=(jit r2r)
  if command -v "${CLANG:-clang-14}" >/dev/null; then
    dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -r linux-x64 -p:CppCompilerAndLinker="${CLANG:-clang-14}" -o "$work/aot" >"$out/build-aot.log" && aot=1
    echo "AOT publish warnings: $(grep -cE 'warning (IL|CS)' "$out/build-aot.log" || true)"
  fi
fi

echo "== tree of $entries entries"
tree="$work/tree"
python3 - "$tree" "$entries" <<'PY'
import os, sys
root, total = sys.argv[1], int(sys.argv[2])
per_dir = 1000
dirs = max(1, total // (per_dir + 1))
os.makedirs(root)
made = 0
for d in range(dirs):
    sub = os.path.join(root, f"dir{d:04d}", "nested") if d % 10 == 0 else os.path.join(root, f"dir{d:04d}")
    os.makedirs(sub)
    made += 2 if d % 10 == 0 else 1
    for f in range(per_dir):
        if made >= total:
            break
        with open(os.path.join(sub, f"file-{f:05d}.dat"), "wb") as fh:
            fh.write(b"x" * (f % 97))
        made += 1
while made < total:
    open(os.path.join(root, f"extra-{made}"), "wb").close()
    made += 1
PY
find "$tree" -mindepth 1 | wc -l | xargs echo "entries:"

THROWAWAY_PG_OPTIONS="-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min" throwaway_pg_start
psql -d postgres -qc 'CREATE DATABASE monitordb'
psql -d monitordb -qc 'CREATE TABLE floor_entries (path text, entry_type "char", size bigint, modified_at double precision, mode text)'
conn="Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres"

measure() { # label command...  -> appends "label seconds rss_kb" to $work/samples
  # GNU time gives the peak RSS; its elapsed time has 10 ms steps, too coarse for runs of 0.2 s, so the wall
  # time is taken around it in nanoseconds (the same few forks for the floor and the agent).
  local label=$1 started ended; shift
  # Each run starts on a quiet machine: the previous run's writes (a million rows of the floor's table, the
  # agent's list) are flushed first, not left to the checkpointer and the kernel during the next one.
  psql -d monitordb -qc CHECKPOINT >/dev/null; sync
  started=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/time" "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log"; exit 1; }
  ended=$(date +%s%N)
  echo "$label $(( (ended - started) / 1000 )).e-6 $(cat "$work/time")" >>"$work/samples"
}
agent() { # build: jit | r2r | aot
  local binary=("$work/$1/NodeAgent")
  # A changed entry each run, so that every run stores its whole list like the floor does.
  touch "$tree/dir0000/nested/file-00000.dat"
  measure "$1" env ConnectionStrings__monitordb="$conn" Agent__RunOnce=true Agent__MountPath="$tree" Agent__NodeName=bench "${binary[@]}"
}
floor() {
  measure floor bash -c "find '$tree' -mindepth 1 -printf '%P\t%y\t%s\t%T@\t%m\n' | psql -h $PGHOST -p $PGPORT -U postgres -d monitordb -qc '\\copy floor_entries FROM STDIN'"
}

echo "== warm-up"
for b in ${builds[@]+"${builds[@]}"}; do agent "$b"; done; floor; [ $aot = 1 ] && agent aot
: >"$work/samples"
echo "== $rounds alternating rounds"
for _ in $(seq "$rounds"); do
  floor
  for b in ${builds[@]+"${builds[@]}"}; do agent "$b"; done
  [ $aot = 1 ] && agent aot
done

python3 - "$work/samples" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for label, secs, rss in rows:
    by.setdefault(label, []).append((float(secs), int(rss)))
floor = statistics.median(s for s, _ in by["floor"])
print(f"{'run':<8}{'median s':>10}{'x floor':>9}{'median peak RSS MB':>20}   samples (s)")
for label in ["floor", "jit", "r2r", "aot"]:
    if label not in by: continue
    secs = statistics.median(s for s, _ in by[label])
    rss = statistics.median(r for _, r in by[label]) / 1024
    print(f"{label:<8}{secs:>10.3f}{secs / floor:>9.3f}{rss:>20.1f}   {' '.join(f'{s:.3f}' for s, _ in by[label])}")
PY

rescans=${RESCANS:-100}
echo "== bytes stored per unchanged rescan ($rescans rescans of the same tree)"
size_sql="SELECT sum(pg_total_relation_size(t))::bigint FROM unnest(ARRAY['scans','file_lists','file_list_chunks']::regclass[]) t"
agent_bin="$work/jit/NodeAgent"; [ $aot = 1 ] && agent_bin="$work/aot/NodeAgent"
env ConnectionStrings__monitordb="$conn" Agent__RunOnce=true Agent__MountPath="$tree" Agent__NodeName=bench "$agent_bin" >/dev/null
psql -d monitordb -qc 'VACUUM ANALYZE'
before=$(psql -d monitordb -Atc "$size_sql"); lists_before=$(psql -d monitordb -Atc 'SELECT count(*) FROM file_lists')
for _ in $(seq "$rescans"); do
  env ConnectionStrings__monitordb="$conn" Agent__RunOnce=true Agent__MountPath="$tree" Agent__NodeName=bench "$agent_bin" >/dev/null
done
psql -d monitordb -qc 'VACUUM ANALYZE'
after=$(psql -d monitordb -Atc "$size_sql"); lists_after=$(psql -d monitordb -Atc 'SELECT count(*) FROM file_lists')
row=$(psql -d monitordb -Atc 'SELECT avg(pg_column_size(s.*))::int FROM scans s')
echo "lists added by $rescans unchanged rescans: $((lists_after - lists_before))"
echo "bytes added per unchanged rescan (tables and indexes, in whole 8 KiB pages): $(( (after - before) / rescans ))"
echo "scan row: $row bytes"
echo "one stored list of $entries entries: $(psql -d monitordb -Atc "SELECT pg_size_pretty(pg_total_relation_size('file_list_chunks') / greatest(1, (SELECT count(*) FROM file_lists)))") (floor table, uncompressed rows: $(psql -d monitordb -Atc "SELECT pg_size_pretty(pg_total_relation_size('floor_entries') / greatest(1, (SELECT count(*) FROM floor_entries) / $entries))") per copy)"
[ -d "$work/jit" ] && echo "== sizes: JIT publish $(du -sh "$work/jit" | cut -f1), ReadyToRun publish $(du -sh "$work/r2r" | cut -f1)$([ $aot = 1 ] && echo ", AOT binary $(du -hL "$work/aot/NodeAgent" | cut -f1)")"
[ -d "$work/jit" ] || echo "== size: AOT binary $(du -hL "$work/aot/NodeAgent" | cut -f1)"
