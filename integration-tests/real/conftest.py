"""Fixtures for tests against the real Mesos master and agent (and the real
Consul agent) from $PACER_EXT_DIR.

Session-wide (started once, because CI time matters):
  mesos_dist     the extracted relocatable Mesos (Path of its `mesos` dir),
                 cached across sessions next to pytest's basetemp
  consul_agent   the real Consul dev agent behind a RecordingProxy
  mesos_cluster  a MesosMaster and a MesosAgent on 127.0.0.1; the agent gives
                 executors PATH, CONSUL_HTTP_ADDR (the recording proxy) and the
                 sanitizer knobs through --executor_environment_variables

Per test:
  real_consul    the Consul view of this test: the proxy records into the
                 test's Timeline (source "consul")
  cluster        a RealCluster: the shared master and agent, this test's
                 timeline and procs, framework() to subscribe test frameworks
                 and start_agent() for tests that stop or restart an agent
                 (their own agent on the shared master, stopped at the end).
                 At teardown every framework on the master is torn down, the
                 agents must end up with no executor and no process below
                 them, and whatever is left is killed and fails the test.

A framework that is not a test Framework (pacer-scheduler, for instance) plugs
in the same way: start it with cluster.procs.start([..., f"--master={
cluster.master.address}"]) and let the teardown remove its framework from the
master (TEARDOWN through the operator endpoint) before procs stops it.

Tests here are marked `real` (skipped without PACER_EXT_DIR, failed instead
with PACER_REQUIRE_REAL=1). On a failure the report also shows the tail of
the master's and agents' logs written during the test and the stdout/stderr
of every executor sandbox of the test's frameworks.
"""

import os
from pathlib import Path

import pytest

import harness
from consul_support import RealConsul, RecordingProxy, consul_binary
from real import cluster as cl
from real.framework import Framework

# How much of each log a failure report shows.
REPORT_TAIL_BYTES = 24 * 1024
# Executor sandboxes attached to a failure report, at most.
REPORT_SANDBOXES_MAX = 8


class _NullTimeline(harness.Timeline):
    """Where the shared proxy records between tests: nowhere."""

    def record(self, source, kind, detail=""):
        return None


@pytest.fixture(scope="session")
def mesos_dist(tmp_path_factory):
    tarball = harness.require_ext_file(cl.MESOS_TARBALL_GLOB)
    # pytest keeps basetemp per session; its parent outlives sessions, so the
    # 500 MB extraction is reused while the tarball stays the same
    cache = tmp_path_factory.getbasetemp().parent / "pacer-ext-cache"
    return cl.extract_mesos(tarball, cache)


class ConsulView:
    """The real Consul agent as one test sees it: address = the recording
    proxy (what executors use), upstream_address = the agent itself."""

    def __init__(self, agent, proxy):
        self.agent, self.proxy = agent, proxy

    @property
    def address(self):
        return self.proxy.address

    @property
    def upstream_address(self):
        return self.agent.address

    def services(self):
        return self.proxy.services()

    def checks(self):
        return self.proxy.checks()

    def task_services(self, task_id):
        """{service id: entry} of the services registered for task_id."""
        return {k: v for k, v in self.services().items() if (v.get("Meta") or {}).get("pacer_task_id") == task_id}

    def task_checks(self, task_id):
        ids = set(self.task_services(task_id))
        return {k: v for k, v in self.checks().items() if v.get("ServiceID") in ids}


@pytest.fixture(scope="session")
def consul_agent(tmp_path_factory):
    harness.require_ext_dir()
    binary = consul_binary(tmp_path_factory.getbasetemp())
    agent = RealConsul(binary, tmp_path_factory.mktemp("real-consul")).start()
    # RealConsul starts the agent itself, not through a ProcessRegistry: tell
    # the registries' leak checks that this child of pytest is a live server
    with harness._live_lock:
        harness._live_pids.add(agent.proc.pid)
    proxy = RecordingProxy(agent.port, _NullTimeline()).start()
    yield ConsulView(agent, proxy)
    proxy.stop()
    agent.stop()
    with harness._live_lock:
        harness._live_pids.discard(agent.proc.pid)


@pytest.fixture
def real_consul(consul_agent, timeline):
    proxy = consul_agent.proxy
    with proxy._cond:
        proxy.timeline = timeline
        proxy.calls = []
    yield consul_agent
    with proxy._cond:
        proxy.timeline = _NullTimeline()


@pytest.fixture(scope="session")
def session_procs(tmp_path_factory):
    registry = harness.ProcessRegistry(tmp_path_factory.mktemp("real-cluster-logs"))
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def mesos_cluster(mesos_dist, consul_agent, session_procs, tmp_path_factory):
    """(master, agent) shared by every real test of the session."""
    base = tmp_path_factory.mktemp("real-cluster")
    master = cl.MesosMaster(mesos_dist, session_procs, base / "master").start()
    agent = cl.MesosAgent(mesos_dist, session_procs, master, base / "agent",
                          executor_env={"CONSUL_HTTP_ADDR": consul_agent.address})
    agent.start()
    yield master, agent
    cl.teardown_everything(master, [agent])
    agent.stop()
    master.stop()


class RealCluster:
    """What a test gets: the shared master/agent plus its own frameworks and agents."""

    def __init__(self, master, agent, dist, consul, timeline, procs, workdir):
        self.master, self.agent, self.dist, self.consul = master, agent, dist, consul
        self.timeline, self.procs, self.workdir = timeline, procs, Path(workdir)
        self.frameworks = []
        self.agents = []  # started by this test
        self._log_marks = {}
        self.mark_logs(master, agent)

    def mark_logs(self, *daemons):
        for d in daemons:
            if d.proc is not None:
                self._log_marks[d.proc.pid] = len(d.proc.output("stderr"))

    def framework(self, name=None, **kw):
        """A Framework subscribed to the shared master (torn down at the end)."""
        fw = Framework(self.master.address, self.timeline, name=name or "pacer-real-test", **kw)
        self.frameworks.append(fw)
        fw.subscribe()
        return fw

    def start_agent(self, name="agent", **kw):
        """A fresh agent of this test on the shared master (own work dir,
        port, logs in the test's process registry), registered."""
        kw.setdefault("executor_env", {"CONSUL_HTTP_ADDR": self.consul.address})
        agent = cl.MesosAgent(self.dist, self.procs, self.master, self.workdir / name, name=f"mesos-{name}", **kw)
        self.agents.append(agent)
        agent.start()
        return agent

    def all_agents(self):
        return [self.agent] + self.agents

    def orphaned_containers(self):
        """Container launchers re-parented to pytest (their agent was stopped
        while they ran): {pid: cmdline} of them and everything below them."""
        me = os.getpid()
        table = harness.proc_table()
        out = {}
        for info in table.values():
            if info.ppid == me and info.state != "Z" and cl.argv0_name(info.pid) == "mesos-containerizer":
                for pid in [info.pid] + harness.descendants(info.pid, table):
                    out[pid] = cl.cmdline(pid)
        return out

    def sandboxes(self):
        """[(label, Path)] of the executor sandboxes of this test's frameworks."""
        out = []
        for agent in self.all_agents():
            for work_dir in agent.work_dirs:
                for fw in self.frameworks:
                    if not fw.framework_id:
                        continue
                    for d in sorted(work_dir.glob(f"slaves/*/frameworks/{fw.framework_id}/executors/*/runs/latest")):
                        out.append((f"{agent.name} executor {d.parent.parent.name}", d))
        return out

    def close(self):
        """Teardown: frameworks, then the leak check. Raises on a leak."""
        for fw in self.frameworks:
            try:
                fw.teardown()
            except Exception:  # the master may have removed it already
                pass
        killed = cl.teardown_everything(self.master, [a for a in self.all_agents() if a.proc and a.proc.alive()])
        for fw in self.frameworks:
            fw.close()
        try:
            harness.wait_for(lambda: not self.orphaned_containers(), cl.TEARDOWN_TIMEOUT,
                             "executors of stopped agents to exit")
        except harness.WaitTimeout:
            left = self.orphaned_containers()
            killed += cl.kill_pids(left)
        for agent in self.agents:
            agent.stop()
        if killed:
            listing = "\n".join(f"  pid {pid}: {line}" for pid, line in killed)
            raise AssertionError(f"the agents' executors left processes behind (now killed):\n{listing}")

    def report_sections(self):
        sections = []
        for d in [self.master] + self.all_agents():
            for run in getattr(d, "runs", None) or [d.proc]:
                if run is None:
                    continue
                text = run.output("stderr")[self._log_marks.get(run.pid, 0):]
                if text:
                    if len(text) > REPORT_TAIL_BYTES:
                        text = f"[... {len(text) - REPORT_TAIL_BYTES} bytes left out]\n" + text[-REPORT_TAIL_BYTES:]
                    sections.append((f"{run.name} (pid {run.pid}) log during the test", text))
        for label, d in self.sandboxes()[:REPORT_SANDBOXES_MAX]:
            for stream in ("stderr", "stdout"):
                try:
                    data = (d / stream).read_bytes()
                except OSError:
                    continue
                if data:
                    text = data[-REPORT_TAIL_BYTES:].decode(errors="replace")
                    sections.append((f"{label} {stream} ({d})", text))
        return sections


@pytest.fixture
def cluster(request, mesos_cluster, mesos_dist, real_consul, timeline, procs, workdir):
    master, agent = mesos_cluster
    for d, what in ((master, "mesos-master"), (agent, "mesos-agent")):
        if not d.proc.alive():
            pytest.fail(f"the shared {what} died (exit {d.proc.returncode}) before this test; its log: "
                        f"{d.proc.stderr_path}")
    entry = master.agent(agent.pid_name)
    if not entry or not entry.get("active"):
        pytest.fail(f"the shared agent {agent.pid_name} is not active on the master: {entry}")
    rc = RealCluster(master, agent, mesos_dist, real_consul, timeline, procs, workdir)
    request.node._pacer_real_cluster = rc
    yield rc
    rc.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    rc = getattr(item, "_pacer_real_cluster", None)
    if rc is None:
        return
    try:
        report.sections.extend(rc.report_sections())
    except Exception as e:  # a report must not fail
        report.sections.append(("real cluster logs", f"could not collect: {e!r}"))

