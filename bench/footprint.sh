#!/usr/bin/env bash
# Memory footprint of the long-running agent as an operator sizing the DaemonSet sees it: the shipped NativeAOT binary
# with every capability on (inventory, file changes, process activity; run as root) and default settings except
# Agent:Inventory:ScanInterval, on a tree of ENTRIES entries (exactly, directories included) of 400 students' C sources
# (s000..s399/hwNNN/ with a Makefile and .c/.h files of a few hundred bytes to a few KiB each):
#  - first start: the time until the first scan is stored AND the file-change baseline is stored (file_state holds a
#    row for every entry of the tree), and the agent's memory then;
#  - then 20 s of 200 writes/s (rewrites of existing .c files, one write in 25 a new .c file) and the time until the
#    stored state has every write's content (SHA-256) and the new files; the agent's memory then;
#  - memory at both points: VmHWM (peak RSS) and VmRSS from /proc/PID/status, anonymous against file-backed from
#    /proc/PID/smaps_rollup, /proc/PID/smaps summed by kind (the GC's regions range, glibc malloc arenas, thread stacks,
#    other anonymous memory, the binary, other files) with the largest mappings, and the GC's own view from the
#    agent's /metrics (every gc/heap/memory series the runtime instrumentation exposes, named in the report).
# The table goes to stdout and to bench/results/footprint-<date>.txt.
#
#   bench/footprint.sh [ENTRIES]      default: 200000
# Environment:
#   HEAP_LIMIT=0x18000000       run the agent with DOTNET_GCHeapHardLimit (hex bytes; passed without the 0x, which NativeAOT
#                               does not parse), as .NET sets 75 % of a container's memory limit
#   SCAN_INTERVAL=00:01:00      Agent:Inventory:ScanInterval (hh:mm:ss, or whole seconds); the default is the agent's
#   NODEAGENT_BENCH_BINARY=path run that agent binary instead of publishing one (NativeAOT, CLANG=clang-14)
#   AGENT_ENV="NAME=value ..."  more environment for the agent (e.g. MALLOC_ARENA_MAX=2 DOTNET_GCgen0size=2000000; DOTNET_
#                               numbers in bare hex, without 0x, or NativeAOT ignores them)
#   BASELINE_WAIT=3600 WRITES_WAIT=300   seconds the run waits for the baseline and for the writes to be stored
#   AT_BASELINE="command {pid}"  run a command once the baseline is read, {pid} replaced by the agent's (e.g. a gcdump of
#                               a JIT build's heap: dotnet-gcdump collect -p {pid} -o FILE)
#   KEEP_SMAPS=1                also keep the raw /proc/PID/smaps of both points beside the report
# Needs: root (process events need CAP_NET_ADMIN; PostgreSQL runs as the postgres user), the .NET SDK with clang
# (unless NODEAGENT_BENCH_BINARY), PostgreSQL server binaries, python3, curl.
set -euo pipefail
entries=${1:-200000}
case "$entries" in ''|*[!0-9]*) echo "usage: bench/footprint.sh [ENTRIES]   (a whole number; default 200000)" >&2; exit 2;; esac
[ "$entries" -gt 0 ] || { echo "ENTRIES must be positive" >&2; exit 2; }
scan_interval=${SCAN_INTERVAL:-00:01:00}
case "$scan_interval" in
  *[!0-9]*) ;;
  *) scan_interval=$(printf '%02d:%02d:%02d' $((scan_interval / 3600)) $((scan_interval % 3600 / 60)) $((scan_interval % 60)));;
esac
# NativeAOT reads DOTNET_ numbers as bare hex digits: "0x10000000" is a parse error there and the limit is silently not
# applied (CoreCLR accepts the prefix), so the prefix is dropped here.
heap_limit=${HEAP_LIMIT:-}
heap_limit=${heap_limit#0[xX]}
case "$heap_limit" in *[!0-9a-fA-F]*) echo "HEAP_LIMIT must be hex bytes (e.g. 0x18000000)" >&2; exit 2;; esac
[ "$(id -u)" = 0 ] || { echo "footprint.sh: run as root (process activity needs CAP_NET_ADMIN, and every capability is measured)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
. "$root/bench/lib.sh"
require_tools footprint.sh python3 curl psql
[ -n "${NODEAGENT_BENCH_BINARY:-}" ] || require_tools footprint.sh dotnet "${CLANG:-clang-14}"
work=$(mktemp -d /tmp/nodeagent-bench.XXXXXX)
mkdir -p "$out"

agent_pid= driver_pid= stopped_code=
helpers=
trap cleanup EXIT

cp "$root/bench/benchlib.py" "$work/"
# The driver: the tree, the waits, the writes, the memory readings and the report. Modes: mktree, run.
cat >"$work/driver.py" <<'PY'
import hashlib, json, os, random, re, subprocess, sys, time, urllib.request
from benchlib import agent_watch, cpu_seconds, problem_lines, psql, read_agent_log, say, write_report

NODE = "bench"
STUDENTS = 400
KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024
MODULES = ["main", "list", "stack", "queue", "tree", "hash", "parse", "lexer", "matrix", "vector", "sort", "io", "util",
           "shell", "alloc", "graph"]
C_BODY = "".join(
    f"static int step_{i}(int *values, int n)\n{{\n    int total = 0;\n    for (int k = 0; k < n; k++)\n"
    f"        total += values[k] * {i + 3};  /* exercise {i} */\n    return total;\n}}\n\n" for i in range(40))
H_BODY = "".join(f"int step_{i}(int *values, int n);\n#define LIMIT_{i} {i * 17}\n" for i in range(60))


def text(head, body, size):
    data = (head + body * (size // len(body) + 1))[:max(size, len(head))]
    return data.encode()


def mktree(tree, entries, info_path):
    """Exactly `entries` entries below tree (directories included): s000..s399, each with assignments hwNNN holding a
    Makefile and .c/.h files; the .c paths go to info_path with the counts."""
    rnd = random.Random(1)
    students = min(STUDENTS, entries)
    per, extra = divmod(entries, students)
    dirs = files = size = 0
    c_files, assignments = [], []

    def put(path, data):
        nonlocal files, size
        fd = os.open(os.path.join(tree, path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        files += 1
        size += len(data)

    os.makedirs(tree)
    for s in range(students):
        budget = per + (1 if s < extra else 0)
        student = f"s{s:03d}"
        os.mkdir(os.path.join(tree, student))
        dirs += 1
        budget -= 1
        a = 0
        while budget > 0:
            assignment = f"{student}/hw{a:03d}"
            os.mkdir(os.path.join(tree, assignment))
            dirs += 1
            budget -= 1
            assignments.append(assignment)
            n = min(budget, rnd.randint(6, 24))   # files here, the Makefile first
            for k in range(n):
                if k == 0:
                    put(f"{assignment}/Makefile", text(f"# {assignment}\nCC = gcc\nCFLAGS = -Wall -O2\n",
                                                       "all: main\n\nclean:\n\trm -f main *.o\n\n", rnd.randint(150, 400)))
                    continue
                module = MODULES[(k - 1) // 3 % len(MODULES)] + ("" if k <= 3 * len(MODULES) else str(k))
                if (k - 1) % 3 == 2:
                    put(f"{assignment}/{module}.h", text(f"/* {student} {module}.h */\n#pragma once\n", H_BODY, rnd.randint(200, 1500)))
                else:
                    path = f"{assignment}/{module}{'' if (k - 1) % 3 == 0 else '_impl'}.c"
                    put(path, text(f"/* {student} {path} */\n#include <stdio.h>\n\n", C_BODY, rnd.randint(300, 6000)))
                    c_files.append(path)
            budget -= n
            a += 1
    assert dirs + files == entries, (dirs, files, entries)
    with open(info_path, "w") as f:
        json.dump({"entries": entries, "dirs": dirs, "files": files, "bytes": size, "students": students,
                   "assignments": len(assignments), "c_files": c_files}, f)


# ---- memory readings

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$")


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])      # kB, or a count (Threads)
    return out


def rollup(pid):
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:]:
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            out[key] = int(rest.split()[0])
    return out


def smaps(pid):
    maps, raw = [], open(f"/proc/{pid}/smaps").read()
    for line in raw.splitlines():
        m = HEADER.match(line)
        if m:
            maps.append({"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3], "path": m[4].strip(), "kb": {}})
        elif maps:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                maps[-1]["kb"][key] = int(rest.split()[0])
    # The kernel reads the mappings in chunks: one that changes meanwhile can be listed twice (the later one is kept).
    return sorted({m["start"]: m for m in maps}.values(), key=lambda m: m["start"]), raw


def classify(maps, binary):
    """A kind for every mapping:
    gc       the GC's regions range: the anonymous reservation of 128 MiB or more (PROT_NONE where not committed; about
             twice the RAM without a heap limit, a few times the limit with one; no other reservation here is that large,
             glibc's arenas are 64 MiB) and the
             anonymous mappings that adjoin it without a gap (its committed regions; an unrelated mapping right next to
             it is counted in too)
    arena    a glibc malloc arena's heap: 64 MiB aligned to 64 MiB, read-write part then PROT_NONE part
    brk      [heap]: glibc's main arena
    stack    a thread stack: read-write anonymous right above a PROT_NONE guard of at most 64 KiB, 64 KiB to 16 MiB
    anon     any other anonymous mapping
    binary   the agent's own file; file: any other file; kernel: [vdso], [vvar], [vsyscall]; [stack]: the main stack"""
    kinds = [None] * len(maps)
    anon = lambda m: m["path"] == "" or m["path"].startswith("[anon")
    for i, m in enumerate(maps):
        if anon(m) and m["end"] - m["start"] >= 128 * MiB and m["perms"].startswith("---"):
            j = i
            while j > 0 and anon(maps[j - 1]) and maps[j - 1]["end"] >= maps[j]["start"]:
                j -= 1
            k = i
            while k + 1 < len(maps) and anon(maps[k + 1]) and maps[k + 1]["start"] <= maps[k]["end"]:
                k += 1
            for x in range(j, k + 1):
                kinds[x] = "gc"
    for i, m in enumerate(maps):
        if kinds[i] or not anon(m):
            continue
        arena = 64 * MiB
        if (m["start"] % arena == 0 and m["perms"].startswith("rw") and i + 1 < len(maps) and anon(maps[i + 1])
                and maps[i + 1]["start"] == m["end"] and maps[i + 1]["perms"].startswith("---")
                and maps[i + 1]["end"] == m["start"] + arena):
            kinds[i] = kinds[i + 1] = "arena"
        elif (m["start"] % arena == 0 and m["perms"].startswith("rw") and m["end"] - m["start"] == arena):
            kinds[i] = "arena"      # an arena heap grown to its whole 64 MiB
    for i, m in enumerate(maps):
        if kinds[i]:
            continue
        size = m["end"] - m["start"]
        if m["path"] == "[heap]":
            kinds[i] = "brk"
        elif m["path"] in ("[vdso]", "[vvar]", "[vsyscall]") or m["path"].startswith("[vvar"):
            kinds[i] = "kernel"
        elif m["path"] == "[stack]":
            kinds[i] = "[stack]"
        elif anon(m):
            guard = i > 0 and anon(maps[i - 1]) and maps[i - 1]["end"] == m["start"] and maps[i - 1]["perms"].startswith("---") \
                and maps[i - 1]["end"] - maps[i - 1]["start"] <= 64 * KiB
            kinds[i] = "stack" if guard and m["perms"].startswith("rw") and 64 * KiB <= size <= 16 * MiB else "anon"
            if kinds[i] == "stack":
                kinds[i - 1] = "stack"
        elif os.path.realpath(m["path"].replace(" (deleted)", "")) == binary:
            kinds[i] = "binary"
        else:
            kinds[i] = "file"
    return kinds


KIND_LABELS = [
    ("gc", "GC regions range (reserved; Rss = committed and touched)"),
    ("arena", "glibc malloc arenas (64 MiB heaps of threads' arenas)"),
    ("brk", "glibc main arena ([heap], brk)"),
    ("stack", "thread stacks (with their guard pages)"),
    ("anon", "other anonymous (GC bookkeeping, large malloc, runtime)"),
    ("[stack]", "main thread stack"),
    ("binary", "the agent binary (code, read-only data)"),
    ("file", "other files (shared libraries, ...)"),
    ("kernel", "[vdso] [vvar]"),
]


def metrics(port):
    """The agent's /metrics series whose name speaks of gc, heap, memory, working set or allocation: [(series, value)]."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return None, str(e)
    series = []
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if re.search(r"gc|heap|memory|working_set|alloc|held_bytes", name, re.I):
            if "{" in line:
                series_name, rest = line[:line.rindex("}") + 1], line[line.rindex("}") + 1:].split()
            else:
                series_name, *rest = line.split()
            series_name = re.sub(r'otel_scope_[a-z_]*="[^"]*",?', "", series_name).replace(",}", "}").replace("{}", "")
            series.append((series_name, float(rest[0])))
    return series, None


def reading(pid, port, binary, keep=None):
    st, ru = status(pid), rollup(pid)
    maps, raw = smaps(pid)
    if keep:
        with open(keep, "w") as f:
            f.write(raw)
    kinds = classify(maps, binary)
    by_kind = {}
    for m, k in zip(maps, kinds):
        agg = by_kind.setdefault(k, {"n": 0, "size": 0, "rss": 0, "anon": 0})
        agg["n"] += 1
        agg["size"] += m["kb"].get("Size", 0)
        agg["rss"] += m["kb"].get("Rss", 0)
        agg["anon"] += m["kb"].get("Anonymous", 0)
    top = sorted(zip(maps, kinds), key=lambda mk: -mk[0]["kb"].get("Rss", 0))[:12]
    series, error = metrics(port)
    return {"t": time.time(), "status": st, "rollup": ru, "by_kind": by_kind, "top": top, "metrics": series,
            "metrics_error": error, "maps": len(maps), "cpu": cpu_seconds(pid)}


def mib(kb):
    return f"{kb / 1024:.1f}"


def run(env):
    tree, agent, port = env["BENCH_TREE"], int(env["BENCH_AGENT_PID"]), env["BENCH_PORT"]
    info = json.load(open(env["BENCH_TREE_INFO"]))
    entries = info["entries"]
    binary = os.path.realpath(env["BENCH_BINARY"])
    keep = env.get("KEEP_SMAPS") == "1"
    report_path = env["BENCH_REPORT"]
    started = float(env["BENCH_STARTED"])
    agent_alive = agent_watch(agent)
    samples = []                       # (seconds since start, VmRSS kB) every second, for the peak's moment

    def sample():
        try:
            st = status(agent)
            samples.append((time.time() - started, st.get("VmRSS", 0), st.get("RssAnon", 0), st.get("RssFile", 0)))
        except OSError:
            pass

    # ---- baseline: the first scan stored and a file_state row for every entry
    say(f"waiting for the first scan and the file-change baseline of {entries:,} entries")
    deadline = started + int(env["BASELINE_WAIT"])
    scan_at = state_at = None
    state_count, last_say = 0, time.time()
    # A slower start (a JIT build) may not have made the tables yet.
    while psql("SELECT to_regclass('scans') IS NOT NULL AND to_regclass('file_state') IS NOT NULL").strip() != "t":
        agent_alive()
        sample()
        if time.time() > deadline:
            raise SystemExit(f"the agent made no tables within BASELINE_WAIT={env['BASELINE_WAIT']} s")
        time.sleep(0.5)
    while True:
        agent_alive()
        sample()
        now = time.time()
        if scan_at is None and int(psql(f"SELECT count(*) FROM scans WHERE node_name = '{NODE}'") or 0) > 0:
            scan_at = now
            say(f"first scan stored after {scan_at - started:.1f} s")
        state_count = int(psql(f"SELECT count(*) FROM file_state WHERE node_name = '{NODE}'") or 0)
        if state_count >= entries and state_at is None:
            state_at = now
            say(f"file_state has {state_count:,} rows after {state_at - started:.1f} s")
        if scan_at is not None and state_at is not None:
            break
        if now > deadline:
            raise SystemExit(f"no baseline within BASELINE_WAIT={env['BASELINE_WAIT']} s: first scan "
                             f"{'stored' if scan_at else 'not stored'}, file_state {state_count:,} of {entries:,} rows")
        if now - last_say > 30:
            say(f"  {now - started:.0f} s: file_state {state_count:,} rows, VmRSS {samples[-1][1] / 1024:.0f} MiB" if samples else "")
            last_say = now
        time.sleep(1)
    baseline_at = max(scan_at, state_at)
    base = reading(agent, port, binary, report_path.replace(".txt", ".smaps-baseline.txt") if keep else None)
    base_state_count = state_count
    if env.get("AT_BASELINE"):
        subprocess.run(env["AT_BASELINE"].replace("{pid}", str(agent)), shell=True, check=False)

    # ---- writes
    rate, seconds = 200, 20
    total = rate * seconds
    rnd = random.Random(2)
    c_files = info["c_files"]
    folders = sorted({os.path.dirname(p) for p in c_files})
    expected, new_paths = {}, []
    say(f"{rate} writes/s for {seconds} s")
    cpu0 = cpu_seconds(agent)
    start = time.time() + 0.2
    next_sample = start
    for n in range(total):
        target = start + n / rate
        now = time.time()
        if now >= next_sample:
            sample()
            next_sample += 1
        if target > now:
            time.sleep(target - now)
        if n % 25 == 24:
            path = f"{rnd.choice(folders)}/new{n:05d}.c"
            new_paths.append(path)
        else:
            path = rnd.choice(c_files)
        data = text(f"/* write {n} of {path} */\n#include <stdio.h>\n\n", C_BODY, rnd.randint(300, 6000))
        fd = os.open(os.path.join(tree, path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
        expected[path] = hashlib.sha256(data).hexdigest()
    last_write = time.time()
    achieved = total / (last_write - start)
    say(f"{total} writes in {last_write - start:.1f} s; waiting for them to be stored")
    paths_sql = ",".join(f"'{p}'" for p in expected)
    deadline = last_write + int(env["WRITES_WAIT"])
    stored_at, matched = None, 0
    while True:
        agent_alive()
        sample()
        rows = psql(f"SELECT path, encode(sha256, 'hex') FROM file_state WHERE node_name = '{NODE}' AND path = ANY(ARRAY[{paths_sql}])")
        got = dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)
        matched = sum(1 for p, h in expected.items() if got.get(p) == h)
        state_count = int(psql(f"SELECT count(*) FROM file_state WHERE node_name = '{NODE}'") or 0)
        if matched == len(expected) and state_count == base_state_count + len(new_paths):
            stored_at = time.time()
            break
        if time.time() > deadline:
            break
        time.sleep(0.5)
    cpu_writes = cpu_seconds(agent) - cpu0
    after = reading(agent, port, binary, report_path.replace(".txt", ".smaps-writes.txt") if keep else None)
    health = ""
    try:
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read().decode()
        health = ", ".join(f"{k} {v['status']}" for k, v in json.loads(health)["checks"].items())
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        health = f"unreadable ({e})"
    log, problems = read_agent_log(env["BENCH_AGENT_LOG"])

    # ---- report
    limit = f"DOTNET_GCHeapHardLimit={env['HEAP_LIMIT']} ({int(env['HEAP_LIMIT'], 16) / MiB:.0f} MiB)" if env.get("HEAP_LIMIT") else "none"
    r = []
    w = r.append
    w(f"Node Monitor agent: memory footprint, every capability on        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    w(f"machine:  {os.cpu_count()} CPUs (nproc), kernel {os.uname().release}, {env['BENCH_MEM']}, load average {env['BENCH_LOAD']} at the start")
    w(f"agent:    {env['BENCH_BUILD']}; source {env['BENCH_SOURCE']}")
    w(f"          default settings, Agent:Inventory:ScanInterval {env['BENCH_SCAN_INTERVAL']}; GC heap limit "
      f"{limit}; more environment: {env.get('AGENT_ENV') or 'none'}")
    w(f"          capabilities: {health}")
    w(f"tree:     {entries:,} entries = {info['dirs']:,} directories + {info['files']:,} files ({info['bytes'] / MiB:.0f} MiB), "
      f"{info['students']} students, {info['assignments']:,} assignments, {len(c_files):,} .c files ({env['BENCH_FS']})")
    w("")
    w(f"first start: first scan stored after {scan_at - started:.1f} s, file_state = {base_state_count:,} rows (the baseline) after "
      f"{state_at - started:.1f} s; agent CPU {base['cpu']:.1f} s until then")
    stored_text = (f"all stored {stored_at - last_write:.1f} s after the last write" if stored_at else
                   f"NOT all stored {env['WRITES_WAIT']} s after the last write ({matched:,} of {len(expected):,} paths with the last content)")
    w(f"writes:      {total:,} in {seconds} s ({achieved:.0f}/s): {total - len(new_paths):,} rewrites of existing .c files, "
      f"{len(new_paths)} new .c files; {len(expected):,} paths; {stored_text}; agent CPU {cpu_writes:.1f} s")
    w("")
    w(f"  {'MiB':<40}{'after baseline':>16}{'after writes':>16}")

    def row(label, a, b):
        w(f"  {label:<40}{a:>16}{b:>16}")
    row("VmHWM (peak RSS so far)", mib(base["status"]["VmHWM"]), mib(after["status"]["VmHWM"]))
    row("VmRSS", mib(base["status"]["VmRSS"]), mib(after["status"]["VmRSS"]))
    for key in ("RssAnon", "RssFile", "RssShmem"):
        row(f"  {key} (status)", mib(base["status"].get(key, 0)), mib(after["status"].get(key, 0)))
    for key in ("Pss", "Anonymous", "Private_Dirty", "Private_Clean", "Shared_Clean", "Swap"):
        if key in base["rollup"]:
            row(f"  {key} (smaps_rollup)", mib(base["rollup"][key]), mib(after["rollup"].get(key, 0)))
    row("VmSize (address space)", mib(base["status"]["VmSize"]), mib(after["status"]["VmSize"]))
    row("threads", str(base["status"].get("Threads", "?")), str(after["status"].get("Threads", "?")))
    peak = max(samples, key=lambda s: s[1]) if samples else None
    if peak:
        w(f"  highest VmRSS sampled (every second): {peak[1] / 1024:.1f} MiB, {peak[0]:.0f} s after the start "
          f"(anonymous {peak[2] / 1024:.1f}, file {peak[3] / 1024:.1f})")
    w("")
    w(f"  /proc/PID/smaps by kind, Rss MiB (mappings; reserved MiB)")
    w(f"  {'':<58}{'after baseline':>22}{'after writes':>22}")
    for kind, label in KIND_LABELS:
        a, b = base["by_kind"].get(kind), after["by_kind"].get(kind)
        if not a and not b:
            continue
        fmt = lambda x: "-" if not x else f"{x['rss'] / 1024:.1f} ({x['n']}; {x['size'] / 1024:.0f})"
        w(f"  {label:<58}{fmt(a):>22}{fmt(b):>22}")
    outside = lambda rd: f"{sum(v['rss'] for k, v in rd['by_kind'].items() if k != 'gc') / 1024:.1f}"
    w(f"  {'everything but the GC regions range':<58}{outside(base):>22}{outside(after):>22}")
    w("  (kinds by address-space heuristics: see classify() in this script; a reading races with the agent's own mapping")
    w("   changes, so a rare reading may put GC regions under another kind)")
    for name, rd in (("after baseline", base), ("after writes", after)):
        w(f"  largest mappings {name} (of {rd['maps']}): Rss MiB / size MiB / kind / perms / file")
        for m, k in rd["top"]:
            w(f"    {m['kb'].get('Rss', 0) / 1024:>8.1f} {(m['end'] - m['start']) / MiB:>10.1f}  {k:<7} {m['perms']}  {m['path'] or '(anonymous)'}"
              f"  {m['start']:x}")
    w("")
    if base["metrics"] is None:
        w(f"  the GC's view: /metrics unreadable ({base['metrics_error']})")
    else:
        names = sorted({s.split("{", 1)[0] for s, _ in base["metrics"]})
        w(f"  the GC's view (/metrics series named gc|heap|memory|working_set|alloc|held_bytes: {len(names)} metrics)")
        w(f"  {'series':<86}{'after baseline':>16}{'after writes':>16}")
        after_values = dict(after["metrics"] or [])
        for s, v in base["metrics"]:
            b = after_values.get(s)
            byte = "bytes" in s
            f = (lambda x: "-" if x is None else f"{x / MiB:.1f} MiB") if byte else (lambda x: "-" if x is None else f"{x:g}")
            w(f"  {s[:86]:<86}{f(v):>16}{f(b):>16}")
        if not names:
            w("    (none: the runtime instrumentation exposes no such series on this build)")
    w("")
    r.extend(problem_lines(problems))
    write_report(r, report_path)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "mktree":
        mktree(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(run(os.environ))
PY

built_from=$(source_state)
if [ -n "${NODEAGENT_BENCH_BINARY:-}" ]; then
  agent_bin=$(readlink -f "$NODEAGENT_BENCH_BINARY")
  build="given binary $NODEAGENT_BENCH_BINARY (NODEAGENT_BENCH_BINARY), not built here" built_from="unknown (not built by this run)"
else
  echo "== building (NativeAOT; $built_from)"
  # A build of its own (--artifacts-path): NodeAgent/bin and obj are left to whoever else builds there.
  dotnet publish "$root/NodeAgent/NodeAgent.csproj" -c Release -r linux-x64 -p:CppCompilerAndLinker="${CLANG:-clang-14}" \
    --artifacts-path "$work/artifacts" -o "$work/aot" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
  rm -rf "$work/artifacts"
  agent_bin="$work/aot/NodeAgent" build="NativeAOT build (linux-x64, ${CLANG:-clang-14})"
  after_build=$(source_state)
  [ "$after_build" = "$built_from" ] || built_from="$built_from when the build started, $after_build when it ended"
fi

echo "== tree of $entries entries (400 students' C sources)"
tree="$work/tree"
python3 "$work/driver.py" mktree "$tree" "$entries" "$work/tree.json"
found=$(find "$tree" -mindepth 1 | wc -l)
[ "$found" -eq "$entries" ] || { echo "footprint.sh: the tree has $found entries, not $entries" >&2; exit 1; }
sync

start_postgres "-c shared_buffers=256MB -c max_wal_size=4GB"

# shellcheck disable=SC2086 # AGENT_ENV is a list of NAME=value words
start_agent Agent__Inventory__ScanInterval="$scan_interval" ${heap_limit:+DOTNET_GCHeapHardLimit=$heap_limit} ${AGENT_ENV:-}
agent_started=$(date +%s.%N)

stamp=$(date +%Y%m%d-%H%M%S)
report="$out/footprint-$stamp.txt"
BENCH_TREE="$tree" BENCH_TREE_INFO="$work/tree.json" BENCH_AGENT_PID="$agent_pid" BENCH_PORT="$http_port" \
  BENCH_STARTED="$agent_started" BENCH_BINARY="$agent_bin" BENCH_AGENT_LOG="$work/agent.log" BENCH_REPORT="$report" \
  BENCH_BUILD="$build" BENCH_SOURCE="$built_from" BENCH_SCAN_INTERVAL="$scan_interval" BENCH_FS="$(df --output=fstype "$tree" | tail -n 1)" \
  BENCH_MEM="$(awk '/^MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)" BENCH_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" \
  BASELINE_WAIT="${BASELINE_WAIT:-3600}" WRITES_WAIT="${WRITES_WAIT:-300}" HEAP_LIMIT="$heap_limit" AGENT_ENV="${AGENT_ENV:-}" \
  KEEP_SMAPS="${KEEP_SMAPS:-}" python3 "$work/driver.py" run &
driver_pid=$!
finish_run
