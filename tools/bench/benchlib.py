"""Shared parts of Pacer's benchmark drivers (tools/bench/bench_*.py).

The drivers run the real pacer-executor under the integration tests' fakes
(integration-tests/fakes: the Mesos agent and the Consul double) and read the
kernel's own accounting from /proc. They print figures next to their targets;
they never fail on a figure (benchmarks prove targets, tests assert
behaviour), only when something could not be measured.

Clocks: the fakes stamp their timelines with time.monotonic(), which is
CLOCK_MONOTONIC, the clock the C helpers (bench-util.c) read, so times from
different processes can be subtracted.
"""

import argparse
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_DIR / "integration-tests"

# How long to wait for a state the executor normally reaches within milliseconds.
STATE_TIMEOUT = 20.0
# Generous: an executor exits after its task stopped and the terminal update was acknowledged.
EXIT_TIMEOUT = 20.0
# A pause between SUBSCRIBED and LAUNCH, so that the executor has finished its
# start-up work when LAUNCH arrives and the figures are LAUNCH's alone.
QUIET_BEFORE_LAUNCH = 0.02
KIB = 1024
MIB = 1024 * 1024

# The C helpers (tools/bench/CMakeLists.txt).
HELPERS = ("bench-http-server", "bench-spawn", "bench-spawn-linked", "bench-fork-curl", "bench-ref-executor",
           "bench-libcurl-floor")

# Filled in by parse_args() and init().
quick = False
build = None
harness = None
agent_mod = None
consul_mod = None


def parse_args(description):
    """The command line every driver takes: the build directory and --quick."""
    global quick
    p = argparse.ArgumentParser(description=description)
    p.add_argument("build_dir", type=Path, help="the CMake build directory (holds executor/pacer-executor)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run with a few samples (checks that the benchmark works; its figures mean little)")
    args = p.parse_args()
    quick = args.quick
    return args


def init(build_dir):
    """Puts the integration tests' modules and the generated protobuf modules on
    sys.path, imports the fakes and makes them answer like the real servers do
    (see below). Exits with a message when the build is incomplete."""
    global build, harness, agent_mod, consul_mod
    build = Path(build_dir).resolve()
    needed = [executor_binary(), build / "python" / "mesos" / "v1" / "mesos_pb2.py"]
    needed += [helper(h) for h in HELPERS]
    missing = [p for p in needed if not p.exists()]
    if missing:
        sys.exit("bench: missing " + ", ".join(str(m) for m in missing) + f": build {build} first (make build)")
    for d in (TESTS_DIR, build / "python"):
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    import harness as _harness
    import fakes.consul as _consul
    import fakes.mesos_agent as _agent

    harness, agent_mod, consul_mod = _harness, _agent, _consul
    # The fakes write a response's head and body with separate send()s. With
    # Nagle on, the body waits for the peer's delayed ACK (40 ms) on a
    # kept-alive connection. Real Consul (Go) and the Mesos agent (libprocess)
    # turn Nagle off on accepted connections; so do the fakes here, or the
    # figures would measure Nagle.
    _agent._Handler.disable_nagle_algorithm = True
    _consul._Handler.disable_nagle_algorithm = True
    # Processes orphaned by a benchmark come back here, so the leak check at the end sees them.
    harness.become_subreaper()


def executor_binary():
    return build / "executor" / "pacer-executor"


def helper(name):
    return build / "tools" / "bench" / name


def sleep_binary():
    path = shutil.which("sleep") or "/bin/sleep"
    return str(Path(path).resolve())


class LineDriven:
    """A C helper driven line by line (bench-master, bench-sse): commands on its stdin,
    what it says on its stdout, read by a thread into a queue."""

    WAIT_TIMEOUT = 20.0

    def __init__(self, argv, name):
        self.name = name
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait(self, word, timeout=WAIT_TIMEOUT):
        """The next line starting with word (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name} said no '{word}' within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.name} exited (status {self.proc.wait()}) before '{word}'")
            if line.split()[0] == word:
                return line

    def ask(self, command):
        """Sends command and returns the key=value numbers of the line it answers with (same word)."""
        self.send(command)
        return {k: int(v) for k, v in (w.split("=") for w in self.wait(command).split()[1:])}

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Rig:
    """A fake agent (and optionally a fake Consul) with a process registry and a
    scratch directory; a context manager that stops every process it started
    and fails loudly if one was left behind."""

    def __init__(self, consul=False):
        self._tmp = tempfile.TemporaryDirectory(prefix="pacer-bench-")
        self.workdir = Path(self._tmp.name)
        self.timeline = harness.Timeline()
        self.procs = harness.ProcessRegistry(self.workdir / "logs", self.timeline)
        self.agent = agent_mod.FakeAgent(procs=self.procs, workdir=self.workdir, timeline=self.timeline)
        self.consul = consul_mod.FakeConsul(self.timeline, leader="127.0.0.1:8300") if consul else None

    def __enter__(self):
        self.agent.start()
        if self.consul:
            self.consul.start()
        return self

    def __exit__(self, *exc):
        try:
            self.agent.stop_executors()
            self.agent.stop()
            if self.consul:
                self.consul.stop()
            self.procs.close()
        finally:
            self._tmp.cleanup()
        return False

    def launch(self, executor_id, task, argv=(), binary=None):
        """Starts an executor, waits for its subscription, sends LAUNCH after the
        stream has gone quiet (so the figures are LAUNCH's alone) and returns
        the ManagedProcess."""
        proc = self.agent.launch_executor(binary or executor_binary(), executor_id=executor_id, argv=list(argv))
        self.agent.wait_subscribed(executor_id=executor_id, timeout=STATE_TIMEOUT)
        time.sleep(QUIET_BEFORE_LAUNCH)
        self.agent.send_launch(task, executor_id=executor_id)
        return proc

    def shutdown(self, executor_id, proc):
        """SHUTDOWN, and wait for the executor to exit."""
        self.agent.send_shutdown(executor_id)
        proc.wait_exit(EXIT_TIMEOUT)

    def wait_running(self, task_id, healthy=None):
        def match(u):
            return u.task_id == task_id and u.state == "TASK_RUNNING" and (healthy is None or u.healthy == healthy)

        return self.agent.wait_update(match, STATE_TIMEOUT)

    def first_update(self, task_id, state, healthy=None):
        """The timeline record of the first UPDATE call of task_id in state."""

        def match(rec):
            w = words(rec.text)
            return (w.get("task") == task_id and w.get("state") == state
                    and (healthy is None or w.get("healthy") == str(healthy)))

        return self.timeline.first("agent", "call.UPDATE", match)

    def first_event(self, kind, task_id):
        return self.timeline.first("agent", f"event.{kind}", lambda r: words(r.text).get("task") == task_id)

    def start_http_server(self, stamps=None):
        """Starts bench-http-server on a free port; returns the port."""
        argv = [helper("bench-http-server"), "--port", "0"] + (["--stamps", str(stamps)] if stamps else [])
        server = self.procs.start(argv, name="bench-http-server")
        return int(server.wait_output(r"^\d+$").group(0))


def words(text):
    """{"task": "T1", ...} from a timeline detail "task=T1 state=..."."""
    out = {}
    for w in text.split():
        k, sep, v = w.partition("=")
        if sep:
            out[k] = v
    return out


# --------------------------------------------------------------------------
# /proc


def smaps_rollup(pid):
    """{"Pss": bytes, "Private_Dirty": bytes, "Rss": bytes, ...} of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) == 2 and fields[1] == "kB":
            out[key.strip()] = int(fields[0]) * KIB
    return out


def status_field(pid, name):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"{name} not in /proc/{pid}/status")


def thread_count(pid):
    return int(status_field(pid, "Threads"))


def children(pid):
    """Pids of the direct children of pid."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def comm(pid):
    return Path(f"/proc/{pid}/comm").read_text().strip()


def helper_of(pid, name):
    """The pid of an executor's helper process by comm: "pacer-guard", "pacer-spawner"."""
    for c in children(pid):
        try:
            if comm(c) == name:
                return c
        except OSError:
            pass
    raise RuntimeError(f"executor {pid} has no {name} child")


def guard_of(pid):
    """The pid of an executor's guard process (comm "pacer-guard")."""
    return helper_of(pid, "pacer-guard")


def shares_memory(a, b):
    """True when processes a and b share one address space (the guard is started
    with CLONE_VM on x86-64): kcmp(2) KCMP_VM compares their mm."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_kcmp, KCMP_VM = 312, 1
    if os.uname().machine != "x86_64":
        return False
    return libc.syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0


def cpu_ns(pid):
    """CPU time a process used so far, in nanoseconds: the sum of its threads'
    run time from /proc/<pid>/task/*/schedstat (the scheduler's nanosecond
    clock; /proc/<pid>/stat counts whole ticks of 10 ms). Threads that have
    ended are not in it, which is why the drivers report the thread count."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


# --------------------------------------------------------------------------
# figures


def percentile(samples, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(samples)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def median(samples):
    return statistics.median(samples)


def verdict(value, limit):
    return "PASS" if value <= limit else "MISS"


def fmt_ms(seconds):
    return f"{seconds * 1000:.3f} ms"


def fmt_mib(nbytes):
    return f"{nbytes / MIB:.2f} MiB"


class Table:
    """A figure table: rows of (measure, value[, value...], target, result)."""

    def __init__(self, columns):
        self.columns = columns
        self.rows = []

    def add(self, *cells):
        self.rows.append([str(c) if c is not None else "" for c in cells])

    def print(self):
        widths = [max(len(r[i]) for r in [self.columns] + self.rows if i < len(r))
                  for i in range(len(self.columns))]
        for i, r in enumerate([self.columns] + self.rows):
            cells = [c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)]
            print("  " + "  ".join(cells).rstrip())
            if i == 0:
                print("  " + "  ".join("-" * w for w in widths))


def heading(title):
    print()
    print(f"== {title}" + ("  [--quick: too few samples to mean much]" if quick else ""))


def note(text):
    for line in text.strip().splitlines():
        print(f"   {line}")


def elapsed(t0):
    return f"({time.monotonic() - t0:.1f} s)"
