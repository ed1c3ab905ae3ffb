"""Helpers the benchmark drivers of changes.sh and processes.sh import (copied next to them into the work directory)."""
import collections, math, os, re, subprocess, sys

CLK = os.sysconf("SC_CLK_TCK")


def say(*a):
    """A progress line on stderr."""
    print("==", *a, file=sys.stderr, flush=True)


def agent_watch(agent):
    """A check to call while measuring: SystemExit once the agent process is gone or a zombie."""
    def agent_alive():
        if not os.path.exists(f"/proc/{agent}") or open(f"/proc/{agent}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
            raise SystemExit(f"the agent (pid {agent}) exited; its log is in the output above")
    return agent_alive


def cpu_seconds(pid):
    """CPU (utime + stime) of one process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def tree_cpu_seconds(parent, exclude=()):
    """CPU of a process and its children (PostgreSQL's postmaster and its backends); children that exited are not counted."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == parent or int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def status_mib(pid, key):
    """A size from /proc/PID/status (VmHWM, VmRSS) in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def psql(sql):
    """The unaligned, tuples-only output of one statement on monitordb."""
    return subprocess.run(["psql", "-d", "monitordb", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def percentile(sorted_values, p):
    """The nearest-rank percentile p of sorted values."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def read_agent_log(path):
    """The agent's log lines, and those of them that are warnings or errors."""
    log = open(path, errors="replace").read().splitlines()
    return log, [l for l in log if re.match(r"^\S* ?(warn|fail|crit): ", l)]


def problem_lines(problems, log=None):
    """The report's lines on the log's warnings and errors: their count and up to 8 kinds; given the log, with each one's next line."""
    out = [f"agent log: {len(problems)} warning/error lines" + (":" if problems else "")]
    seen = collections.Counter(re.sub(r"\d+", "N", p.split(" ", 1)[-1]) for p in problems)
    shown = set()
    for p in problems:
        key = re.sub(r"\d+", "N", p.split(" ", 1)[-1])
        if key in shown:
            continue
        shown.add(key)
        detail = ""
        if log is not None:
            idx = log.index(p)
            detail = log[idx + 1].strip() if idx + 1 < len(log) and not re.match(r"^\S* ?(info|warn|fail|crit|dbug|trce): ", log[idx + 1]) else ""
        out.append(f"  {seen[key]}x  {p[:300]}" + (f"\n        {detail[:300]}" if detail else ""))
        if len(shown) >= 8:
            break
    return out


def write_report(lines, path):
    """Prints the report and writes it to path."""
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(path, "w") as f:
        f.write(text)
