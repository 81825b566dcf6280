"""A real Mesos 1.11 master and agent on 127.0.0.1, from the relocatable build in
$PACER_EXT_DIR (../shared/ext/README.md): extraction (cached), start-up with
free ports and temporary work dirs, readiness ("the master lists the agent"),
restart, and cleanup of what the agent's executors leave behind.

Processes are started through a harness.ProcessRegistry, so they are stopped
by pid (SIGTERM, then SIGKILL) and their stderr — where Mesos logs — is kept
in the registry's log directory. Nothing here needs pytest: tools/bench uses
the same classes.

Facts this module depends on (measured on this build, see the report of
issue 9): the agent registers 1-3 s after start; executors do not inherit the
agent's environment, only --executor_environment_variables; a posix-launched
executor is a child of the agent in a session of its own, so stopping the
agent's process group does not stop executors, and an agent stopped with
SIGTERM leaves them running (re-parented to the nearest subreaper: pytest).
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import (POLL_INTERVAL, SANITIZER_ENV, WaitTimeout, descendants, free_port, pid_alive, proc_info,
                     proc_table, wait_condition, wait_for)

MESOS_TARBALL_GLOB = "mesos-*.tar.xz"
# Start-up bounds: an in-memory-registry master elects itself in well under a
# second, an agent registers in 1-3 s (README); a loaded CI machine gets slack.
MASTER_START_TIMEOUT = 30.0
AGENT_REGISTER_TIMEOUT = 30.0
# How often a port picked by free_port() may turn out to be taken meanwhile.
PORT_ATTEMPTS = 3
HTTP_TIMEOUT = 5.0
# /state of a test cluster is a few KiB; anything near this is a bug.
STATE_BODY_MAX = 64 * 1024 * 1024
# What an agent gives executors when PATH is not configured (Mesos 1.0 notes).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PORTS_BEGIN, PORTS_END = 31000, 32000
DEFAULT_RESOURCES = f"cpus:4;mem:4096;disk:4096;ports:[{PORTS_BEGIN}-{PORTS_END}]"
# Executor timing on the test agent: a wedged executor is destroyed after
# this long instead of the 1 min default; SHUTDOWN leaves this long before the
# container is destroyed (default 5 s).
EXECUTOR_REGISTRATION_TIMEOUT = "20secs"
EXECUTOR_SHUTDOWN_GRACE = "3secs"
# Agent-side bound for framework teardown to reach every executor: the
# shutdown grace period plus the agent's own container destruction.
TEARDOWN_TIMEOUT = 20.0
# Executor programs recognised in the agent's process tree (argv[0] basename).
EXECUTOR_NAMES = ("pacer-executor", "mesos-executor")


# --------------------------------------------------------------------------
# Extraction


def extract_mesos(tarball, cache_root):
    """Extracts the relocatable Mesos tarball into cache_root (once: the
    extraction is keyed by the tarball's name, size and mtime and reused while
    it stays the same) and returns the `mesos` directory inside it. Safe
    against concurrent test sessions (a lock file). Older extractions in
    cache_root are removed."""
    tarball = Path(tarball)
    st = tarball.stat()
    key = f"{tarball.name.removesuffix('.tar.xz')}-{st.st_size}-{st.st_mtime_ns}"
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    dest = cache_root / key
    with open(cache_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ".complete").is_file():
            return dest / "mesos"
        for old in cache_root.iterdir():
            if old.name.startswith("mesos-") and old != dest:
                shutil.rmtree(old, ignore_errors=True)
        scratch = cache_root / f".extract-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        scratch.mkdir()
        res = subprocess.run(["tar", "-xJf", str(tarball), "-C", str(scratch)], capture_output=True)
        if res.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise RuntimeError(f"extracting {tarball} failed (tar exit {res.returncode}): "
                               f"{res.stderr.decode(errors='replace')[-2000:]}")
        for need in ("sbin/mesos-master", "sbin/mesos-agent", "libexec/mesos/mesos-executor"):
            if not (scratch / "mesos" / need).is_file():
                shutil.rmtree(scratch, ignore_errors=True)
                raise RuntimeError(f"{tarball} has no mesos/{need}: not the relocatable Mesos build")
        (scratch / ".complete").write_text(f"{tarball}\n")
        scratch.rename(dest)
    return dest / "mesos"


# --------------------------------------------------------------------------
# HTTP


def http_request(url, method="GET", body=None, headers=None, timeout=HTTP_TIMEOUT):
    """(status, body bytes) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(STATE_BODY_MAX)
    except urllib.error.HTTPError as e:
        return e.code, e.read(STATE_BODY_MAX)


def get_json(url, timeout=HTTP_TIMEOUT):
    status, body = http_request(url, timeout=timeout)
    if status != 200:
        raise AssertionError(f"GET {url}: HTTP {status}: {body[:500]!r}")
    return json.loads(body)


# --------------------------------------------------------------------------
# Processes


def argv0_name(pid):
    """Basename of a process's argv[0] ("" when gone or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return os.path.basename(raw.split(b"\0", 1)[0].decode(errors="replace"))


def cmdline(pid):
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def executor_processes(root_pid, names=EXECUTOR_NAMES, table=None):
    """{pid: name} of the executor processes below root_pid: descendants whose
    argv[0] is one of `names` and whose parent is not (pacer-executor's guard is
    a forked copy of it, with the same command line)."""
    table = table if table is not None else proc_table()
    out = {}
    for pid in descendants(root_pid, table):
        name = argv0_name(pid)
        if name in names and argv0_name(table[pid].ppid) != name:
            out[pid] = name
    return out


def kill_pids(pids):
    """SIGKILLs pids (living ones) and returns [(pid, cmdline)] of those it hit."""
    hit = []
    for pid in pids:
        if not pid_alive(pid):
            continue
        line = cmdline(pid)
        try:
            os.kill(pid, signal.SIGKILL)
            hit.append((pid, line))
        except ProcessLookupError:
            pass
    return hit


class _Reaper:
    """Reaps the processes a stopped agent left to us, as soon as they exit.

    The test process is a child subreaper (harness), so the container
    launchers (`mesos-containerizer launch`, parents of the executors) of an
    agent stopped with SIGTERM become our children. A restarted agent watches
    them by polling their pid, and a zombie looks alive: left unreaped, the
    agent would wait for a container that is long gone. Only pids handed to
    adopt() are waited for; their wait statuses are kept."""

    def __init__(self):
        self._cond = threading.Condition()
        self._pending = set()
        self.statuses = {}  # pid -> wait status (None: reaped by someone else)
        self._thread = None

    def adopt(self, pid):
        with self._cond:
            self._pending.add(pid)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="container-reaper")
                self._thread.start()
            self._cond.notify_all()

    def _run(self):
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending)
                pending = list(self._pending)
            for pid in pending:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = pid, None
                if done == pid:
                    with self._cond:
                        self._pending.discard(pid)
                        self.statuses[pid] = status
                        self._cond.notify_all()
            time.sleep(POLL_INTERVAL)

    def wait(self, pid, timeout):
        """The wait status of an adopted pid once it exited (None if someone
        else reaped it)."""
        wait_condition(self._cond, lambda: pid in self.statuses, timeout, f"adopted pid {pid} to exit")
        with self._cond:
            return self.statuses[pid]


reaper = _Reaper()


def process_env(extra=None):
    """The environment of a Mesos daemon: nothing of the test's own except the
    sanitizer knobs (added by the registry)."""
    env = {"PATH": DEFAULT_PATH, "LIBPROCESS_IP": "127.0.0.1", "GLOG_drop_log_memory": "false"}
    env.update(extra or {})
    return env


def _start_on_free_port(procs, name, make_argv, env, ready, what, timeout):
    """Starts make_argv(port) on a port that was free, retrying when another
    process took it in between; returns (ManagedProcess, port)."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        proc = procs.start(make_argv(port), name=name, env=env, inherit_env=False)

        def up():
            if not proc.alive():
                return "exited"
            return ready(port)

        try:
            if wait_for(up, timeout, what) != "exited":
                return proc, port
        except WaitTimeout:
            proc.stop()
            raise
        proc.wait_exit(5)
        if "Address already in use" not in proc.stderr or attempt == PORT_ATTEMPTS - 1:
            raise AssertionError(f"{name} exited with {proc.returncode} during start-up:\n{proc.stderr[-4000:]}")
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------
# Master


class MesosMaster:
    """mesos-master on 127.0.0.1 with an in-memory registry."""

    def __init__(self, dist, procs, workdir, name="mesos-master", flags=()):
        self.dist, self.procs, self.workdir, self.name = Path(dist), procs, Path(workdir), name
        self.flags = list(flags)
        self.proc = None
        self.port = None

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)

        def argv(port):
            return [self.dist / "sbin" / "mesos-master", "--ip=127.0.0.1", f"--port={port}",
                    "--hostname=127.0.0.1", f"--work_dir={self.workdir}", "--registry=in_memory",
                    # offers every 100 ms instead of every second: tests wait for offers
                    "--allocation_interval=100ms", *self.flags]

        def ready(port):
            try:
                state = get_json(f"http://127.0.0.1:{port}/state", timeout=1.0)
            except (OSError, AssertionError, ValueError):
                return False
            return bool(state.get("leader")) and state.get("elected_time") is not None

        self.proc, self.port = _start_on_free_port(self.procs, self.name, argv, process_env(), ready,
                                                   "mesos-master to elect itself", MASTER_START_TIMEOUT)
        return self

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.address}"

    def state(self):
        return get_json(f"{self.url}/state")

    def agent(self, pid):
        """The master's /state entry of the agent with libprocess pid `pid`, or None."""
        return next((s for s in self.state().get("slaves", []) if s.get("pid") == pid), None)

    def framework_ids(self):
        """Ids of the frameworks the master has not removed."""
        return [f["id"] for f in self.state().get("frameworks", [])]

    def teardown(self, framework_id):
        """Removes a framework through the operator endpoint (what the scheduler
        API's TEARDOWN does): its executors get SHUTDOWN."""
        status, body = http_request(f"{self.url}/master/teardown", "POST",
                                    urllib.parse.urlencode({"frameworkId": framework_id}).encode(),
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        if status not in (200, 400):  # 400: already gone
            raise AssertionError(f"teardown of {framework_id}: HTTP {status}: {body[:300]!r}")

    def stop(self):
        if self.proc:
            self.proc.stop()


# --------------------------------------------------------------------------
# Agent


class MesosAgent:
    """mesos-agent on 127.0.0.1 registered with `master`: posix launcher and
    isolation, no systemd, no user switching, a ports range, and the executor
    environment given (PATH always; executors get nothing else of ours).

    restart() stops it with SIGTERM and starts it again on the same port —
    with the same work and runtime dirs (checkpoint recovery) or new ones."""

    def __init__(self, dist, procs, master, workdir, executor_env=None, resources=DEFAULT_RESOURCES,
                 flags=(), name="mesos-agent"):
        self.dist, self.procs, self.master, self.name = Path(dist), procs, master, name
        self.workdir = Path(workdir)
        self.work_dir = self.workdir / "work"
        self.runtime_dir = self.workdir / "runtime"
        self.resources = resources
        self.flags = list(flags)
        self.executor_env = {"PATH": DEFAULT_PATH}
        # an ASan/UBSan build of the executor needs the test's sanitizer knobs
        self.executor_env.update({k: os.environ[k] for k in SANITIZER_ENV if k in os.environ})
        self.executor_env.update(executor_env or {})
        self.proc = None
        self.port = None
        self.agent_id = None
        self.runs = []  # every ManagedProcess this agent ran, oldest first
        self.work_dirs = []  # every work dir it ran on, oldest first
        self.adopted = {}  # pid -> cmdline: container launchers left to us by stop()

    def _argv(self, port):
        return [self.dist / "sbin" / "mesos-agent", f"--master={self.master.address}", "--ip=127.0.0.1",
                f"--port={port}", "--hostname=127.0.0.1", f"--work_dir={self.work_dir}",
                f"--runtime_dir={self.runtime_dir}", "--launcher=posix", "--isolation=posix/cpu,posix/mem",
                "--no-systemd_enable_support", "--no-switch_user",
                f"--launcher_dir={self.dist / 'libexec' / 'mesos'}", f"--resources={self.resources}",
                f"--executor_environment_variables={json.dumps(self.executor_env)}",
                f"--executor_registration_timeout={EXECUTOR_REGISTRATION_TIMEOUT}",
                f"--executor_shutdown_grace_period={EXECUTOR_SHUTDOWN_GRACE}",
                # first registration attempt within 100 ms instead of up to 1 s
                "--registration_backoff_factor=100ms", *self.flags]

    @property
    def pid_name(self):
        """The agent's libprocess pid as the master lists it."""
        return f"slave(1)@127.0.0.1:{self.port}"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.address}"

    def start(self, work_dir=None, runtime_dir=None):
        """Starts the agent (on its old port when it ran before) and waits until
        the master lists it as active and (re-)registered since this start;
        returns the agent id."""
        if work_dir is not None:
            self.work_dir = Path(work_dir)
        if runtime_dir is not None:
            self.runtime_dir = Path(runtime_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        if self.work_dir not in self.work_dirs:
            self.work_dirs.append(self.work_dir)
        started = time.time()

        def ready(port):
            self.port = port
            try:
                entry = self.master.agent(f"slave(1)@127.0.0.1:{port}")
            except (OSError, AssertionError, ValueError):
                return False
            if not entry or not entry.get("active"):
                return False
            # the master keeps the entry of the run we stopped: only a (re-)registration counts
            when = max(entry.get("registered_time") or 0, entry.get("reregistered_time") or 0)
            return entry["id"] if when >= started - 1.0 else False

        name = self.name if not self.runs else f"{self.name}-run{len(self.runs) + 1}"
        if self.port is None:
            self.proc, _ = _start_on_free_port(self.procs, name, self._argv, process_env(), ready,
                                               "mesos-agent to register with the master", AGENT_REGISTER_TIMEOUT)
        else:
            self.proc = self.procs.start(self._argv(self.port), name=name, env=process_env(), inherit_env=False)

            def up():
                if not self.proc.alive():
                    raise AssertionError(f"{name} exited with {self.proc.returncode}:\n{self.proc.stderr[-4000:]}")
                return ready(self.port)

            wait_for(up, AGENT_REGISTER_TIMEOUT, "the restarted mesos-agent to re-register with the master")
        self.runs.append(self.proc)
        self.agent_id = self.master.agent(self.pid_name)["id"]
        return self.agent_id

    def stop(self, timeout=None):
        """SIGTERM (then SIGKILL); the agent's executors keep running, their
        container launchers re-parented to us and reaped when they exit (see
        _Reaper; their pids are added to self.adopted). Returns how it ended
        ("terminated", ...)."""
        if self.proc is None:
            return None
        agent_pid = self.proc.pid
        children = [i.pid for i in proc_table().values() if i.ppid == agent_pid and i.state != "Z"]
        how = self.proc.stop(timeout) if timeout is not None else self.proc.stop()
        me = os.getpid()
        for pid in children:
            info = proc_info(pid)
            if info is not None and info.ppid == me:
                self.adopted[pid] = cmdline(pid)
                reaper.adopt(pid)
        return how

    def restart(self, work_dir=None, runtime_dir=None):
        """stop() then start() on the same port; returns the (new) agent id."""
        self.stop()
        return self.start(work_dir, runtime_dir)

    def state(self):
        return get_json(f"{self.url}/state")

    def executors(self, framework_id=None, completed=False):
        """The agent's /state executor entries (of one framework, or all).
        completed=True: the terminated ones (completed_executors, including
        those of completed frameworks)."""
        state = self.state()
        out = []
        fws = state.get("frameworks", []) + (state.get("completed_frameworks", []) if completed else [])
        for fw in fws:
            if framework_id is not None and fw.get("id") != framework_id:
                continue
            out.extend(fw.get("completed_executors" if completed else "executors", []))
        return out

    def sandbox(self, framework_id, executor_id):
        """The executor's latest sandbox directory (Path) on the agent's work dir."""
        return (self.work_dir / "slaves" / self.agent_id / "frameworks" / framework_id / "executors" /
                executor_id / "runs" / "latest")

    def executor_processes(self):
        """{pid: name} of the executors running below this agent."""
        if self.proc is None or not self.proc.alive():
            return {}
        return executor_processes(self.proc.pid)

    def leftovers(self):
        """Pids of every living process below the agent."""
        if self.proc is None or not self.proc.alive():
            return []
        return descendants(self.proc.pid)


def container_status(runtime_dir, container_id):
    """The wait status of a container's executor as `mesos-containerizer
    launch` checkpointed it (its own exit code is 0 whatever the executor
    did), or None when it has not ended."""
    path = Path(runtime_dir) / "containers" / container_id / "status"
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def wait_no_executors(agents, timeout=TEARDOWN_TIMEOUT):
    """Waits until no agent reports a running executor in /state."""

    def idle():
        for a in agents:
            if a.proc is None or not a.proc.alive():
                continue
            if a.executors():
                return False
        return True

    wait_for(idle, timeout, "the agents' executors to terminate")


def teardown_everything(master, agents, timeout=TEARDOWN_TIMEOUT):
    """Brings a cluster back to empty: tears down every framework through the
    master, waits for the agents to report no executors and no process left
    below them, and SIGKILLs what is left. Returns [(pid, cmdline)] of what
    had to be killed (a leak: the caller decides whether it fails a test)."""
    for fid in master.framework_ids():
        master.teardown(fid)
    killed = []
    try:
        wait_no_executors(agents, timeout)
    except WaitTimeout:
        pass
    for a in agents:
        try:
            wait_for(lambda a=a: not a.leftovers(), 3.0, "processes below the agent to exit")
        except WaitTimeout:
            killed += kill_pids(a.leftovers())
    return killed


def proc_alive_named(pid, name):
    """True while pid lives and still runs a program called `name` (argv[0])."""
    info = proc_info(pid)
    return info is not None and info.state != "Z" and argv0_name(pid) == name
