#!/usr/bin/env bash
# File-changes benchmark of the long-running agent, side by side in one run with `inotifywait -m -r` (inotify-tools)
# as the floor for seeing an event:
#  - steady phase: RATE file writes per second for SECONDS s (open, write 200-2000 bytes, close; .c and .py files, a
#    fifth of them new, the rest rewrites); write-to-stored latency p50/p90/p99/max (goal: p99 under 250 ms, every
#    write stored within 1 s) against write-to-seen of inotifywait's CLOSE_WRITE line, and CPU and peak RSS of both;
#  - burst: BURST new files in 100 new directories written as fast as one process can; the time until the agent's
#    stored state (file_state) equals the disk, against the time inotifywait printed its last CLOSE_WRITE line for
#    them; the agent's overflow and rescan counters.
# The agent runs with its default Changes settings (QuietWindow 100 ms, MaxWait 3 s) and a scan every minute; it is
# the NativeAOT build when clang is there (CLANG=clang-14), else the JIT build. inotifywait watches the same events
# as the agent (INOTIFYWAIT_EVENTS, empty for all events, which then include the agent's own reads of the files).
# The table goes to stdout and to bench/results/changes-<date>.txt. NODEAGENT_BENCH_BINARY=path runs that agent binary
# instead of building one. BURST_WAIT=seconds (default 120) is how long after the burst's last write the agent may
# take to store it before the run gives up on it (and reports how far it got). BENCH_PG_OPTIONS adds server options
# (e.g. "-c shared_preload_libraries=pg_stat_statements -c track_functions=all" to see what the statements cost).
# AGENT_ENV="NAME=value ..." adds environment for the agent (e.g. DOTNET_GCGen0MaxBudget=200000).
#
#   bench/changes.sh [RATE] [SECONDS] [BURST]      defaults: 1000 30 100000
# Needs: root or a user that may run PostgreSQL, the .NET SDK, PostgreSQL server binaries, python3, curl,
# inotifywait (apt-get install inotify-tools).
set -euo pipefail
rate=${1:-1000}
seconds=${2:-30}
burst=${3:-100000}
case "$rate$seconds$burst" in *[!0-9]*) echo "usage: bench/changes.sh [RATE] [SECONDS] [BURST]   (whole numbers; defaults 1000 30 100000)" >&2; exit 2;; esac
[ "$rate" -gt 0 ] && [ "$seconds" -gt 0 ] && [ "$burst" -gt 0 ] || { echo "RATE, SECONDS and BURST must be positive" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
. "$root/bench/lib.sh"
require_tools changes.sh dotnet python3 curl inotifywait
work=$(mktemp -d /tmp/nodeagent-bench.XXXXXX)
mkdir -p "$out"

agent_pid= driver_pid= stopped_code=
# The driver stops its inotifywait itself; cleanup stops it for a driver that was killed.
helpers=inotifywait
trap cleanup EXIT

cp "$root/bench/benchlib.py" "$work/"
# The driver: tree, writers, inotifywait reader, matching and the report. Modes: mktree, run.
cat >"$work/driver.py" <<'PY'
import bisect, calendar, collections, hashlib, math, os, random, re, signal, subprocess, sys, threading, time, urllib.request
from benchlib import agent_watch, cpu_seconds, percentile, problem_lines, psql, read_agent_log, say, status_mib, tree_cpu_seconds, write_report

NODE = "bench"
STUDENTS = 100
BLOCK = "".join(f"    total = total + value_{i} * {i}  # step {i} of the exercise\n" for i in range(60)).encode()


def pool_size(rate):
    # Rewrites come at 4/5 of the rate; a pool of 2.4 x rate paths rewrites each one every 3 s at the earliest, and
    # never less than 3,000 paths (30 per student).
    return max(3000, math.ceil(2.4 * rate))


def pool_path(k):
    student, j = k % STUDENTS, k // STUDENTS
    return f"s{student:03d}/hw1/ex{j:03d}.{'c' if j % 2 == 0 else 'py'}"


def content(n, path, size):
    head = f"# write {n} of {path}\n".encode()
    body = BLOCK * (size // len(BLOCK) + 1)
    return (head + body)[:max(size, len(head))]


def mktree(tree, rate):
    rnd = random.Random(1)
    for s in range(STUDENTS):
        d = os.path.join(tree, f"s{s:03d}", "hw1")
        os.makedirs(d)
        for name in ("README.md", "Makefile", "notes.txt"):
            with open(os.path.join(d, name), "wb") as f:
                f.write(content(-1, name, rnd.randint(200, 2000)))
    for k in range(pool_size(rate)):
        p = pool_path(k)
        with open(os.path.join(tree, p), "wb") as f:
            f.write(content(-1, p, rnd.randint(200, 2000)))


def metric_sum(text, name):
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        rest = line[len(name):]
        if rest.startswith("{"):
            rest = rest[rest.rindex("}") + 1:]
        total += float(rest.split()[0])
        found = True
    return total if found else None


def ms(v):
    return "never" if v == math.inf else f"{v * 1000:.2f}" if abs(v) < 0.01 else f"{v * 1000:.1f}"


class Floor:
    """inotifywait -m -r with its stdout read line by line; every CLOSE_WRITE line timestamped on arrival."""

    def __init__(self, tree, events):
        cmd = ["inotifywait", "-m", "-r"] + (["-e", events] if events else []) + ["--format", "%e %w%f", tree]
        self.command = " ".join(cmd[:-1]) + " <tree>"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.prefix = (tree.rstrip("/") + "/").encode()
        self.close_writes = collections.defaultdict(list)   # path -> arrival times
        self.lines = 0
        self.overflows = 0
        self.last_line_at = 0.0
        self.stderr = []
        ready = threading.Event()

        def read_stderr():
            for line in self.proc.stderr:
                self.stderr.append(line.decode(errors="replace").rstrip())
                if b"Watches established" in line:
                    ready.set()
            ready.set()

        def read_stdout():
            for line in self.proc.stdout:
                now = time.time()
                self.lines += 1
                self.last_line_at = now
                events, _, path = line.rstrip(b"\n").partition(b" ")
                if b"CLOSE_WRITE" in events and path.startswith(self.prefix):
                    self.close_writes[path[len(self.prefix):].decode()].append(now)
                elif b"Q_OVERFLOW" in events:
                    self.overflows += 1

        threading.Thread(target=read_stderr, daemon=True).start()
        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(60) or self.proc.poll() is not None:
            raise SystemExit("inotifywait did not establish its watches: " + " | ".join(self.stderr))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(env):
    tree, rate, seconds, burst = env["BENCH_TREE"], int(env["BENCH_RATE"]), int(env["BENCH_SECONDS"]), int(env["BENCH_BURST"])
    agent, port = int(env["BENCH_AGENT_PID"]), env["BENCH_PORT"]
    agent_alive = agent_watch(agent)

    def metrics(histogram=None):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            return {"error": str(e)}
        if histogram:   # cumulative counts by upper bound ("le"), and "count"
            out = collections.Counter()
            for m in re.finditer(rf'^nodemonitor_changes_{histogram}_bucket\{{[^}}]*le="([^"]+)"[^}}]*\}} (\S+)', text, re.M):
                out[m.group(1)] += float(m.group(2))
            out["count"] = metric_sum(text, f"nodemonitor_changes_{histogram}_count") or 0
            return out
        return {k: metric_sum(text, f"nodemonitor_changes_{k}_total") for k in ("overflows", "rescans")}

    # Until the agent has stored the tree it started with: the steady phase starts from a quiet agent.
    initial = STUDENTS * 3 + pool_size(rate)
    deadline = time.time() + 120
    while int(psql(f"SELECT count(*) FROM file_state WHERE node_name = '{NODE}' AND entry_type = 'f'")) < initial:
        agent_alive()
        if time.time() > deadline:
            raise SystemExit(f"the agent did not store the {initial} files of the starting tree within 120 s")
        time.sleep(0.2)
    time.sleep(1)

    floor = Floor(tree, env.get("INOTIFYWAIT_EVENTS", ""))
    with open(env["BENCH_FLOOR_PID_FILE"], "w") as f:
        f.write(str(floor.proc.pid))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return measure(env, tree, rate, seconds, burst, agent, floor, agent_alive, metrics, say, initial)
    finally:
        floor.stop()


def measure(env, tree, rate, seconds, burst, agent, floor, agent_alive, metrics, say, initial):
    fpid = floor.proc.pid
    pool = pool_size(rate)
    total = rate * seconds
    rnd = random.Random(2)

    # ---- steady phase
    say(f"steady phase: {rate} writes/s for {seconds} s")
    writes = []                      # (path, t_open, t_close, n, size)
    rewrites = 0
    lags = []
    own_seen0 = metrics(histogram="latency_seconds")
    pg = int(env["BENCH_PG_PID"])
    agent_cpu0, floor_cpu0, pg_cpu0 = cpu_seconds(agent), cpu_seconds(fpid), tree_cpu_seconds(pg)
    start = time.time() + 0.2
    for n in range(total):
        target = start + n / rate
        now = time.time()
        if target > now:
            time.sleep(target - now)
        if n % 5 == 4:
            path = f"s{n % STUDENTS:03d}/hw1/new{n:07d}.{'c' if n % 2 == 0 else 'py'}"
        else:
            path = pool_path(rewrites % pool)
            rewrites += 1
        size = rnd.randint(200, 2000)
        data = content(n, path, size)
        t_open = time.time()
        fd = os.open(os.path.join(tree, path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
        t_close = time.time()
        lags.append(t_open - target)
        writes.append((path, t_open, t_close, n, size))
    last_close = writes[-1][2]
    # CPU over the phase: first write until 1 s after the last (the agent's last events are due 100 ms after it).
    time.sleep(max(0.0, last_close + 1 - time.time()))
    phase_end = time.time()
    agent_cpu = cpu_seconds(agent) - agent_cpu0
    floor_cpu = cpu_seconds(fpid) - floor_cpu0
    pg_cpu = tree_cpu_seconds(pg) - pg_cpu0
    phase_secs = phase_end - start
    agent_hwm_steady, floor_hwm_steady = status_mib(agent, "VmHWM"), status_mib(fpid, "VmHWM")
    agent_alive()
    # Drain: at least 5 s after the last write (MaxWait is 3 s), then until the agent has stored nothing for 2 s
    # (an agent that lags keeps storing), at most 60 s after the last write.
    while True:
        agent_alive()
        newest = psql(f"SELECT coalesce(extract(epoch FROM max(stored_at)), 0) FROM file_events WHERE node_name = '{NODE}'")
        now = time.time()
        if now >= last_close + 60 or (now >= last_close + 5 and float(newest) < now - 2):
            break
        time.sleep(0.5)
    drain_secs = time.time() - last_close
    # The events PostgreSQL stored while its CPU was measured (all of the node's events, of every type and source).
    pg_events = int(psql(f"""SELECT count(*) FROM file_events WHERE node_name = '{NODE}'
                               AND stored_at >= to_timestamp({start}) AND stored_at < to_timestamp({phase_end})"""))
    drain_cpu = cpu_seconds(agent) - agent_cpu0 - agent_cpu
    own_seen = metrics(histogram="latency_seconds")

    # \\copy takes one line.
    rows = psql(" ".join(f"""\\copy (SELECT path, extract(epoch FROM stored_at), source, encode(sha256, 'hex'), torn,
                                     extract(epoch FROM occurred_at)
                             FROM file_events WHERE node_name = '{NODE}' AND entry_type = 'f'
                              AND event_type IN ('create', 'modify') AND stored_at >= to_timestamp({start - 1})) TO STDOUT""".split()))
    stored = collections.defaultdict(list)    # path -> [(stored_at, source, sha256, torn, occurred_at)]
    for line in rows.splitlines():
        path, at, source, sha, torn, occurred = line.split("\t")
        stored[path].append((float(at), source, sha, torn == "t", float(occurred)))
    for v in stored.values():
        v.sort()
    floor_times = {p: sorted(v) for p, v in floor.close_writes.items()}

    # Every write has content of its own (its number is in its first line): an event's SHA-256 names the write whose
    # content it stored. A write is stored once an event of its path carries its content or a later write's (a write
    # the agent looked at only after the next write of the same path is folded into that one's event).
    by_path = collections.defaultdict(list)   # path -> [index into writes], in write order
    write_of = {}                             # sha256 -> (path, position in by_path[path])
    for k, (path, t_open, t_close, n, size) in enumerate(writes):
        write_of[hashlib.sha256(content(n, path, size)).hexdigest()] = (path, len(by_path[path]))
        by_path[path].append(k)
    min_gap = min((writes[ks[i + 1]][1] - writes[ks[i]][1] for ks in by_path.values() for i in range(len(ks) - 1)), default=math.inf)
    agent_lat = [math.inf] * len(writes)
    seen_lat = []                  # occurred_at - close, for events carrying the write's own content
    sources = collections.Counter()
    exact = torn = unmatched = 0
    for path, ks in by_path.items():
        covered = 0                # writes ks[:covered] have their stored event
        for at, source, sha, is_torn, occurred in stored.get(path, []):
            torn += is_torn
            hit = write_of.get(sha)
            if hit is None or hit[0] != path:
                unmatched += 1
                continue
            position = hit[1]
            exact += 1
            seen_lat.append(occurred - writes[ks[position]][2])
            while covered <= position:
                agent_lat[ks[covered]] = at - writes[ks[covered]][2]
                sources[source] += 1
                covered += 1

    def first_after_open(times_by_path):
        out = []
        for path, t_open, t_close, *_ in writes:
            times = times_by_path.get(path, [])
            i = bisect.bisect_left(times, t_open)
            out.append(times[i] - t_close if i < len(times) else math.inf)
        return out

    floor_lat = first_after_open(floor_times)
    events_for_writes = sum(len(stored.get(p, [])) for p in by_path)

    # ---- burst
    agent_alive()
    say(f"burst: {burst} new files")
    metrics_before = metrics()
    floor_overflows0 = floor.overflows
    dirs = 100
    per_dir = collections.Counter()
    sizes = collections.Counter()
    burst_cpu0, burst_floor_cpu0, burst_pg_cpu0 = cpu_seconds(agent), cpu_seconds(fpid), tree_cpu_seconds(pg)
    t_start = time.time()
    os.mkdir(os.path.join(tree, "burst"))
    made = -1
    for i in range(burst):
        d = i * dirs // burst
        if d != made:   # each directory just before its files, as an unpacked archive makes them
            os.mkdir(os.path.join(tree, "burst", f"d{d:03d}"))
            made = d
        size = 10 + (i * 7919) % 91
        fd = os.open(os.path.join(tree, "burst", f"d{d:03d}", f"f{i:06d}.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, BLOCK[:size])
        os.close(fd)
        per_dir[f"d{d:03d}"] += 1
        sizes[f"d{d:03d}"] += size
    t_end = time.time()
    say(f"burst written in {t_end - t_start:.1f} s; waiting for the stored state to equal the disk")

    expected = {d: (per_dir[d], sizes[d]) for d in per_dir}
    timeout = int(env.get("BURST_WAIT") or 120)    # after the last write
    equal_at = None
    counts = []
    count = 0
    peak_rss = 0.0
    polls = 0
    while True:
        agent_alive()
        peak_rss = max(peak_rss, status_mib(agent, "VmRSS"))
        polled_at = time.time()
        count = int(psql(f"SELECT count(*) FROM file_state WHERE node_name = '{NODE}' AND path LIKE 'burst/%' AND entry_type = 'f'"))
        polls += 1
        counts.append((polled_at, count))
        if count == burst:
            got = {}
            for line in psql(f"""SELECT split_part(path, '/', 2), count(*), sum(size) FROM file_state
                                  WHERE node_name = '{NODE}' AND path LIKE 'burst/%' AND entry_type = 'f' GROUP BY 1""").splitlines():
                d, c, s = line.split("|")
                got[d] = (int(c), int(s))
            if got == expected:
                equal_at = polled_at
                break
        if time.time() > t_end + timeout:
            break
        time.sleep(0.2)
    burst_agent_cpu = cpu_seconds(agent) - burst_cpu0
    burst_pg_cpu = tree_cpu_seconds(pg) - burst_pg_cpu0
    burst_events = int(psql(f"SELECT count(*) FROM file_events WHERE node_name = '{NODE}' AND stored_at >= to_timestamp({t_start})"))
    # inotifywait: done once it has printed nothing for 1 s.
    while time.time() - max(floor.last_line_at, t_end) < 1:
        time.sleep(0.1)
    burst_floor_cpu = cpu_seconds(fpid) - burst_floor_cpu0
    burst_floor = [t for p, v in floor.close_writes.items() if p.startswith("burst/") for t in v]
    burst_floor_files = sum(1 for p in floor.close_writes if p.startswith("burst/"))
    floor_last = max(burst_floor) if burst_floor else None
    time.sleep(1)
    metrics_after = metrics()
    agent_hwm, floor_hwm = status_mib(agent, "VmHWM"), status_mib(fpid, "VmHWM")
    burst_sources = dict(tuple(l.split("|")) for l in psql(
        f"SELECT source, count(*) FROM file_events WHERE node_name = '{NODE}' AND path LIKE 'burst/%' AND entry_type = 'f' GROUP BY 1 ORDER BY 1").splitlines())

    # ---- agent log
    log, problems = read_agent_log(env["BENCH_AGENT_LOG"])
    batches = []     # (logged at, events, store ms) from the Debug lines "Stored N file events of node X in M ms"
    for l in log:
        m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z .*Stored (\d+) file events of node \S+ in (\d+) ms", l)
        if m:
            at = calendar.timegm(time.strptime(m.group(1).split(".")[0], "%Y-%m-%dT%H:%M:%S")) + float("0." + (m.group(1).split(".") + ["0"])[1])
            batches.append((at, int(m.group(2)), int(m.group(3))))

    def batch_line(label, t0, t1):
        b = [x for x in batches if t0 <= x[0] <= t1]
        if not b:
            return f"  {label}: no 'Stored N file events' lines in the agent's log"
        store = sorted(x[2] for x in b)
        events = sum(x[1] for x in b)
        return (f"  {label}: {len(b):,} batches, {events / len(b):.1f} events per batch on average;\n"
                f"    store time p50 {percentile(store, 50)} ms, p99 {percentile(store, 99)} ms, max {store[-1]} ms;"
                f" storing {100 * sum(store) / 1000 / (t1 - t0):.0f} % of the {t1 - t0:.1f} s")

    # ---- report
    r = []
    w = r.append
    w(f"Node Monitor agent: file changes against inotifywait        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    w(f"machine:    {os.cpu_count()} CPUs (nproc), kernel {os.uname().release}, {env['BENCH_MEM']}, load average {env['BENCH_LOAD']} at the start")
    w(f"            fs.inotify.max_queued_events = {open('/proc/sys/fs/inotify/max_queued_events').read().strip()}, "
      f"max_user_watches = {open('/proc/sys/fs/inotify/max_user_watches').read().strip()}")
    w(f"agent:      {env['BENCH_BUILD']}; source {env['BENCH_SOURCE']}")
    w(f"            default Changes settings (QuietWindow 100 ms, MaxWait 3 s), Agent:Inventory:ScanInterval 00:01:00, "
      f"NodeAgent.Changes logging at Debug")
    w(f"floor:      {floor.command} ({env['BENCH_INOTIFY_VERSION']})")
    w(f"tree:       {tree} ({env['BENCH_FS']}), at the start {STUDENTS} students s000..s099/hw1/ with {initial} files")
    w("")
    w(f"STEADY PHASE: {rate} writes/s for {seconds} s = {total:,} writes (open, write 200-2000 bytes, close; .c and .py)")
    lags.sort()
    w(f"  {total - rewrites:,} new files, {rewrites:,} rewrites of {pool:,} files; achieved {total / (last_close - start):.1f} writes/s; "
      f"behind schedule p99 {percentile(lags, 99) * 1000:.1f} ms, max {lags[-1] * 1000:.1f} ms")
    gap = "each path is written once" if min_gap == math.inf else f"the same path is written at most every {min_gap:.2f} s"
    w(f"  {gap}: each write can be an event of its own (writes to a path closer")
    w(f"  together than the QuietWindow, or for longer than MaxWait, are folded into one event by design)")
    w(f"  inotifywait: time.time() when its first CLOSE_WRITE line for the path at or after the write's open arrived,")
    w(f"    minus time.time() after the close")
    w(f"  agent: stored_at (clock_timestamp() at insert) of the path's first create/modify event that carries this write's")
    w(f"    content (SHA-256) or a later write's, minus the close; same host, same clock; read {drain_secs:.1f} s after the last")
    w(f"    write, once the agent had stored nothing for 2 s (at most 60 s)")
    w("")
    w(f"  {'write-to-seen / -stored, ms':<34}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>9}{'<= 1 s':>9}{'> 1 s':>7}{'never':>7}")

    def row(label, lat, never_column=True):
        s = sorted(lat)
        within = sum(1 for v in s if v <= 1)
        never = sum(1 for v in s if v == math.inf)
        w(f"  {label:<34}{ms(percentile(s, 50)):>8}{ms(percentile(s, 90)):>8}{ms(percentile(s, 99)):>8}{ms(s[-1]):>9}"
          f"{within:>9,}{len(s) - within - never:>7,}{never if never_column else '':>7}")
        return s
    fs = row("inotifywait (CLOSE_WRITE line)", floor_lat)
    ag = row("agent (file_events.stored_at)", agent_lat)

    def ratio(p):
        a, f = percentile(ag, p), percentile(fs, p)
        return "n/a" if math.inf in (a, f) or f <= 0 else f"{a / f:,.0f}x"
    w(f"  {'agent / floor':<34}{ratio(50):>8}{'':>8}{ratio(99):>8}")
    if seen_lat:
        row(f"agent seen: occurred_at, {len(seen_lat):,} *", seen_lat, never_column=False)
        w(f"  (* the events that carry their write's own content; occurred_at = when the agent saw the change)")
    p99 = percentile(ag, 99)
    w(f"  goal: agent p99 under 250 ms: {'met' if p99 < 0.25 else 'NOT met'} ({ms(p99)} ms); every write stored within 1 s: "
      f"{'met' if ag[-1] <= 1 else 'NOT met'}")
    w(f"  agent: {events_for_writes:,} events for the written paths: {exact:,} carry a write's own content (the other writes were")
    w(f"    folded into a later write's event, or never stored), {unmatched:,} carry no write's content (torn, not hashed, or the")
    w(f"    content from before the phase); the events that stored the writes by source: "
      + (", ".join(f"{k} {v:,}" for k, v in sorted(sources.items())) or "none") + f"; torn events {torn}")
    if "error" not in own_seen and "error" not in own_seen0:
        n = own_seen["count"] - own_seen0["count"]
        share = lambda le: f"{100 * (own_seen[le] - own_seen0[le]) / n:.1f} %" if n else "n/a"
        w(f"  agent's own histogram nodemonitor_changes_latency_seconds (seen to stored), phase and drain: {n:,.0f} events,")
        w(f"    <= 0.25 s {share('0.25')}, <= 1 s {share('1')}, <= 10 s {share('10')}")
    w("")
    w(f"  {'resources':<34}{'CPU s':>8}{'% of one core':>15}{'peak RSS MiB (VmHWM)':>23}")
    w(f"  {'inotifywait':<34}{floor_cpu:>8.2f}{100 * floor_cpu / phase_secs:>14.1f}%{floor_hwm_steady:>23.1f}")
    w(f"  {'agent':<34}{agent_cpu:>8.2f}{100 * agent_cpu / phase_secs:>14.1f}%{agent_hwm_steady:>23.1f}")
    w(f"  {'PostgreSQL (all its processes)':<34}{pg_cpu:>8.2f}{100 * pg_cpu / phase_secs:>14.1f}%{'-':>23}")
    per_k = f"{1000 * pg_cpu / pg_events:.3f} s" if pg_events else "n/a"
    w(f"  {'PostgreSQL per 1,000 stored events':<34}{per_k:>8}   ({pg_events:,} events stored in the same {phase_secs:.1f} s)")
    w(f"  (CPU: utime + stime from /proc/PID/stat over the {phase_secs:.1f} s from the first write to 1 s after the last; the agent")
    w(f"   used {drain_cpu:.2f} s more until the read {drain_secs:.1f} s after the last write; peak RSS: VmHWM after the phase)")
    w("")
    w(f"BURST: {burst:,} new files of 10-100 bytes in {dirs} new directories burst/d000..d{dirs - 1:03d}, one process, agent still running")
    w(f"  written in {t_end - t_start:.2f} s ({burst / (t_end - t_start):,.0f} files/s)")
    w(f"  {'':<44}{'from first write':>17}{'from last write':>17}")
    if floor_last is not None:
        w(f"  {'inotifywait: last burst CLOSE_WRITE line':<44}{floor_last - t_start:>16.2f}s{floor_last - t_end:>16.2f}s")
    else:
        w(f"  {'inotifywait: last burst CLOSE_WRITE line':<44}{'none printed':>17}")
    if equal_at is not None:
        w(f"  {'agent: file_state equals the disk':<44}{equal_at - t_start:>16.2f}s{equal_at - t_end:>16.2f}s")
    else:
        w(f"  {'agent: file_state equals the disk':<44}{'':>17}{'NOT in ' + str(timeout) + ' s':>17}")
        t_last, c_last = counts[-1]
        t_prev, c_prev = next(((t, c) for t, c in counts if t >= t_last - 30), counts[0])
        speed = (c_last - c_prev) / (t_last - t_prev) if t_last > t_prev else 0
        eta = f"; at that speed equal about {t_last - t_end + (burst - c_last) / speed:.0f} s after the last write" if speed > 0 else ""
        w(f"  (BURST_WAIT={timeout}: {c_last:,} of {burst:,} files stored at the last poll, {speed:,.0f} files/s over its last {t_last - t_prev:.0f} s{eta})")
    w(f"  (equal: {burst:,} files under burst/ in file_state, and per directory the same count and total size as on disk;")
    w(f"   polled every 0.2 s, {polls} polls)")
    w(f"  inotifywait: printed CLOSE_WRITE for {burst_floor_files:,} of {burst:,} burst files (it misses files made in a new directory")
    w(f"    before it has added its watch there); Q_OVERFLOW lines {floor.overflows - floor_overflows0}"
      f" (whole run {floor.overflows}); CPU {burst_floor_cpu:.2f} s; peak RSS {floor_hwm:.1f} MiB")

    def metric(m, k):
        if "error" in m:
            return "?"
        return "0 (not counted yet)" if m[k] is None else f"{m[k]:g}"
    w("  agent /metrics before -> after the burst:" + (f" ({metrics_after['error']})" if "error" in metrics_after else ""))
    for k in ("overflows", "rescans"):
        w(f"    {'nodemonitor_changes_' + k + '_total':<38}{metric(metrics_before, k)} -> {metric(metrics_after, k)}")
    w(f"  agent: events for burst files by source: " + (", ".join(f"{k} {int(v):,}" for k, v in burst_sources.items()) or "none")
      + f"; CPU {burst_agent_cpu:.2f} s (PostgreSQL {burst_pg_cpu:.2f} s"
      + (f", {1000 * burst_pg_cpu / burst_events:.3f} s per 1,000 of its {burst_events:,} events" if burst_events else "") + ")")
    w(f"    from the first write to {'equal' if equal_at else 'the last poll'}; peak RSS (VmHWM) after the burst {agent_hwm:.1f} MiB"
      f" (highest VmRSS polled {peak_rss:.1f} MiB)")
    w("")
    r.extend(problem_lines(problems))
    w("agent log, batches of file events stored (the Debug lines 'Stored N file events ... in M ms'):")
    w(batch_line("steady phase and drain", start, last_close + drain_secs))
    w(batch_line("burst, until equal" if equal_at else "burst, until the last poll", t_start, equal_at or counts[-1][0]))
    write_report(r, env["BENCH_REPORT"])
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "mktree":
        mktree(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(run(os.environ))
PY

build_agent

echo "== tree"
tree="$work/tree"
python3 "$work/driver.py" mktree "$tree" "$rate"

start_postgres "-c shared_buffers=256MB -c max_wal_size=4GB ${BENCH_PG_OPTIONS:-}"

# shellcheck disable=SC2086 # AGENT_ENV is a list of NAME=value words
start_agent Agent__Inventory__ScanInterval=00:01:00 Logging__LogLevel__NodeAgent.Changes=Debug ${AGENT_ENV:-}
agent_ready() { # it has reconciled its first scan and watches for changes
  grep -q 'Reconciled a scan' "$work/agent.log" && grep -q 'for changes' "$work/agent.log"
}
wait_for_agent agent_ready false "The agent exited or did not reconcile its first scan within 120 s; its log:" 'for changes'

stamp=$(date +%Y%m%d-%H%M%S)
report="$out/changes-$stamp.txt"
BENCH_TREE="$tree" BENCH_RATE="$rate" BENCH_SECONDS="$seconds" BENCH_BURST="$burst" BENCH_AGENT_PID="$agent_pid" \
  BENCH_PORT="$http_port" BENCH_AGENT_LOG="$work/agent.log" BENCH_REPORT="$report" BENCH_FLOOR_PID_FILE="$work/inotifywait.pid" \
  BENCH_BUILD="$build" BENCH_SOURCE="$built_from" BENCH_FS="$(df --output=fstype "$tree" | tail -n 1)" \
  BENCH_MEM="$(awk '/^MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)" \
  BENCH_PG_PID="$(head -n 1 "$THROWAWAY_PG_DIR/data/postmaster.pid")" BENCH_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" BENCH_INOTIFY_VERSION="$(inotifywait --help 2>&1 | head -n 1)" \
  INOTIFYWAIT_EVENTS="${INOTIFYWAIT_EVENTS-modify,attrib,close_write,moved_from,moved_to,create,delete,delete_self,move_self}" \
  python3 "$work/driver.py" run &
driver_pid=$!
finish_run
