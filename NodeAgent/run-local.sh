#!/usr/bin/env bash
# Runs the agent end to end on this machine: one scan of a directory into PostgreSQL, then the
# verification query. With no ConnectionStrings__monitordb set, it starts a throwaway PostgreSQL
# from the local server binaries (initdb/pg_ctl on PATH) and removes it afterwards.
#
#   NodeAgent/run-local.sh [DIRECTORY]      default: AppHost/samples/node-1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target=${1:-$root/AppHost/samples/node-1}
target=$(cd "$target" && pwd)

cleanup() { :; }
trap 'cleanup' EXIT

if [ -z "${ConnectionStrings__monitordb:-}" ]; then
  for tool in initdb pg_ctl psql; do
    command -v "$tool" >/dev/null || { echo "run-local: $tool not found; install PostgreSQL (apt-get install postgresql) or set ConnectionStrings__monitordb" >&2; exit 1; }
  done
  pgdir=$(mktemp -d /tmp/nodeagent-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    chown postgres "$pgdir"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" initdb -D "$pgdir/data" -U postgres -A trust -E UTF8 >/dev/null
  "${as_pg[@]}" pg_ctl -D "$pgdir/data" -l "$pgdir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdir -c fsync=off" start >/dev/null
  cleanup() { "${as_pg[@]}" pg_ctl -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
  psql -h 127.0.0.1 -p "$port" -U postgres -qc 'CREATE DATABASE monitordb' >/dev/null
  export ConnectionStrings__monitordb="Host=127.0.0.1;Port=$port;Database=monitordb;Username=postgres"
  echo "run-local: throwaway PostgreSQL on 127.0.0.1:$port (removed on exit)"
fi

dotnet run --project "$root/NodeAgent" -c Release -- \
  --Agent:RunOnce=true --Agent:MountPath="$target" --Agent:NodeName="${AGENT_NODE_NAME:-$(hostname)}"

# The verification query of the original assignment.
conn=$ConnectionStrings__monitordb
pghost=$(sed -n 's/.*Host=\([^;]*\).*/\1/p' <<<"$conn"); pgport=$(sed -n 's/.*Port=\([^;]*\).*/\1/p' <<<"$conn")
pgdb=$(sed -n 's/.*Database=\([^;]*\).*/\1/p' <<<"$conn"); pguser=$(sed -n 's/.*Username=\([^;]*\).*/\1/p' <<<"$conn")
PGPASSWORD=$(sed -n 's/.*Password=\([^;]*\).*/\1/p' <<<"$conn") \
  psql -h "$pghost" -p "${pgport:-5432}" -U "$pguser" -d "$pgdb" -P pager=off \
  -c 'SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4;'
