"""Shared machinery of the integration tests: waiting, a cross-fake timeline,
a registry of child processes that leaves nothing behind, /proc helpers and the
policy for tests that need the real Consul/Mesos binaries.

conftest.py turns these into fixtures; fakes and tests import them directly
(``from harness import wait_for, Timeline``).

Process hygiene: the pytest process makes itself a child subreaper, so every
process orphaned by a test (a task whose executor died, a daemon that
double-forked) is re-parented to pytest instead of init. The registry's
teardown check finds such orphans, kills them and fails the test that leaked
them.
"""

import ctypes
import dataclasses
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

# How often wait_for() re-evaluates its predicate. Only used where no event
# can be awaited (a file appearing, a process dying that is not our child).
POLL_INTERVAL = 0.02
# SIGTERM → SIGKILL delay at teardown. Longer than the executor's default
# shutdown grace period (5 s), so a well-behaved executor finishes on its own.
STOP_TIMEOUT = 10.0
# How long orphans found at teardown may take to die on their own (they are
# often already SIGKILLed by the process that leaked them) before they count
# as leaked.
ORPHAN_GRACE = 3.0
# How long to let the output pumps catch up with a process that exited: a
# pipe closed by everyone drains at once; a leaked descendant holding it
# open must not stall the test.
PUMP_DRAIN_TIMEOUT = 1.0
# Output of one stream kept in memory for wait_output(); the log file keeps
# everything.
OUTPUT_MEMORY_MAX = 64 * 1024 * 1024
# What a failure report shows of each process log.
LOG_TAIL_BYTES = 32 * 1024

# Variables of the test's own environment that reach the processes the
# harness starts even when the environment is otherwise not inherited: the
# sanitizer knobs of an ASan/UBSan build (the harness's business, not the
# agent's).
SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent

_PR_SET_CHILD_SUBREAPER = 36


class WaitTimeout(AssertionError):
    """A wait_for()/Timeline.wait()/fake wait ran out of time."""


def wait_for(predicate, timeout, what, interval=POLL_INTERVAL):
    """Polls predicate() until it returns a truthy value and returns that value.

    Use it only where nothing can be awaited (fakes expose Condition-based
    waits for their own events). Raises WaitTimeout naming `what` after
    `timeout` seconds; the predicate is evaluated one last time at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_condition(cond, predicate, timeout, what):
    """Waits on a threading.Condition until predicate() is truthy; returns it.

    The caller must NOT hold `cond`. predicate() runs with `cond` held.
    Raises WaitTimeout naming `what`.
    """
    with cond:
        value = cond.wait_for(predicate, timeout)
    if not value:
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
    return value


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before it is used: prefer letting a server bind
    port 0 itself and reading the port back where the program allows it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n, low=20000, high=60000, tries=200):
    """The first of n consecutive TCP ports that were all free a moment ago, on every
    address (a task may bind 0.0.0.0), for a range handed to a program that assigns
    ports itself (local mode's host ports). Same caveat as free_port()."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(low, high - n)
        socks = []
        try:
            for port in range(base, base + n):
                sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sk)
                sk.bind(("", port))
            return base
        except OSError:
            continue
        finally:
            for sk in socks:
                sk.close()
    raise RuntimeError(f"no {n} consecutive free ports in {low}-{high}")


# --------------------------------------------------------------------------
# Timeline


def format_detail(detail):
    """A record's detail as text: a mapping becomes "key=value" words."""
    if isinstance(detail, Mapping):
        return " ".join(f"{k}={v}" for k, v in detail.items())
    return str(detail)


@dataclasses.dataclass(frozen=True)
class Record:
    """One thing that happened: when (time.monotonic()), who, what, details.
    detail is a "key=value" string or a dict, as the recording fake chose."""

    t: float
    source: str
    kind: str
    detail: object

    @property
    def text(self):
        """The detail as text (see format_detail)."""
        return format_detail(self.detail)

    def __str__(self):
        return f"{self.t:.6f} {self.source:<8} {self.kind:<22} {self.text}"


def _matches(rec, source, kind, match):
    if source is not None and rec.source != source:
        return False
    if kind is not None and rec.kind != kind:
        return False
    if match is None:
        return True
    if callable(match):
        return bool(match(rec))
    if isinstance(match, Mapping):
        return isinstance(rec.detail, Mapping) and all(k in rec.detail and rec.detail[k] == v
                                                       for k, v in match.items())
    return match in rec.text


class Timeline:
    """A thread-safe, append-only list of Records shared by all fakes of a test,
    so a test can assert orderings across them ("deregistered from Consul
    before the task got SIGTERM").

    Sources are short names ("agent", "consul", "test"); kinds are dotted
    ("call.UPDATE", "event.LAUNCH"); details are "key=value" words or dicts.
    Lookups take source/kind (exact, None = any) and match: a substring of
    the detail's text, a dict that must be a subset of a dict detail, or a
    callable taking the Record.
    """

    def __init__(self):
        self._records = []
        self._cond = threading.Condition()

    def record(self, source, kind, detail=""):
        """Appends a record stamped now and wakes up waiters; returns it."""
        if isinstance(detail, Mapping):
            detail = dict(detail)  # a snapshot: the caller may reuse its dict
        elif not isinstance(detail, str):
            detail = str(detail)
        with self._cond:
            rec = Record(time.monotonic(), source, kind, detail)
            self._records.append(rec)
            self._cond.notify_all()
        return rec

    def records(self, source=None, kind=None, match=None):
        """All matching records, oldest first."""
        with self._cond:
            return [r for r in self._records if _matches(r, source, kind, match)]

    def first(self, source=None, kind=None, match=None):
        """The oldest matching record, or None."""
        with self._cond:
            return next((r for r in self._records if _matches(r, source, kind, match)), None)

    def last(self, source=None, kind=None, match=None):
        """The newest matching record, or None."""
        with self._cond:
            return next((r for r in reversed(self._records) if _matches(r, source, kind, match)), None)

    def wait(self, source=None, kind=None, match=None, timeout=10.0, after=None):
        """Waits (on a Condition, no polling) for a matching record and returns it.

        after: a Record or a time.monotonic() value; only later records count.
        """
        t0 = after.t if isinstance(after, Record) else after

        def find():
            for r in self._records:
                if (t0 is None or r.t > t0) and _matches(r, source, kind, match):
                    return r
            return None

        what = f"timeline record source={source} kind={kind} match={match!r}"
        return wait_condition(self._cond, find, timeout, what)

    def assert_order(self, *specs):
        """Asserts that the first record matching each spec exists and that they
        occur in the given order. A spec is a (source, kind) or a
        (source, kind, match) tuple. Returns the matched records."""
        found = []
        for spec in specs:
            rec = self.first(*spec)
            assert rec is not None, f"no timeline record for {spec}\n{self.format()}"
            found.append((spec, rec))
        for (spec_a, a), (spec_b, b) in zip(found, found[1:]):
            assert a.t <= b.t, f"expected {spec_a} before {spec_b}:\n  {a}\n  {b}\n{self.format()}"
        return [rec for _, rec in found]

    def format(self, limit=400):
        """The last `limit` records, one per line, times relative to the first."""
        with self._cond:
            recs = list(self._records)
        if not recs:
            return "(timeline empty)"
        t0 = recs[0].t
        lines = [f"+{r.t - t0:9.4f}s {r.source:<8} {r.kind:<22} {r.text}" for r in recs[-limit:]]
        if len(recs) > limit:
            lines.insert(0, f"... {len(recs) - limit} earlier records left out")
        return "\n".join(lines)

    def __len__(self):
        with self._cond:
            return len(self._records)


# --------------------------------------------------------------------------
# /proc helpers


@dataclasses.dataclass(frozen=True)
class ProcInfo:
    """What /proc/<pid>/stat says about a process."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    comm: str

    def cmdline(self):
        """The command line, space-joined ("" for zombies and kernel threads)."""
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return ""
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def proc_info(pid):
    """ProcInfo of pid, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # comm is in parentheses and may itself contain spaces and ')'.
    lpar, rpar = raw.index("("), raw.rindex(")")
    rest = raw[rpar + 2 :].split()
    return ProcInfo(pid=pid, ppid=int(rest[1]), pgid=int(rest[2]), sid=int(rest[3]), state=rest[0],
                    comm=raw[lpar + 1 : rpar])


def proc_table():
    """{pid: ProcInfo} of every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_info(int(entry))
            if info is not None:
                table[info.pid] = info
    return table


def descendants(pid, table=None):
    """Pids of all living descendants of pid (children, grandchildren, ...),
    zombies excluded. A process re-parented away (to init or a subreaper) is
    no longer a descendant."""
    table = table if table is not None else proc_table()
    children = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if table[p].state != "Z":
            out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def pids_in_group(pgid):
    """Pids of the living (non-zombie) processes in process group pgid."""
    return sorted(i.pid for i in proc_table().values() if i.pgid == pgid and i.state != "Z")


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    info = proc_info(pid)
    return info is not None and info.state != "Z"


def group_leftovers(pgid):
    """Living processes left in the group of a leader (pid pgid) that has
    exited: members orphaned to us and their children in the group. A group
    that merely reuses the number (the leader's pid was recycled) is not
    ours: its leader's parent is not us."""
    me = os.getpid()
    members = {i.pid: i for i in proc_table().values() if i.pgid == pgid and i.state != "Z"}
    ours = {pid for pid, i in members.items() if i.ppid == me}
    grew = True
    while grew:
        more = {pid for pid, i in members.items() if i.ppid in ours} - ours
        ours |= more
        grew = bool(more)
    return sorted(ours)


def become_subreaper():
    """Makes this process the reaper of orphaned descendants (Linux prctl).
    Returns True on success."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _reap(pid):
    """Collects pid if it is our exited child; True when it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not pid_alive(pid)
    return done == pid


# --------------------------------------------------------------------------
# Processes


# Pids started by any ProcessRegistry and not yet stopped: a function-scoped
# registry's leak check must not take a session-scoped server (or its
# children) for an orphan.
_live_pids = set()
_live_lock = threading.Lock()


class _OutputPump(threading.Thread):
    """Copies one pipe of a child into a log file and an in-memory buffer, and
    wakes waiters on every chunk."""

    def __init__(self, pipe, path, cond):
        super().__init__(daemon=True, name=f"pump-{path.name}")
        self.pipe, self.path, self.cond = pipe, path, cond
        self.data = bytearray()

    def run(self):
        with open(self.path, "wb") as f:
            while True:
                try:
                    chunk = os.read(self.pipe.fileno(), 65536)
                except OSError:
                    chunk = b""
                if chunk:
                    f.write(chunk)
                    f.flush()
                with self.cond:
                    if chunk and len(self.data) < OUTPUT_MEMORY_MAX:
                        self.data += chunk[: OUTPUT_MEMORY_MAX - len(self.data)]
                    elif not chunk:
                        self.pipe.close()
                    self.cond.notify_all()
                if not chunk:
                    return


class ManagedProcess:
    """A child process started by a ProcessRegistry.

    stdout and stderr are copied to `<name>.stdout` / `<name>.stderr` in the
    registry's log directory and kept in memory; wait_output() waits for a
    line on a Condition (no polling). The process leads its own process group.
    """

    def __init__(self, name, argv, popen, log_dir, strict=False):
        self.name, self.argv, self.popen, self.strict = name, list(argv), popen, strict
        self.pid = popen.pid
        self.started = time.monotonic()
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._cond = threading.Condition()
        self._pumps = {
            "stdout": _OutputPump(popen.stdout, self.stdout_path, self._cond),
            "stderr": _OutputPump(popen.stderr, self.stderr_path, self._cond),
        }
        for p in self._pumps.values():
            p.start()
        self.how_stopped = None  # "exited", "terminated" or "killed" after stop()

    def __repr__(self):
        return f"<ManagedProcess {self.name} pid={self.pid} rc={self.popen.returncode}>"

    # output

    def output(self, stream="stdout"):
        """Everything the process wrote to stream so far, decoded."""
        with self._cond:
            return bytes(self._pumps[stream].data).decode(errors="replace")

    @property
    def stdout(self):
        return self.output("stdout")

    @property
    def stderr(self):
        return self.output("stderr")

    def lines(self, stream="stdout"):
        """Complete lines written so far (a trailing partial line is left out)."""
        text = self.output(stream)
        return text.split("\n")[:-1]

    def wait_output(self, pattern, timeout=10.0, stream="stdout", after=0):
        """Waits for a complete line matching the regex `pattern` (re.search) and
        returns its re.Match. after: number of lines to skip (for "the next
        line like this"). Fails early when the stream has ended without it."""
        rx = re.compile(pattern)
        pump = self._pumps[stream]
        state = {}

        def find():
            lines = bytes(pump.data).decode(errors="replace").split("\n")
            ended = pump.pipe.closed
            complete = lines if ended else lines[:-1]
            for line in complete[after:]:
                m = rx.search(line)
                if m:
                    return m
            if ended:
                state["ended"] = True
                return True
            return None

        what = f"{self.name} {stream} line matching {pattern!r}"
        m = wait_condition(self._cond, find, timeout, what)
        if state.get("ended"):
            raise AssertionError(f"{self.name} closed {stream} without a line matching {pattern!r} "
                                 f"(rc={self.popen.poll()}):\n{self.output(stream)[-4000:]}")
        return m

    # lifetime

    @property
    def returncode(self):
        """The exit code (negative signal number), or None while running."""
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def wait_exit(self, timeout=10.0):
        """Waits for the process to end and returns its exit code. Its output
        up to the exit is then in stdout/stderr/lines() (unless a descendant
        keeps writing to the inherited pipes)."""
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {self.name} "
                              f"(pid {self.pid}) to exit") from None
        self._join_pumps(PUMP_DRAIN_TIMEOUT)
        return rc

    def signal(self, sig):
        """Sends sig to the process (not its group); no-op once it has ended."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to timeout, then SIGKILL to its whole process group
        (see ProcessRegistry.start(strict=...) for the rest of its group).
        Idempotent. Returns how it ended: "exited" (before we signalled), "terminated"
        or "killed"."""
        if self.popen.poll() is not None:
            how = "exited"
        else:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
                how = "terminated"
            except subprocess.TimeoutExpired:
                how = "killed"
        if how == "killed":
            # Still alive, so its pid (= its group id) cannot have been reused.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.popen.wait()
        if not self.strict:
            # What it left in its own group (the `sleep` of an `sh -c`) goes
            # too; for a program under test the leak check reports it.
            for pid in group_leftovers(self.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.how_stopped is None:
            self.how_stopped = how
        self._join_pumps(PUMP_DRAIN_TIMEOUT)
        with _live_lock:
            _live_pids.discard(self.pid)
        return self.how_stopped

    def _join_pumps(self, timeout):
        # A descendant still holding the pipe keeps a pump alive; it is a
        # daemon thread, so do not wait for it forever.
        deadline = time.monotonic() + timeout
        for p in self._pumps.values():
            p.join(max(0.0, deadline - time.monotonic()))

    def log_tail(self, limit=LOG_TAIL_BYTES):
        """The last `limit` bytes of stdout and stderr, for failure reports."""
        parts = []
        for stream in ("stdout", "stderr"):
            text = self.output(stream)
            if len(text) > limit:
                text = f"[... {len(text) - limit} bytes left out]\n" + text[-limit:]
            parts.append((stream, text))
        return parts


class ProcessRegistry:
    """Starts child processes for one test and makes sure none outlives it.

    Each process gets its own process group and log files in log_dir. At
    teardown (close()) every process still running is stopped by pid with
    SIGTERM, then SIGKILL after stop_timeout; then orphans the test left
    re-parented to pytest are collected, killed and reported.
    """

    def __init__(self, log_dir, timeline=None, stop_timeout=STOP_TIMEOUT, orphan_grace=ORPHAN_GRACE):
        self.stop_timeout, self.orphan_grace = stop_timeout, orphan_grace
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.timeline = timeline
        self.processes = []
        self._lock = threading.Lock()

    def start(self, argv, name=None, env=None, cwd=None, inherit_env=True, stdin=subprocess.DEVNULL,
              strict=False):
        """Starts argv and returns its ManagedProcess.

        env: the environment; with inherit_env=True (default) it is layered over
        the test's own, with inherit_env=False it is the whole environment
        (plus the sanitizer knobs, see SANITIZER_ENV). name: log file stem,
        unique within the registry (default: the program's basename).
        strict: whatever the process leaves in its own process group when it
        ends counts as leaked (for the programs under test, which must clean
        up); by default such leftovers (the `sleep` of an `sh -c`) are killed
        quietly when the process is stopped.
        """
        argv = [str(a) for a in argv]
        base = name or Path(argv[0]).name
        with self._lock:
            taken = {p.name for p in self.processes}
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
        if inherit_env:
            full_env = dict(os.environ)
            full_env.update(env or {})
        else:
            full_env = {k: os.environ[k] for k in SANITIZER_ENV if k in os.environ}
            full_env.update(env or {})
        popen = subprocess.Popen(argv, env=full_env, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, process_group=0, close_fds=True)
        proc = ManagedProcess(name, argv, popen, self.log_dir, strict)
        with _live_lock:
            _live_pids.add(proc.pid)
        with self._lock:
            self.processes.append(proc)
        if self.timeline is not None:
            self.timeline.record("procs", "start", f"name={name} pid={proc.pid}")
        return proc

    def stop_all(self, timeout=None):
        """Stops every registered process (in reverse start order) and returns
        {name: how} ("exited", "terminated", "killed")."""
        timeout = self.stop_timeout if timeout is None else timeout
        with self._lock:
            procs = list(reversed(self.processes))
        result = {}
        for p in procs:
            result[p.name] = p.stop(timeout)
            if self.timeline is not None:
                self.timeline.record("procs", "stopped", f"name={p.name} pid={p.pid} how={result[p.name]} "
                                                         f"rc={p.returncode}")
        return result

    def find_orphans(self):
        """Living processes re-parented to pytest that no registry knows, with
        their descendants: [(ProcInfo, cmdline)]. Exited orphans are reaped."""
        me = os.getpid()
        table = proc_table()
        with _live_lock:
            live = set(_live_pids)
        with self._lock:
            mine = {p.pid for p in self.processes}
        orphans = []
        for info in table.values():
            if info.ppid != me or info.pid in live or info.pid in mine:
                continue
            if info.state == "Z":
                _reap(info.pid)
                continue
            orphans.append(info)
            orphans.extend(table[d] for d in descendants(info.pid, table))
        return [(o, o.cmdline()) for o in orphans]

    def close(self):
        """Teardown: stop all, then fail if anything was left behind (after
        killing it). Returns the stop results."""
        result = self.stop_all()
        try:
            wait_for(lambda: not self.find_orphans(), self.orphan_grace, "orphans to exit")
            return result
        except WaitTimeout:
            orphans = self.find_orphans()
        for info, _ in orphans:
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for info, _ in orphans:
            try:
                wait_for(lambda pid=info.pid: _reap(pid), 5.0, f"leaked pid {info.pid} to die")
            except WaitTimeout:
                pass
        listing = "\n".join(f"  pid {i.pid} pgid {i.pgid} ({i.comm}): {cmd}" for i, cmd in orphans)
        raise AssertionError(f"processes left behind by the test (now killed):\n{listing}")


# --------------------------------------------------------------------------
# Build products and real third-party binaries


def build_dir():
    """The CMake build directory: $PACER_BUILD_DIR, else <repo>/build."""
    env = os.environ.get("PACER_BUILD_DIR")
    return Path(env).resolve() if env else REPO_DIR / "build"


def find_binary(name, root=None):
    """Path of an executable built by CMake (searched under the build dir,
    CMake's own scratch directories left out). Fails the test when missing."""
    root = Path(root) if root else build_dir()
    for path in sorted(root.rglob(name)):
        if "CMakeFiles" in path.parts:
            continue
        if path.is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail(f"{name} not found under {root}: build it first (make build)")


def real_required():
    """True when tests needing the real binaries must fail instead of skipping
    (PACER_REQUIRE_REAL=1, as CI sets it)."""
    return os.environ.get("PACER_REQUIRE_REAL") == "1"


def real_unavailable(reason):
    """Skips the current test because a real third-party binary is missing, or
    fails it when PACER_REQUIRE_REAL=1. Never returns."""
    if real_required():
        pytest.fail(f"{reason} (PACER_REQUIRE_REAL=1: tests needing the real binaries must run)")
    pytest.skip(reason)


def require_ext_dir():
    """$PACER_EXT_DIR (the directory holding the real Consul/Mesos tarballs) as
    a Path; skips or fails the test (see real_unavailable) when unset or not a
    directory."""
    env = os.environ.get("PACER_EXT_DIR")
    if not env:
        real_unavailable("PACER_EXT_DIR is not set")
    path = Path(env)
    if not path.is_dir():
        real_unavailable(f"PACER_EXT_DIR={env} is not a directory")
    return path


def require_ext_file(pattern):
    """The single file in $PACER_EXT_DIR matching the glob pattern (e.g.
    "consul-*.tar.xz"); skips or fails the test when there is none."""
    path = require_ext_dir()
    hits = sorted(path.glob(pattern))
    if not hits:
        real_unavailable(f"no {pattern} in PACER_EXT_DIR={path}")
    return hits[0]



# What a hardened pacer-executor prints when it makes a system call outside its seccomp
# allow-list (executor/sandbox.c): the test suite runs every executor hardened, so a call
# missing from the list shows up here, wherever the executor's stderr went.
SECCOMP_COMPLAINT = b"is not in the executor's seccomp allow-list"
_LOG_FILE = re.compile(r"(stderr|\.log)(\.\d+)?$|\.stderr$")
_LOG_SCAN_MAX = 64 << 20


def seccomp_complaints(root):
    """[(path, line)] of the executors' allow-list complaints in the log files under root."""
    found = []
    for top, dirs, files in os.walk(root):
        for name in files:
            if not _LOG_FILE.search(name):
                continue
            path = Path(top) / name
            try:
                if path.is_symlink() or path.stat().st_size > _LOG_SCAN_MAX:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if SECCOMP_COMPLAINT in data:
                found.extend((path, line.decode(errors="replace")) for line in data.splitlines()
                             if SECCOMP_COMPLAINT in line)
    return found
