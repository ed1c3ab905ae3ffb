#!/usr/bin/env bash
# Worst-case memory of the long-running agent (NativeAOT): a tree of ENTRIES entries that changes every 2 s, scanned
# every 2 s, with PostgreSQL stopped for 30 s in the middle. Reports the peak RSS (VmHWM), the highest RSS during the
# outage, the scans stored before the outage and after recovery, the spool's drops and /health during the outage; with
# HEAP_LIMIT (hex bytes, e.g. C000000 or 0xC000000: 192 MiB) the agent runs under that GC heap limit, as .NET applies
# 75 % of a container's limit (192 MiB for the DaemonSet's 256Mi).
#
#   bench/memory.sh [ENTRIES] [HEAP_LIMIT]      defaults: 1000000, none
# NODEAGENT_BENCH_BINARY=path runs that agent binary instead of publishing one; IN_OUTAGE="command {pid}" runs a
# command at the end of the outage, {pid} replaced by the agent's (e.g. dotnet-gcdump collect of a JIT build's heap).
# Needs: the .NET SDK with clang (NativeAOT, CLANG=clang-14; not with NODEAGENT_BENCH_BINARY), PostgreSQL server binaries, python3, curl.
set -euo pipefail
entries=${1:-1000000}
# NativeAOT reads DOTNET_ numbers as bare hex digits: with a 0x prefix the limit would silently not apply.
heap_limit=${2:-}
heap_limit=${heap_limit#0[xX]}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nodeagent-bench.XXXXXX)
. "$root/NodeAgent/throwaway-postgres.sh"
agent_pid= toucher_pid=
cleanup() {
  [ -n "$toucher_pid" ] && kill "$toucher_pid" 2>/dev/null || true
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  throwaway_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${NODEAGENT_BENCH_BINARY:-}" ]; then
  agent_bin=$NODEAGENT_BENCH_BINARY
  echo "== agent: $agent_bin (NODEAGENT_BENCH_BINARY)"
else
  echo "== building (NativeAOT)"
  dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -r linux-x64 -p:CppCompilerAndLinker="${CLANG:-clang-14}" \
    -o "$work/aot" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
  agent_bin="$work/aot/NodeAgent"
fi

echo "== tree of $entries entries (names of 35-41 bytes)"
python3 - "$work/tree" "$entries" <<'PY'
import os, sys
root, total = sys.argv[1], int(sys.argv[2])
per_dir = 999
made, d = 0, 0
kinds = ["access-log-2024-01-01-{:09d}.log.gz", "metrics-snapshot-{:012d}.parquet", "build-output-{:010d}.tar.zst"]
while made < total:
    sub = os.path.join(root, f"tenant-{d:04d}-workspace")
    os.makedirs(sub)
    made += 1
    for f in range(min(per_dir, total - made)):
        with open(os.path.join(sub, kinds[f % 3].format(d * per_dir + f)), "wb") as fh:
            fh.write(b"x" * (f % 97))
        made += 1
    d += 1
PY

THROWAWAY_PG_OPTIONS="-c shared_buffers=256MB -c max_wal_size=4GB" throwaway_pg_start
psql -d postgres -qc 'CREATE DATABASE monitordb'
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
scans() { psql -d monitordb -tAc 'SELECT count(*) FROM scans' 2>/dev/null || echo 0; }

env ConnectionStrings__monitordb="Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres;Timeout=2;Command Timeout=30" \
  Agent__NodeName=memtest Agent__MountPath="$work/tree" Agent__Inventory__ScanInterval=00:00:02 \
  ${heap_limit:+DOTNET_GCHeapHardLimit=$heap_limit} \
  "$agent_bin" --urls="http://127.0.0.1:$http_port" >"$work/agent.log" 2>&1 &
agent_pid=$!
( i=0; while :; do touch "$work/tree/tenant-0000-workspace/changed-$i.tmp"; i=$((i+1)); sleep 2; done ) &
toucher_pid=$!

rss() { awk '/^VmRSS/{print int($2/1024)}' "/proc/$agent_pid/status"; }
watch_rss() { # seconds -> prints the highest RSS (MiB) seen
  local end=$((SECONDS + $1)) peak=0 now
  while [ $SECONDS -lt $end ]; do now=$(rss); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.5; done
  echo "$peak"
}

echo "== 20 s with the database up"
watch_rss 20 >/dev/null
before=$(scans)
echo "== 30 s with the database stopped"
"${THROWAWAY_PG_AS[@]}" pg_ctl -D "$THROWAWAY_PG_DIR/data" -m fast stop >/dev/null
outage_peak=$(watch_rss 29)
[ -n "${IN_OUTAGE:-}" ] && bash -c "${IN_OUTAGE//\{pid\}/$agent_pid}" || true
health=$(curl -s -w ' HTTP %{http_code}' "http://127.0.0.1:$http_port/health" || true)
# What is held at that moment, by the agent's own account and the GC's.
held=$(curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^(nodemonitor_changes_held_bytes|nodemonitor_spool_[a-z_]+|dotnet_gc_last_collection_(heap_size_bytes|memory_committed_size_bytes))[{ ]' || true)
"${THROWAWAY_PG_AS[@]}" pg_ctl -D "$THROWAWAY_PG_DIR/data" -l "$THROWAWAY_PG_DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$THROWAWAY_PG_DIR -c shared_buffers=256MB -c max_wal_size=4GB" start >/dev/null
echo "== 40 s after recovery"
watch_rss 40 >/dev/null
after=$(scans)
hwm=$(awk '/^VmHWM/{print int($2/1024)}' "/proc/$agent_pid/status")
kill -TERM "$agent_pid"; wait "$agent_pid" && code=0 || code=$?
agent_pid=

echo "== result (entries $entries, heap limit ${heap_limit:-none})"
echo "peak RSS (VmHWM) MiB:        $hwm"
echo "highest RSS in outage MiB:   $outage_peak"
echo "scans stored before outage:  $before"
echo "scans stored after recovery: $((after - before))"
echo "spool drops logged:          $(grep -c 'Spool full.*dropped' "$work/agent.log" || true)"
echo "'no new scans taken' logged: $(grep -c 'no new scans taken' "$work/agent.log" || true)"
echo "out of memory:               $(grep -ci 'OutOfMemory' "$work/agent.log" || true)"
echo "exit code on SIGTERM:        $code"
echo "/health during the outage:   $health"
echo "held at the end of the outage (/metrics):"
echo "$held" | awk '{ v = $NF; if ($1 ~ /bytes/) printf "  %-100s %8.1f MiB\n", $1, v / 1048576; else printf "  %-100s %10s\n", $1, v }'
