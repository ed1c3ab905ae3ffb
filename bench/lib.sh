# Sourced by the benchmarks (changes.sh, processes.sh, templates.sh, views.sh) once they have set root: the steps they share, from
# checking the tools to stopping the agent (their drivers' shared Python is bench/benchlib.py). The functions read and set
# the scripts' variables root, work, tree, helpers, agent_bin, build, built_from, http_port, agent_pid, started,
# driver_pid, stopped_code and report.
. "$root/NodeAgent/throwaway-postgres.sh"

require_tools() { # script name, tools: exits 1 naming the first tool that is not on PATH
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool not found" >&2; exit 1; }
  done
}

stop_pid() { # pid: SIGTERM, then SIGKILL after 15 s; sets stopped_code to its exit code
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null && stopped_code=0 || stopped_code=$?
}

cleanup() { # the EXIT trap: stops the driver, the processes named in $helpers (pids in $work/NAME.pid), the agent and PostgreSQL; removes $work
  [ -n "$driver_pid" ] && stop_pid "$driver_pid"
  local f
  for f in $helpers; do
    if [ -s "$work/$f.pid" ]; then kill -TERM "$(cat "$work/$f.pid")" 2>/dev/null || true; fi
  done
  [ -n "$agent_pid" ] && stop_pid "$agent_pid"
  throwaway_pg_stop
  rm -rf "$work"
}

source_state() { # the commit, and how many files under NodeAgent/ and ServiceDefaults/ differ from it
  local dirty
  dirty=$(git -C "$root" --no-optional-locks status --porcelain -- NodeAgent ServiceDefaults 2>/dev/null | wc -l || true)
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$([ "$dirty" -gt 0 ] && echo " with uncommitted changes in $dirty files under NodeAgent/ and ServiceDefaults/")"
}

build_agent() { # sets agent_bin, build and built_from: the NODEAGENT_BENCH_BINARY agent, else a JIT and (with clang) a NativeAOT build in $work
  local after_build
  built_from=$(source_state)
  if [ -n "${NODEAGENT_BENCH_BINARY:-}" ]; then
    agent_bin=$(readlink -f "$NODEAGENT_BENCH_BINARY") build="given binary $NODEAGENT_BENCH_BINARY (NODEAGENT_BENCH_BINARY), not built here"
    built_from="unknown (not built by this run)"
  else
    echo "== building (JIT$(command -v "${CLANG:-clang-14}" >/dev/null && echo ' and NativeAOT'); $built_from)"
    # A build of its own (--artifacts-path): NodeAgent/bin and obj are left to whoever else builds there.
    dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -p:PublishAot=false --artifacts-path "$work/artifacts" \
      -o "$work/jit" >"$work/build-jit.log" 2>&1 || { cat "$work/build-jit.log"; exit 1; }
    agent_bin="$work/jit/NodeAgent" build="JIT build (dotnet publish -p:PublishAot=false)"
    if command -v "${CLANG:-clang-14}" >/dev/null; then
      if dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -r linux-x64 -p:CppCompilerAndLinker="${CLANG:-clang-14}" \
          --artifacts-path "$work/artifacts" -o "$work/aot" >"$work/build-aot.log" 2>&1; then
        agent_bin="$work/aot/NodeAgent" build="NativeAOT build (linux-x64, ${CLANG:-clang-14}); the JIT build was made too but not run"
      else
        tail -n 20 "$work/build-aot.log"
        echo "NativeAOT publish failed: running the JIT build"
        build="JIT build (dotnet publish -p:PublishAot=false); the NativeAOT publish failed"
      fi
    else
      build="JIT build (dotnet publish -p:PublishAot=false); no ${CLANG:-clang-14}, so no NativeAOT build"
    fi
    echo "agent: $build"
    rm -rf "$work/artifacts"
    after_build=$(source_state)
    [ "$after_build" = "$built_from" ] || built_from="$built_from when the build started, $after_build when it ended"
  fi
}

start_postgres() { # server options: a throwaway PostgreSQL with an empty database monitordb, and a free loopback port in http_port
  THROWAWAY_PG_OPTIONS="$1" throwaway_pg_start
  psql -d postgres -qc 'CREATE DATABASE monitordb'
  http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

start_agent() { # settings (NAME=value) besides the common ones: starts the agent on $tree, logging to $work/agent.log; sets agent_pid and started
  echo "== starting the agent"
  : >"$work/agent.log"
  env DOTNET_ENVIRONMENT=Production \
    ConnectionStrings__monitordb="Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres" \
    Agent__NodeName=bench Agent__MountPath="$tree" "$@" \
    "$agent_bin" --urls="http://127.0.0.1:$http_port" >"$work/agent.log" 2>&1 &
  agent_pid=$!
  started=$SECONDS
}

wait_for_agent() { # ready test, failed test, message, log pattern: waits up to 120 s for the agent to be ready, else prints the message and its log and exits 1
  until "$1"; do
    if ! kill -0 "$agent_pid" 2>/dev/null || [ $((SECONDS - started)) -gt 120 ] || "$2"; then
      echo "$3" >&2
      cat "$work/agent.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "ready after $((SECONDS - started)) s: $(grep -m1 "$4" "$work/agent.log" | sed 's/^.*\] //')"
}

finish_run() { # waits for the driver; if it failed, shows the agent's log and exits 1, else stops the agent and adds its exit code to $report
  local code
  wait "$driver_pid" || { code=$?; driver_pid=; echo "The benchmark failed ($code); the agent's log ends:" >&2; tail -n 40 "$work/agent.log" >&2; exit 1; }
  driver_pid=
  stop_pid "$agent_pid"
  agent_pid=
  echo "agent exit code on SIGTERM: $stopped_code" | tee -a "$report"
  echo "== written to ${report#"$root"/}"
}

migrated_database() { # server options: a throwaway PostgreSQL with a database monitordb migrated by the agent (the
  # NODEAGENT_BENCH_BINARY agent, else a JIT Release build); sets agent to the agent's command line
  if [ -n "${NODEAGENT_BENCH_BINARY:-}" ]; then
    agent=("$NODEAGENT_BENCH_BINARY")
  else
    echo "== building the agent"
    dotnet build "$root/NodeAgent/NodeAgent.csproj" -c Release >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; exit 1; }
    agent=(dotnet "$root/NodeAgent/bin/Release/net10.0/NodeAgent.dll")
  fi
  THROWAWAY_PG_OPTIONS="$1" throwaway_pg_start
  psql -X -q -d postgres -c 'CREATE DATABASE monitordb'
  ConnectionStrings__monitordb="Host=$PGHOST;Port=$PGPORT;Database=monitordb;Username=postgres" \
    "${agent[@]}" --Agent:MigrateOnly=true >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }
}
