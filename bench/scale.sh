#!/usr/bin/env bash
# Scale benchmark: many simulated agents (default 1,000 nodes of 10,000 files, scans every 60 s, 1,000 file
# events/s and 200 process execs/s in all) writing through the agent's own stores into one throwaway
# PostgreSQL, in real time: the first start's baseline, a steady phase, then unchanged trees. Reports store
# latency per kind, throughput against the target, database growth (per day with unchanged trees) and the
# views' response times at that size (and bench/classes/queries.sql's, when it exists).
#
#   bench/scale.sh [ScaleBench options]        e.g. --nodes 50 --steady-minutes 2 --unchanged-minutes 1 --no-baseline
#   (bench/scale.sh --help lists them. The defaults are the full run: the baseline of 10 million create events,
#   which took 50 minutes on a 2-core machine, then 10 + 1 + 5 minutes and the queries; --no-baseline skips the first)
# Needs: the .NET SDK, PostgreSQL server binaries. The report goes to bench/results/scale-<timestamp>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
mkdir -p "$out"

nodes=1000 pool=1 shared=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --nodes) nodes=${args[i + 1]} ;;
    --pool-size) pool=${args[i + 1]} ;;
    --shared-pool) shared=${args[i + 1]} ;;
    --help | -h) help=1 ;;
  esac
done

echo "== building"
dotnet build "$root/bench/ScaleBench/ScaleBench.csproj" -c Release -v quiet -nologo >"$out/scale-build.log" || { cat "$out/scale-build.log"; exit 1; }
bench=(dotnet "$root/bench/ScaleBench/bin/Release/net10.0/ScaleBench.dll")
[ -n "${help:-}" ] && exec "${bench[@]}" --help

. "$root/NodeAgent/throwaway-postgres.sh"
trap 'throwaway_pg_stop' EXIT
# Every agent holds its own pool's connections: the server must accept them all, plus a few for the probes.
if [ "$shared" -gt 0 ]; then connections=$((shared + 20)); else connections=$((nodes * pool + 20)); fi
# Sized for a 24 GiB machine shared with other work: a tenth of it for shared buffers, WAL allowed to grow
# between checkpoints so that the baseline's load is not one checkpoint after another.
THROWAWAY_PG_OPTIONS="-c max_connections=$connections -c shared_buffers=2GB -c effective_cache_size=8GB \
  -c max_wal_size=16GB -c checkpoint_timeout=15min -c wal_buffers=64MB -c maintenance_work_mem=512MB \
  -c log_min_messages=warning ${THROWAWAY_PG_OPTIONS:-}"
throwaway_pg_start
psql -d postgres -qc 'CREATE DATABASE monitordb'
echo "== PostgreSQL on port $PGPORT (data in $THROWAWAY_PG_DIR), max_connections=$connections"

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit with uncommitted changes"
label="source commit $commit; PostgreSQL $(postgres --version 2>/dev/null | awk '{print $3}') on this machine; other engineers' tests may run here at the same time"
"${bench[@]}" --connection "Host=$PGHOST;Port=$PGPORT;Username=$PGUSER;Database=monitordb" \
  --queries "$root/bench/classes/queries.sql" --results "$out" --label "$label" "$@"
