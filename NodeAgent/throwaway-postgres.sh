# Sourced by run-local.sh and bench/run.sh: a throwaway PostgreSQL from the local server binaries
# (initdb and pg_ctl on PATH), on a free loopback port, run as the postgres user when called as root
# (PostgreSQL refuses to run as root). Sets PGHOST, PGPORT, PGUSER for psql and THROWAWAY_PG_DIR.
throwaway_pg_start() {
  local tool
  if ! command -v initdb >/dev/null; then
    # Debian's packages keep the server binaries off PATH.
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] && PATH="$bin:$PATH"
  fi
  for tool in initdb pg_ctl psql python3; do
    command -v "$tool" >/dev/null || { echo "throwaway-postgres: $tool not found (apt-get install postgresql)" >&2; return 1; }
  done
  THROWAWAY_PG_DIR=$(mktemp -d /tmp/nodeagent-pg.XXXXXX)
  THROWAWAY_PG_AS=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$THROWAWAY_PG_DIR"
    THROWAWAY_PG_AS=(runuser -u postgres --)
  fi
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PGHOST=127.0.0.1
  PGUSER=postgres
  export PGHOST PGPORT PGUSER
  "${THROWAWAY_PG_AS[@]}" initdb -D "$THROWAWAY_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  "${THROWAWAY_PG_AS[@]}" pg_ctl -D "$THROWAWAY_PG_DIR/data" -l "$THROWAWAY_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$THROWAWAY_PG_DIR ${THROWAWAY_PG_OPTIONS:-}" start >/dev/null
}

throwaway_pg_stop() {
  [ -n "${THROWAWAY_PG_DIR:-}" ] || return 0
  "${THROWAWAY_PG_AS[@]}" pg_ctl -D "$THROWAWAY_PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$THROWAWAY_PG_DIR"
  THROWAWAY_PG_DIR=
}
