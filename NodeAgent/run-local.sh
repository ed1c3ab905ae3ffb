#!/usr/bin/env bash
# Runs the agent end to end on this machine: one scan of a directory into PostgreSQL, then the
# verification query. With no ConnectionStrings__monitordb set, it starts a throwaway PostgreSQL
# from the local server binaries and removes it afterwards.
#
#   NodeAgent/run-local.sh [DIRECTORY]      default: AppHost/samples/node-1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target=$(cd "${1:-$root/AppHost/samples/node-1}" && pwd)

if [ -z "${ConnectionStrings__monitordb:-}" ]; then
  # shellcheck source=throwaway-postgres.sh
  . "$here/throwaway-postgres.sh"
  trap throwaway_pg_stop EXIT
  throwaway_pg_start
  psql -d postgres -qc 'CREATE DATABASE monitordb'
  export ConnectionStrings__monitordb="Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres"
  echo "run-local: throwaway PostgreSQL on $PGHOST:$PGPORT (removed on exit)"
fi

dotnet run --project "$root/NodeAgent" -c Release -- \
  --Agent:RunOnce=true --Agent:MountPath="$target" --Agent:NodeName="${AGENT_NODE_NAME:-$(hostname)}"

# The verification query of the original assignment, on the agent's own database (libpq-env.py turns the
# connection string into PG* variables, quoted values and all).
eval "$(python3 "$here/libpq-env.py" "$ConnectionStrings__monitordb")"
psql -P pager=off -c 'SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4;'
