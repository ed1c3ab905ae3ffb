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

# The verification query of the original assignment, through the agent's own connection string.
field() { sed -n "s/.*\(^\|;\)$1=\([^;]*\).*/\2/p" <<<"$ConnectionStrings__monitordb"; }
PGPASSWORD=$(field Password) psql -h "$(field Host)" -p "$(field Port || true)" -U "$(field Username)" -d "$(field Database)" \
  -P pager=off -c 'SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4;'
