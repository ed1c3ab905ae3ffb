#!/usr/bin/env bash
# Process-activity benchmark of the long-running agent, side by side in one run with `forkstat -e exec,exit`
# (Debian's forkstat: the same kernel process-event connector) as the reference:
#  - COUNT short-lived processes spawned as fast as one C spawner can (posix_spawn, PARALLEL in flight, each reaped at
#    once): a tiny C program compiled with gcc below the agent's Agent:MountPath (so the agent keeps it as a student's
#    own program, kind "run", with its default Include globs), which exits at once with code i % 7;
#  - the share of the execs and exits captured by the agent (rows of process_events for the spawned pids; an exit
#    counts when ended_at is set and exit_code is the pid's i % 7) and by forkstat (its exec and exit lines for those
#    pids, with the right exit status); goal: the agent at least 99.9 %, and never fewer than forkstat;
#  - the share of the agent's rows fully enriched from /proc (missing = '{}'), and that their argv is the one spawned;
#  - CPU and peak RSS of the agent and of forkstat, CPU of PostgreSQL;
#  - exit-to-stored latency: a poller on one persistent psql connection reads every 20 ms the rows of process_events
#    written since its last read (xmin) and notes when each pid's row first showed ended_at; minus the time the
#    spawner's waitpid returned for it (same clock). The resolution is the poll period (reported).
# The agent runs with its default Processes settings, Agent:Changes:Enabled=false and a scan a day (only processes
# matter); it is the NativeAOT build when clang is there (CLANG=clang-14), else the JIT build. The table goes to stdout
# and to bench/results/processes-<date>.txt. NODEAGENT_BENCH_BINARY=path runs that agent binary instead of building
# one. PARALLEL=n processes in flight (default: the number of CPUs); CHILD_MS=n makes each process live n ms before
# it exits (default 0: it exits at once).
#
#   bench/processes.sh [COUNT]      default: 5000
# Needs: root (the connector needs CAP_NET_ADMIN), the .NET SDK, PostgreSQL server binaries, python3, curl, gcc,
# forkstat (apt-get install forkstat).
set -euo pipefail
count=${1:-5000}
parallel=${PARALLEL:-$(nproc)}
child_ms=${CHILD_MS:-0}
case "$count$parallel$child_ms" in *[!0-9]*) echo "usage: [PARALLEL=n] [CHILD_MS=n] bench/processes.sh [COUNT]   (whole numbers; default COUNT 5000)" >&2; exit 2;; esac
[ "$count" -gt 0 ] && [ "$parallel" -gt 0 ] || { echo "COUNT and PARALLEL must be positive" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
. "$root/bench/lib.sh"
require_tools processes.sh dotnet python3 curl gcc forkstat
work=$(mktemp -d /tmp/nodeagent-bench.XXXXXX)
mkdir -p "$out"

agent_pid= driver_pid= stopped_code=
# The driver stops its forkstat, spawner and psql itself; cleanup stops them for a driver that was killed.
helpers="forkstat spawner psql"
trap cleanup EXIT

# The child: exits with the code given (after CHILD_MS ms when that is not 0).
cat >"$work/noop.c" <<'C'
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    if (argc > 2 && atoi(argv[2]) > 0)
        usleep(atoi(argv[2]) * 1000);
    return argc > 1 ? atoi(argv[1]) : 0;
}
C

# The spawner: COUNT children with posix_spawn, PARALLEL in flight, each reaped as soon as it exits; writes one line per
# child: index pid spawn-time reaped-time wait-status (CLOCK_REALTIME, the clock of Python's time.time()).
cat >"$work/spawner.c" <<'C'
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: spawner PROGRAM COUNT PARALLEL CHILD_MS OUTFILE\n");
        return 2;
    }
    const char *program = argv[1], *child_ms = argv[4];
    int count = atoi(argv[2]), parallel = atoi(argv[3]);
    pid_t *pids = calloc(count, sizeof *pids);
    double *spawned = calloc(count, sizeof *spawned), *reaped = calloc(count, sizeof *reaped);
    int *status = calloc(count, sizeof *status);
    pid_t *flight_pid = calloc(parallel, sizeof *flight_pid);
    int *flight_index = calloc(parallel, sizeof *flight_index);
    int next = 0, running = 0, done = 0;
    while (done < count) {
        while (running < parallel && next < count) {
            char code[16];
            snprintf(code, sizeof code, "%d", next % 7);
            char *args[] = {(char *)program, code, (char *)child_ms, NULL};
            spawned[next] = now();
            int rc = posix_spawn(&pids[next], program, NULL, NULL, args, environ);
            if (rc != 0) {
                fprintf(stderr, "spawner: posix_spawn %s: %s\n", program, strerror(rc));
                return 1;
            }
            flight_pid[running] = pids[next];
            flight_index[running++] = next++;
        }
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        double t = now();
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("spawner: waitpid");
            return 1;
        }
        for (int k = 0; k < running; k++) {
            if (flight_pid[k] == pid) {
                reaped[flight_index[k]] = t;
                status[flight_index[k]] = st;
                flight_pid[k] = flight_pid[running - 1];
                flight_index[k] = flight_index[running - 1];
                running--;
                done++;
                break;
            }
        }
    }
    FILE *out = fopen(argv[5], "w");
    if (!out) {
        perror("spawner: output");
        return 1;
    }
    for (int i = 0; i < count; i++)
        fprintf(out, "%d %d %.6f %.6f %d\n", i, (int)pids[i], spawned[i], reaped[i], status[i]);
    return fclose(out) == 0 ? 0 : 1;
}
C

cp "$root/bench/benchlib.py" "$work/"
# The driver: forkstat, the poller, the spawner, matching and the report.
cat >"$work/driver.py" <<'PY'
import collections, math, os, re, signal, statistics, subprocess, sys, threading, time, urllib.request
from benchlib import agent_watch, cpu_seconds, percentile, problem_lines, psql, read_agent_log, say, status_mib, tree_cpu_seconds, write_report

NODE = "bench"
POLL = 0.020


def ms(v):
    return f"{v * 1000:.2f}" if abs(v) < 0.01 else f"{v * 1000:.1f}"


def pct(n, d):
    return "n/a" if d == 0 else f"{100 * n / d:.2f} %"


class Poller:
    """One psql kept open on a pipe: every POLL s the rows of process_events written since the last poll (their xmin is
    newer: an insert or the update at exit), and for each pid the time the reply first showed its row, and the row
    with ended_at set."""

    MARK = "__poll_end__"

    def __init__(self, pid_file):
        self.proc = subprocess.Popen(["psql", "-d", "monitordb", "-XAtq", "-F", " "], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        with open(pid_file, "w") as f:
            f.write(str(self.proc.pid))
        self.backend = int(self.query("SELECT pg_backend_pid()")[0])
        self.first_row = {}     # pid -> time
        self.first_ended = {}   # pid -> time
        self.polls = 0
        self.query_time = 0.0
        self.last_xmin = 0
        self.error = None
        self.started = self.stopped = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def query(self, sql):
        self.proc.stdin.write(sql + ";\n\\echo " + self.MARK + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("psql ended: " + self.proc.stderr.read())
            line = line.rstrip("\n")
            if line == self.MARK:
                return lines
            lines.append(line)

    def loop(self):
        self.started = time.time()
        try:
            while not self.stopping.is_set():
                t0 = time.time()
                rows = self.query(f"SELECT pid, ended_at IS NOT NULL, xmin::text::bigint FROM process_events "
                                  f"WHERE node_name = '{NODE}' AND xmin::text::bigint > {self.last_xmin}")
                t1 = time.time()
                self.polls += 1
                self.query_time += t1 - t0
                for line in rows:
                    pid, ended, xmin = line.split(" ")
                    pid = int(pid)
                    self.first_row.setdefault(pid, t1)
                    if ended == "t":
                        self.first_ended.setdefault(pid, t1)
                    self.last_xmin = max(self.last_xmin, int(xmin))
                time.sleep(max(0.0, t0 + POLL - time.time()))
        except Exception as e:  # noqa: BLE001 - reported
            self.error = str(e)
        self.stopped = time.time()

    def stop(self):
        self.stopping.set()
        if self.thread.ident is not None:
            self.thread.join(10)
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


def metrics(port):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return None, str(e)
    found = collections.OrderedDict()
    for line in text.splitlines():
        m = re.match(r'^((?:nodemonitor_processes_|nodemonitor_spool_process_events|process_events_total)[a-z_]*)(\{[^}]*\})? (\S+)', line)
        if m and not m.group(1).endswith(("_bucket", "_sum", "_count")):
            labels = m.group(2) or ""
            if m.group(1) == "process_events_total" and 'process_name="' + os.environ["BENCH_PROGRAM_NAME"] + '"' not in labels:
                continue
            labels = re.sub(r',?(otel_scope_[a-z_]+|job|instance)="[^"]*"', "", labels).replace("{,", "{")
            found[m.group(1) + ("" if labels in ("", "{}") else labels)] = float(m.group(3))
    return found, None


def run(env):
    count, parallel, child_ms = int(env["BENCH_COUNT"]), int(env["BENCH_PARALLEL"]), int(env["BENCH_CHILD_MS"])
    agent, port, pg = int(env["BENCH_AGENT_PID"]), env["BENCH_PORT"], int(env["BENCH_PG_PID"])
    program, work = env["BENCH_PROGRAM"], env["BENCH_WORK"]
    agent_alive = agent_watch(agent)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    poller = Poller(os.path.join(work, "psql.pid"))
    forkstat_out = os.path.join(work, "forkstat.out")
    forkstat_cmd = ["forkstat", "-e", "exec,exit", "-l", "-S"]
    with open(forkstat_out, "w") as fo, open(os.path.join(work, "forkstat.err"), "w") as fe:
        forkstat = subprocess.Popen(forkstat_cmd, stdout=fo, stderr=fe)
    with open(os.path.join(work, "forkstat.pid"), "w") as f:
        f.write(str(forkstat.pid))
    try:
        time.sleep(1)
        if forkstat.poll() is not None:
            raise SystemExit("forkstat exited: " + open(os.path.join(work, "forkstat.err")).read())
        poller.thread.start()
        return measure(env, count, parallel, child_ms, agent, port, pg, program, work, say, agent_alive, poller,
                       forkstat, forkstat_cmd, forkstat_out)
    finally:
        poller.stop()
        if forkstat.poll() is None:
            forkstat.send_signal(signal.SIGINT)
            try:
                forkstat.wait(10)
            except subprocess.TimeoutExpired:
                forkstat.kill()
                forkstat.wait()


def measure(env, count, parallel, child_ms, agent, port, pg, program, work, say, agent_alive, poller, forkstat,
            forkstat_cmd, forkstat_out):
    fpid = forkstat.pid
    metrics_before, _ = metrics(port)
    exclude = {poller.backend}
    agent_cpu0, fk_cpu0, pg_cpu0 = cpu_seconds(agent), cpu_seconds(fpid), tree_cpu_seconds(pg, exclude)

    # ---- spawn
    say(f"spawning {count} processes of {program}, {parallel} in flight")
    spawned_file = os.path.join(work, "spawned.txt")
    t_start = time.time()
    spawner = subprocess.Popen([env["BENCH_SPAWNER"], program, str(count), str(parallel), str(child_ms), spawned_file])
    with open(os.path.join(work, "spawner.pid"), "w") as f:
        f.write(str(spawner.pid))
    if spawner.wait() != 0:
        raise SystemExit(f"the spawner failed ({spawner.returncode})")
    t_end = time.time()
    children = []   # (index, pid, spawned, reaped, status)
    for line in open(spawned_file):
        i, pid, t0, t1, st = line.split()
        children.append((int(i), int(pid), float(t0), float(t1), int(st)))
    first_spawn, last_reap = children[0][2], max(c[3] for c in children)
    # CPU over the phase: the first spawn until 1 s after the last exit.
    time.sleep(max(0.0, last_reap + 1 - time.time()))
    phase_end = time.time()
    phase_secs = phase_end - first_spawn
    agent_cpu = cpu_seconds(agent) - agent_cpu0
    fk_cpu = cpu_seconds(fpid) - fk_cpu0
    pg_cpu = tree_cpu_seconds(pg, exclude) - pg_cpu0
    agent_alive()

    # ---- drain: until the rows with an exit for the spawned pids stay the same for 3 s, at most 60 s after the last exit
    pids = {c[1]: c for c in children}
    last_n, last_change = -1, time.time()
    while True:
        agent_alive()
        if poller.error:
            raise SystemExit("the poller failed: " + poller.error)
        n = sum(1 for p in pids if p in poller.first_ended)
        now = time.time()
        if n != last_n:
            last_n, last_change = n, now
        if now - last_change >= 3 or now >= last_reap + 60:
            break
        time.sleep(0.1)
    drain_secs = time.time() - last_reap
    drain_cpu = cpu_seconds(agent) - agent_cpu0 - agent_cpu
    agent_hwm, agent_rss = status_mib(agent, "VmHWM"), status_mib(agent, "VmRSS")
    fk_hwm = status_mib(fpid, "VmHWM")
    metrics_after, metrics_error = metrics(port)
    poller.stop()
    poll_period = (poller.stopped - poller.started) / max(1, poller.polls)
    forkstat.send_signal(signal.SIGINT)
    try:
        forkstat.wait(10)
    except subprocess.TimeoutExpired:
        forkstat.kill()
        forkstat.wait()

    # ---- the agent's rows
    rows = {}   # pid -> (exe, argv, ended, exit_code, signal, missing, kind)
    dup_rows = 0
    q = (f"SELECT pid, exe, array_to_string(argv, ' '), ended_at IS NOT NULL, coalesce(exit_code, -1), coalesce(signal, -1), "
         f"array_to_string(missing, ','), kind FROM process_events WHERE node_name = '{NODE}' "
         f"AND (exe = '{program}' OR (exe IS NULL AND 'executable' = ANY(missing)))")
    for line in psql(f"\\copy ({q}) TO STDOUT").splitlines():
        pid, exe, argv, ended, code, sig, missing, kind = line.split("\t")
        if int(pid) in rows:
            dup_rows += 1
        rows[int(pid)] = (exe, argv, ended == "t", int(code), int(sig), missing, kind)
    other_kept = psql(f"SELECT coalesce(string_agg(n || ' ' || c, ', '), 'none') FROM (SELECT regexp_replace(coalesce(exe, '?'), '.*/', '') n, "
                      f"count(*) c FROM process_events WHERE node_name = '{NODE}' AND exe IS NOT NULL AND exe <> '{program}' GROUP BY 1 ORDER BY 2 DESC) x").strip()

    # ---- forkstat's lines
    fk_exec, fk_exit, fk_exit_right, fk_exec_named, fk_nobufs, fk_lines = set(), set(), set(), set(), 0, 0
    name = os.path.basename(program)
    for line in open(forkstat_out, errors="replace"):
        if not line.strip():
            break   # the -S statistics follow
        if " nobufs " in line:
            fk_nobufs += 1
            continue
        m = re.match(r"^\S+ (exec|exit)\s+(\d+)\s*(.*)$", line.rstrip("\n"))
        if not m:
            continue
        fk_lines += 1
        kind, pid, rest = m.group(1), int(m.group(2)), m.group(3)
        if pid not in pids:
            continue
        if kind == "exec":
            fk_exec.add(pid)
            if name in rest:
                fk_exec_named.add(pid)
        else:
            fk_exit.add(pid)
            status = rest.split()[0] if rest.split() else ""
            if status.lstrip("-").isdigit() and int(status) == pids[pid][4]:
                fk_exit_right.add(pid)

    # ---- matching
    a_exec = [p for p in pids if p in rows]
    a_exit = [p for p in a_exec if rows[p][2]]
    a_exit_right = [p for p in a_exit if rows[p][3] == pids[p][0] % 7 and rows[p][4] == -1]
    a_full = [p for p in a_exec if rows[p][5] == ""]
    a_argv = [p for p in a_exec if rows[p][1] == f"{program} {pids[p][0] % 7} {child_ms}"]
    a_kind = collections.Counter(rows[p][6] for p in a_exec)
    missing_items = collections.Counter(item for p in a_exec for item in rows[p][5].split(",") if item)
    status_wrong = sum(1 for c in children if c[4] != (c[0] % 7) << 8)
    duplicate_pids = count - len(pids)

    exit_lat = sorted(poller.first_ended[p] - pids[p][3] for p in a_exit if p in poller.first_ended)
    exec_lat = sorted(poller.first_row[p] - pids[p][2] for p in a_exec if p in poller.first_row)
    never_polled = len(a_exit) - len(exit_lat)

    # ---- agent log
    log, problems = read_agent_log(env["BENCH_AGENT_LOG"])

    # ---- report
    r = []
    w = r.append
    w(f"Node Monitor agent: process activity against forkstat        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    w(f"machine:    {os.cpu_count()} CPUs (nproc), kernel {os.uname().release}, {env['BENCH_MEM']}, load average {env['BENCH_LOAD']} at the start")
    w(f"            kernel.pid_max = {open('/proc/sys/kernel/pid_max').read().strip()}, net.core.rmem_max = {open('/proc/sys/net/core/rmem_max').read().strip()}")
    w(f"agent:      {env['BENCH_BUILD']}; source {env['BENCH_SOURCE']}")
    w(f"            default Processes settings (Include: compilers and interpreters, and executables below Agent:MountPath;")
    w(f"            ReceiveBufferBytes 8 MiB), Agent:Changes:Enabled=false, Agent:Inventory:ScanInterval 1.00:00:00")
    w(f"reference:  {' '.join(forkstat_cmd)} ({env['BENCH_FORKSTAT_VERSION']}), stdout to a file")
    w(f"workload:   {count:,} processes of {program}")
    w(f"            (C, gcc -O2, {'exits at once' if child_ms == 0 else f'lives {child_ms} ms'} with code i % 7; below Agent:MountPath, so kept as kind 'run'),")
    w(f"            posix_spawn'd by one C spawner with {parallel} in flight, each reaped as soon as it exits")
    w(f"            spawned in {last_reap - first_spawn:.2f} s ({count / (last_reap - first_spawn):,.0f} processes/s); exit statuses the spawner saw: "
      + ("all as expected" if status_wrong == 0 else f"{status_wrong} NOT as expected")
      + ("" if duplicate_pids == 0 else f"; {duplicate_pids} pids were used twice (counted once)"))
    w("")
    w(f"CAPTURE of the {len(pids):,} spawned pids")
    w(f"  {'':<36}{'execs':>8}{'share':>11}{'exits':>8}{'share':>11}{'right code':>12}{'share':>11}")
    w(f"  {'forkstat (exec / exit lines)':<36}{len(fk_exec):>8,}{pct(len(fk_exec), len(pids)):>11}{len(fk_exit):>8,}{pct(len(fk_exit), len(pids)):>11}"
      f"{len(fk_exit_right):>12,}{pct(len(fk_exit_right), len(pids)):>11}")
    w(f"  {'agent (process_events rows)':<36}{len(a_exec):>8,}{pct(len(a_exec), len(pids)):>11}{len(a_exit):>8,}{pct(len(a_exit), len(pids)):>11}"
      f"{len(a_exit_right):>12,}{pct(len(a_exit_right), len(pids)):>11}")
    met = (len(a_exec) >= 0.999 * len(pids) and len(a_exit_right) >= 0.999 * len(pids)
           and len(a_exec) >= len(fk_exec) and len(a_exit_right) >= len(fk_exit_right))
    w(f"  goal: the agent at least 99.9 % of execs and exits, and never fewer than forkstat: {'met' if met else 'NOT met'}")
    w(f"  (agent: a row for the pid with exe = the program, or with no exe because it was gone before it could be read; an exit: ended_at set, exit_code = i % 7 and no signal;")
    w(f"   forkstat: an exec or exit line for the pid, 'right code' = its exit status = (i % 7) << 8)")
    w(f"  agent rows fully enriched (missing = '{{}}'): {len(a_full):,} = {pct(len(a_full), len(a_exec))} of its rows, {pct(len(a_full), len(pids))} of the spawned;")
    w(f"    missing by item: " + (", ".join(f"{k} {v:,}" for k, v in missing_items.most_common()) or "none"))
    w(f"    argv as spawned: {len(a_argv):,} of {len(a_exec):,} rows; kind: " + ", ".join(f"{k} {v:,}" for k, v in a_kind.most_common())
      + (f"; {dup_rows} pids with more than one row" if dup_rows else ""))
    w(f"  forkstat read the command line (it names {name}) in {len(fk_exec_named):,} of its {len(fk_exec):,} exec lines;"
      f" its 'recv nobufs' lines: {fk_nobufs}")
    w(f"  other processes the agent kept during the run: {other_kept}")
    w("")
    w(f"LATENCY, ms (poller: one psql connection, a poll every {poll_period * 1000:.1f} ms on average, {poller.polls:,} polls,"
      f" {poller.query_time / max(1, poller.polls) * 1000:.1f} ms per query)")
    w(f"  {'':<44}{'n':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>9}")

    def lat_row(label, values):
        if values:
            w(f"  {label:<44}{len(values):>7,}{ms(percentile(values, 50)):>8}{ms(percentile(values, 90)):>8}{ms(percentile(values, 99)):>8}{ms(values[-1]):>9}")
        else:
            w(f"  {label:<44}{0:>7}{'-':>8}{'-':>8}{'-':>8}{'-':>9}")
    lat_row("exit-to-stored (exit row seen - reaped)", exit_lat)
    lat_row("spawn-to-stored (first row seen - spawn)", exec_lat)
    w(f"  (reaped: the spawner's time after its waitpid returned; spawn: its time before posix_spawn; seen: the time the poll")
    w(f"   that first showed the row returned, so each value is high by up to one poll period; same host, same clock;")
    w(f"   drained: read {drain_secs:.1f} s after the last exit, once the exit rows had not changed for 3 s, at most 60 s)"
      + (f"; {never_polled} exit rows never seen by the poller" if never_polled else ""))
    w("")
    w(f"RESOURCES over the {phase_secs:.1f} s from the first spawn to 1 s after the last exit")
    w(f"  {'':<36}{'CPU s':>8}{'% of one core':>15}{'peak RSS MiB (VmHWM)':>23}")
    w(f"  {'forkstat':<36}{fk_cpu:>8.2f}{100 * fk_cpu / phase_secs:>14.1f}%{fk_hwm:>23.1f}")
    w(f"  {'agent':<36}{agent_cpu:>8.2f}{100 * agent_cpu / phase_secs:>14.1f}%{agent_hwm:>23.1f}")
    w(f"  {'PostgreSQL (all its processes) *':<36}{pg_cpu:>8.2f}{100 * pg_cpu / phase_secs:>14.1f}%{'-':>23}")
    w(f"  (CPU: utime + stime from /proc/PID/stat; the agent used {drain_cpu:.2f} s more until the drain ended; peak RSS: VmHWM")
    w(f"   over the agent's life, read after the drain (VmRSS then {agent_rss:.1f} MiB); * without the poller's backend)")
    w("")
    w("agent /metrics before -> after:" + (f" ({metrics_error})" if metrics_error else ""))
    names = list(dict.fromkeys(list((metrics_before or {}).keys()) + list((metrics_after or {}).keys())))
    if not any(n.startswith("nodemonitor_processes_lost_total") for n in names):
        w(f"  {'nodemonitor_processes_lost_total':<58}0 (not counted)")
    for n in names:
        b = (metrics_before or {}).get(n)
        a = (metrics_after or {}).get(n)
        w(f"  {n:<58}{'-' if b is None else f'{b:g}'} -> {'-' if a is None else f'{a:g}'}")
    enobufs = any("The kernel dropped process events" in l for l in log)
    w(f"  (the agent's warning on ENOBUFS, 'The kernel dropped process events', was {'logged' if enobufs else 'not logged'}: lost"
      f"{' counts ENOBUFS' if enobufs else ''}")
    w(f"   {'and' if enobufs else 'then counts only'} gaps in the connector's per-CPU sequence numbers between the messages it parses)")
    w("")
    r.extend(problem_lines(problems, log))
    write_report(r, env["BENCH_REPORT"])
    return 0


if __name__ == "__main__":
    sys.exit(run(os.environ))
PY

build_agent

# Compiled before the agent starts (it would keep gcc's processes). The program lives below the agent's mount path:
# a student's own program.
echo "== programs"
tree="$work/tree"
mkdir -p "$tree/s000/hw1"
program="$tree/s000/hw1/noop"
gcc -O2 -o "$program" "$work/noop.c"
gcc -O2 -o "$work/spawner" "$work/spawner.c"

start_postgres "-c shared_buffers=256MB"

start_agent Agent__Inventory__ScanInterval=1.00:00:00 Agent__Changes__Enabled=false
agent_ready() { # it records process activity and its table process_events exists
  grep -q 'Recording process activity' "$work/agent.log" \
    && [ "$(psql -d monitordb -XAtqc "SELECT to_regclass('process_events') IS NOT NULL" 2>/dev/null)" = t ]
}
agent_cannot() { # it says it cannot record process activity
  grep -q 'Process activity is not recorded' "$work/agent.log"
}
wait_for_agent agent_ready agent_cannot "The agent exited, did not start recording process activity within 120 s, or cannot; its log:" \
  'Recording process activity'
sleep 1   # its first scan of the (tiny) tree is stored and the loop is idle

stamp=$(date +%Y%m%d-%H%M%S)
report="$out/processes-$stamp.txt"
BENCH_COUNT="$count" BENCH_PARALLEL="$parallel" BENCH_CHILD_MS="$child_ms" BENCH_PROGRAM="$program" BENCH_PROGRAM_NAME=noop \
  BENCH_SPAWNER="$work/spawner" BENCH_WORK="$work" BENCH_AGENT_PID="$agent_pid" BENCH_PORT="$http_port" \
  BENCH_AGENT_LOG="$work/agent.log" BENCH_REPORT="$report" BENCH_BUILD="$build" BENCH_SOURCE="$built_from" \
  BENCH_MEM="$(awk '/^MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)" \
  BENCH_PG_PID="$(head -n 1 "$THROWAWAY_PG_DIR/data/postmaster.pid")" BENCH_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" \
  BENCH_FORKSTAT_VERSION="$(forkstat -h 2>&1 | head -n 1)" \
  python3 "$work/driver.py" &
driver_pid=$!
finish_run
