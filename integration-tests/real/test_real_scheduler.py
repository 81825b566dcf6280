"""pacer-scheduler on the real Mesos 1.11 master, its executors on a real
agent registering in the real Consul agent (behind the recording proxy).

test_scheduler_deploys_scales_rolls_and_survives_sigkill: one app through its
whole life — deploy (2 instances, an HTTP health check), scale to 3, a rolling
update that never leaves fewer than minimumHealthCapacity of them ready (in
the API and in Consul), a SIGKILL of the scheduler and a restart on the same
data dir (same framework id, the running tasks reconciled, nothing relaunched,
killed or restarted), a later scale, DELETE, and a clean SIGTERM.

test_scheduler_through_an_agent_restart: a task dies while its agent is down;
its TASK_FAILED reaches the scheduler when the agent is back (the master
forwards it once per resend: from the recovered agent and from the
re-subscribed executor) and costs exactly one replacement.

Each test runs its apps on an agent of its own (own_agent) pinned by a
constraint. Every wait re-evaluates its condition at each record of the
test's timeline: the scheduler's /v2/events (source "sse") and the Consul
calls the executors make (source "consul"), so each deployment is sampled at
every change it makes. The master and agents have no event stream of ours;
what only they show is read when such a record arrives, or after
SAMPLE_SLICE at the latest.

With maximumOverCapacity 0 a replacement is launched only once the task it
replaces has ended: the real master's timing showed the planner launching
early while an old task was still being killed, which is checked here.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import WaitTimeout, descendants, pid_alive
from real import cluster as cl

pytestmark = pytest.mark.real

APP_ID = "/realsched/web"
# Task ids are "<app id without the leading '/', '/' → '_'>.<uuid>".
TASK_PREFIX = "realsched_web."
SERVICE_NAME = "realsched-web"
# The task: a static file server on its first port (GET / answers 200).
WEB_CMD = "exec /usr/bin/python3 -m http.server --bind 127.0.0.1 $PORT0"

PORT_LINE = r"REST API on http://\S+ \(port (\d+)\)"
START_TIMEOUT = 15.0
REQUEST_TIMEOUT = 10.0
# One deployment step on this agent takes a couple of seconds (executor
# start, first probe, registration); a loaded CI machine gets slack.
DEPLOY_TIMEOUT = 45.0
# Longest a wait goes without re-reading what has no event stream of ours.
SAMPLE_SLICE = 0.5
# Host ports each test's agent offers: enough for the most instances a test
# runs at once (4, plus replacements starting while the old ones stop).
AGENT_PORTS = 8
# Where they are picked: below the kernel's ephemeral range (32768-60999 by
# default: the source ports of every HTTP client here, so a port free a
# moment ago is soon someone's), away from Mesos's default 31000-32000.
SPARE_PORTS = range(20000, 30000)
# minimumHealthCapacity of the rolling update and what it means for 3 instances.
MIN_HEALTH_CAPACITY = 0.5
MIN_READY_OF_3 = 2


# --------------------------------------------------------------------------
# REST and events


class Api:
    """The scheduler's REST API on 127.0.0.1:port (urllib)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None):
        """(status, headers, decoded JSON or raw bytes)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
                status, hdrs, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        if hdrs.get("Content-Type", "").startswith("application/json") and raw:
            return status, hdrs, json.loads(raw)
        return status, hdrs, raw

    def ok(self, method, path, body=None, status=200):
        got, hdrs, doc = self.request(method, path, body)
        if got != status:
            raise AssertionError(f"{method} {path}: expected HTTP {status}, got {got}: {doc!r:.800}")
        return hdrs, doc

    def tasks(self):
        return self.ok("GET", f"/v2/apps{APP_ID}/tasks")[1]["tasks"]

    def metrics(self):
        _, text = self.ok("GET", "/metrics")
        out = {}
        for line in text.decode().splitlines():
            m = re.fullmatch(r"([a-z_]+)\s+(\S+)", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out


class EventStream:
    """GET /v2/events read on a thread; every event goes into the timeline
    (source "sse", kind = its type, detail = its JSON object)."""

    def __init__(self, port, timeline):
        self.timeline = timeline
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.conn.request("GET", "/v2/events", headers={"Accept": "text/event-stream"})
        resp = self.conn.getresponse()
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream"), resp.status
        self.conn.sock.settimeout(None)  # the stream is quiet while nothing happens
        self.thread = threading.Thread(target=self._run, args=(resp,), daemon=True, name="sse-reader")
        self.thread.start()

    def _run(self, resp):
        kind, data = None, []
        try:
            for raw in resp:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and kind is not None:
                    try:
                        payload = json.loads("\n".join(data))
                    except ValueError:
                        payload = {"raw": "\n".join(data)}
                    self.timeline.record("sse", kind, payload if isinstance(payload, dict) else {"value": payload})
                    kind, data = None, []
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.timeline.record("sse", "stream.closed")

    def close(self):
        if self.conn.sock is not None:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader
            except OSError:
                pass
        self.thread.join(5)
        self.conn.close()


class ListedFramework:
    """Puts the scheduler's framework in the cluster fixture's list, so that a
    failure report shows its executor sandboxes (the fixture tears down every
    framework on the master anyway)."""

    def __init__(self, framework_id):
        self.framework_id = framework_id

    def teardown(self):
        pass

    def close(self):
        pass


class PacerScheduler:
    """pacer-scheduler on the real master, started through the test's process
    registry (stopped and leak-checked at teardown)."""

    def __init__(self, cluster, build_dir, data_dir, timeline):
        self.cluster, self.timeline = cluster, timeline
        self.argv = [build_dir / "scheduler" / "pacer-scheduler", f"--master={cluster.master.address}",
                     "--http=127.0.0.1:0", f"--data-dir={data_dir}",
                     f"--executor-path={build_dir / 'executor' / 'pacer-executor'}",
                     f"--consul={cluster.consul.address}", "--failover-timeout=10mins", "--log-level=debug"]
        self.proc = self.api = self.events = None
        self.runs = 0

    def start(self):
        self.runs += 1
        self.proc = self.cluster.procs.start(self.argv, name=f"pacer-scheduler-run{self.runs}", strict=True)
        m = self.proc.wait_output(PORT_LINE, timeout=START_TIMEOUT, stream="stderr")
        self.api = Api(int(m.group(1)))
        self.events = EventStream(self.api.port, self.timeline)
        self.timeline.record("test", "scheduler.started", {"pid": self.proc.pid, "port": self.api.port})
        return self

    def kill(self):
        """SIGKILL: no chance to say anything to anyone."""
        self.proc.signal(signal.SIGKILL)
        rc = self.proc.wait_exit(START_TIMEOUT)
        self.events.close()
        self.timeline.record("test", "scheduler.killed", {"pid": self.proc.pid, "rc": rc})
        return rc

    def stop(self):
        """SIGTERM, as an operator stops it; returns the exit code."""
        self.events.close()
        self.proc.stop()
        return self.proc.returncode

    def close(self):
        if self.events is not None:
            self.events.close()

    def log(self):
        return self.proc.stderr

    def master_framework(self, framework_id):
        return next((f for f in self.cluster.master.state()["frameworks"] if f["id"] == framework_id), None)


# --------------------------------------------------------------------------
# What the test looks at


def spare_ports(n):
    """n ports of SPARE_PORTS, picked at random, that nothing has bound."""
    out = set()
    for port in random.sample(SPARE_PORTS, len(SPARE_PORTS)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        out.add(port)
        if len(out) == n:
            return sorted(out)
    raise AssertionError(f"fewer than {n} free ports in {SPARE_PORTS}")


def own_agent(cluster, name):
    """An agent of this test on the shared master and the constraint that pins
    an app to it. It offers spare_ports(): the shared agent's 31000-32000 may
    be taken by another test session on this host, and a task that cannot bind
    fails — or worse, its check passes against someone else's server."""
    ports = spare_ports(AGENT_PORTS)
    ranges = ",".join(f"{p}-{p}" for p in ports)
    agent = cluster.start_agent(name, resources=f"cpus:4;mem:4096;disk:4096;ports:[{ranges}]",
                                flags=[f"--attributes=pool:{name}"])
    return agent, [["pool", "IS", name]]


def app_spec(instances, constraints, **extra):
    spec = {"id": APP_ID, "constraints": constraints, "cmd": WEB_CMD, "instances": instances, "cpus": 0.05, "mem": 32,
            "env": {"WEB_VERSION": "1"}, "portDefinitions": [{"port": 0, "name": "http"}],
            "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0, "path": "/", "delaySeconds": 0,
                              "intervalSeconds": 2, "timeoutSeconds": 1, "gracePeriodSeconds": 15,
                              "maxConsecutiveFailures": 3}],
            # one at a time: an old instance goes only while MIN_READY_OF_3 others are ready
            "upgradeStrategy": {"minimumHealthCapacity": MIN_HEALTH_CAPACITY, "maximumOverCapacity": 0},
            "backoffSeconds": 0.2, "taskKillGracePeriodSeconds": 2, "labels": {"consul": SERVICE_NAME}}
    spec.update(extra)
    return spec


def task_ready(task):
    """Running, every health check alive, registered in Consul (the REST view)."""
    checks = task.get("healthCheckResults") or []
    return (task["state"] == "TASK_RUNNING" and checks and all(c.get("alive") for c in checks)
            and task.get("registration", {}).get("state") == "registered")


class Sample:
    """The app as the REST API and the real Consul show it at one moment."""

    def __init__(self, sched, consul):
        self.tasks = {t["id"]: t for t in sched.api.tasks()} if sched is not None else {}
        services = {k: v for k, v in consul.services().items() if v.get("Service") == SERVICE_NAME}
        checks = consul.checks()
        # {task id: (service id, passing)}
        self.consul = {}
        for sid, s in services.items():
            mine = [c for c in checks.values() if c.get("ServiceID") == sid]
            passing = bool(mine) and all(c.get("Status") == "passing" for c in mine)
            self.consul[s["Meta"]["pacer_task_id"]] = (sid, passing)

    @classmethod
    def consul_only(cls, consul):
        return cls(None, consul)

    def ready(self, version=None):
        return {tid for tid, t in self.tasks.items() if task_ready(t) and (version is None or t["version"] == version)}

    def passing(self):
        return {tid for tid, (_, ok) in self.consul.items() if ok}

    def settled(self, n, version=None):
        """n tasks, all ready (of version), each in Consul and passing, nothing else there."""
        ids = set(self.tasks)
        return len(ids) == n and self.ready(version) == ids and self.passing() == ids and set(self.consul) == ids

    def __repr__(self):
        tasks = {tid: (t["state"], t["version"][-12:], t.get("registration", {}).get("state"),
                       [c.get("alive") for c in t.get("healthCheckResults") or []]) for tid, t in self.tasks.items()}
        return f"<Sample tasks={tasks} consul={self.consul}>"


def follow(timeline, sample, until, what, timeout=DEPLOY_TIMEOUT, check=None):
    """Takes a sample now and after every new timeline record (at least every
    SAMPLE_SLICE), asserts check(sample) on each, and returns the first sample
    for which until(sample) holds. Returns (sample, number of samples)."""
    deadline = time.monotonic() + timeout
    n = 0
    last = None
    while True:
        t0 = time.monotonic()
        last = sample()
        n += 1
        if check is not None:
            check(last)
        if until(last):
            return last, n
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last {last!r}")
        try:
            timeline.wait(after=t0, timeout=min(left, SAMPLE_SLICE))
        except WaitTimeout:
            pass


def deployment_done(timeline, dep_id, timeout=DEPLOY_TIMEOUT):
    rec = timeline.wait("sse", None, lambda r: r.kind in ("deployment_success", "deployment_failed") and
                        r.detail.get("id") == dep_id, timeout=timeout)
    assert rec.kind == "deployment_success", f"deployment {dep_id}: {rec}"
    return rec


def agent_view(agent, framework_id):
    """{task id: (executor id, state)} of the framework's running executors on the agent."""
    out = {}
    for ex in agent.executors(framework_id):
        for t in ex.get("tasks", []):
            out[t["id"]] = (ex["id"], t["state"])
    return out


def executor_pids(agent):
    """{task id: (executor pid, WEB_VERSION)} of the pacer-executors of this
    agent, from their environment (the ExecutorInfo's, which carries the
    task's). Looked up below pytest, not below the agent: an agent restarted
    is not the parent of the executors it recovered."""
    out = {}
    for pid in cl.executor_processes(os.getpid()):
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(v.split("=", 1) for v in raw.decode(errors="replace").split("\0") if "=" in v)
        if env.get("MESOS_AGENT_ENDPOINT") == agent.address:
            out[env.get("MESOS_TASK_ID")] = (pid, env.get("WEB_VERSION"))
    return out


def web_server_pid(executor_pid):
    """The task's process (the http.server) below a pacer-executor."""
    for pid in descendants(executor_pid):
        if cl.argv0_name(pid) == "python3" and "http.server" in cl.cmdline(pid):
            return pid
    return None


def master_view(sched, framework_id):
    """({task id: state} of running tasks, {completed task id}) of the framework on the master."""
    fw = sched.master_framework(framework_id)
    assert fw is not None, f"the master lost framework {framework_id}"
    return {t["id"]: t["state"] for t in fw["tasks"]}, {t["id"] for t in fw["completed_tasks"]}


# --------------------------------------------------------------------------
# The tests


def test_scheduler_deploys_scales_rolls_and_survives_sigkill(cluster, build_dir, workdir, timeline):
    agent, pinned = own_agent(cluster, "lifecycle")
    sched = PacerScheduler(cluster, build_dir, workdir / "pacer-data", timeline).start()
    try:
        _app_lifecycle(cluster, agent, pinned, sched, timeline)
    finally:
        sched.close()


def _app_lifecycle(cluster, agent, pinned, sched, timeline):
    master, consul = cluster.master, cluster.consul

    def sample():
        return Sample(sched, consul)

    def wait(probe, what, timeout=START_TIMEOUT):
        return follow(timeline, probe, bool, what, timeout)[0]

    # ---- subscribed: the master lists the framework the API names
    info = wait(lambda: (lambda i: i if i.get("frameworkId") else None)(sched.api.ok("GET", "/v2/info")[1]),
                "the scheduler to learn its framework id")
    fid = info["frameworkId"]
    cluster.frameworks.append(ListedFramework(fid))
    assert info["pacer"]["mode"] == "mesos" and "enabled" in info["pacer"]["consul"], info
    fw = wait(lambda: (lambda f: f if f and f["active"] else None)(sched.master_framework(fid)),
              f"framework {fid} to be active on the master")
    assert fw["name"] == "pacer" and fw["checkpoint"] is True and fw["failover_timeout"] == 600, fw
    # every call below (ACCEPT, KILL, ACKNOWLEDGE...) goes pipelined to the real master
    assert "calls to the master pipelined" in sched.log()

    # ---- deploy 2 instances
    hdrs, app = sched.api.ok("POST", "/v2/apps", app_spec(2, pinned), status=201)
    deployment_done(timeline, hdrs["Marathon-Deployment-Id"])
    s, _ = follow(timeline, sample, lambda s: s.settled(2, app["version"]), "2 instances ready and in Consul")
    first = set(s.tasks)
    assert all(t.startswith(TASK_PREFIX) for t in first), first
    for tid, t in s.tasks.items():
        entry = consul.services()[s.consul[tid][0]]
        assert entry["Port"] == t["ports"][0] and entry["Meta"]["pacer_framework_id"] == fid, entry
        assert entry["Meta"]["pacer_executor_id"] == f"pacer.{tid}", entry
    running, _ = master_view(sched, fid)
    assert running == {tid: "TASK_RUNNING" for tid in first}, running
    assert {tid: st for tid, (_, st) in agent_view(agent, fid).items()} == running

    # ---- scale to 3: the two stay, one more
    _, doc = sched.api.ok("PUT", f"/v2/apps{APP_ID}", {"instances": 3})
    v1 = doc["version"]  # a scale is a new version; the instances it keeps take it
    deployment_done(timeline, doc["deploymentId"])
    s, _ = follow(timeline, sample, lambda s: s.settled(3, v1), "3 instances ready and in Consul")
    assert first < set(s.tasks), (first, s)
    before_update = set(s.tasks)
    old_services = {sid for sid, _ in s.consul.values()}

    # ---- rolling update: never fewer than MIN_READY_OF_3 ready, in the API and in Consul
    worst = {"ready": 3, "passing": 3}

    def capacity(s):
        worst["ready"] = min(worst["ready"], len(s.ready()))
        worst["passing"] = min(worst["passing"], len(s.passing()))
        assert len(s.ready()) >= MIN_READY_OF_3, f"fewer than {MIN_READY_OF_3} ready during the update: {s!r}"
        assert len(s.passing()) >= MIN_READY_OF_3, f"fewer than {MIN_READY_OF_3} passing in Consul: {s!r}"
        # maximumOverCapacity 0: never more than 3 tasks, a task being killed included, nor more than 3
        # serving
        assert len(s.tasks) <= 3, f"maximumOverCapacity 0, yet {len(s.tasks)} tasks: {s!r}"
        assert len(s.consul) <= 3, f"maximumOverCapacity 0, yet {len(s.consul)} instances in Consul: {s!r}"

    mark = timeline.record("test", "update")
    _, doc = sched.api.ok("PUT", f"/v2/apps{APP_ID}", {"env": {"WEB_VERSION": "2"}})
    v2 = doc["version"]
    assert v2 != v1

    def updated(s):
        return (timeline.last("sse", "deployment_success", {"id": doc["deploymentId"]}) is not None
                and s.settled(3, v2))

    s, samples = follow(timeline, sample, updated, "the rolling update to replace every instance", DEPLOY_TIMEOUT,
                        check=capacity)
    assert samples >= 6, f"the update was sampled only {samples} times"
    assert worst["ready"] == MIN_READY_OF_3, f"the update never went down to the minimum: {worst}"
    current = set(s.tasks)
    assert not current & before_update, f"not every instance was replaced: {current & before_update}"
    # Consul followed: every old entry deregistered (confirmed by the real agent), the new ones registered
    deregistered = {r.detail["service_id"] for r in timeline.records("consul", "deregister")
                    if r.t > mark.t and r.detail.get("status") == 200}
    assert old_services <= deregistered, old_services - deregistered
    assert not old_services & set(consul.services())
    executors = executor_pids(agent)
    assert {tid: v for tid, (_, v) in executors.items()} == {tid: "2" for tid in current}, executors
    running, completed = master_view(sched, fid)
    assert running == {tid: "TASK_RUNNING" for tid in current}, running
    assert before_update <= completed

    # ---- SIGKILL the scheduler: the master keeps its tasks, Consul its entries
    on_agent = agent_view(agent, fid)
    old_pid = sched.proc.pid
    assert sched.kill() == -signal.SIGKILL
    killed_at = time.time()
    fw = wait(lambda: (lambda f: f if f and not f["active"] else None)(sched.master_framework(fid)),
              "the master to notice the scheduler is gone")
    assert {t["id"] for t in fw["tasks"]} == current, "the master dropped tasks of a disconnected framework"
    s = Sample.consul_only(consul)
    assert s.passing() == current, f"Consul entries changed while the scheduler was away: {s!r}"

    # ---- restart on the same data dir: same framework, the same tasks reconciled
    sched.start()
    assert sched.proc.pid != old_pid

    def resubscribed():
        f = sched.master_framework(fid)
        return f if f and f["active"] and (f.get("reregistered_time") or 0) >= killed_at else None

    wait(resubscribed, f"the restarted scheduler to re-subscribe as {fid}")
    assert [f["id"] for f in master.state()["frameworks"]] == [fid], "a second framework appeared"
    assert sched.api.ok("GET", "/v2/info")[1]["frameworkId"] == fid
    assert re.search(rf"recovered 1 apps, 3 instances .* framework {re.escape(fid)}", sched.log())
    assert re.search(rf"subscribed to the Mesos master at \S+ as framework {re.escape(fid)}", sched.log())
    assert "asked the master about 3 known tasks" in sched.log()
    # the master answers each task twice (explicit and implicit reconciliation); the
    # scheduler launches nothing, kills nothing and finds no stray
    wait(lambda: sched.api.metrics().get("pacer_status_updates_total", 0) >= 6, "the reconciliation answers")
    s = sample()
    assert s.settled(3, v2) and set(s.tasks) == current, s
    running, completed_after = master_view(sched, fid)
    assert running == {tid: "TASK_RUNNING" for tid in current}, running
    assert completed_after == completed, "tasks ended across the restart"
    assert agent_view(agent, fid) == on_agent, "the agent's tasks changed across the restart"
    assert executor_pids(agent) == executors, "executors were restarted"
    metrics = sched.api.metrics()
    for name in ("pacer_tasks_launched_total", "pacer_tasks_killed_total", "pacer_stray_tasks_killed_total"):
        assert metrics.get(name) == 0, f"{name} = {metrics.get(name)} after the restart"
    assert metrics.get("pacer_instances") == 3, metrics

    # ---- a later scale still works: one more, the three stay untouched
    _, doc = sched.api.ok("PUT", f"/v2/apps{APP_ID}", {"instances": 4})
    deployment_done(timeline, doc["deploymentId"])
    s, _ = follow(timeline, sample, lambda s: s.settled(4, doc["version"]), "4 instances after the restart")
    assert current < set(s.tasks), (current, s)
    after = executor_pids(agent)
    assert {tid: after.get(tid) for tid in current} == executors, "the scale touched running executors"
    final = set(s.tasks)
    final_services = {sid for sid, _ in s.consul.values()}

    # ---- DELETE: the tasks are killed, their entries and executors gone
    mark = timeline.record("test", "delete")
    _, doc = sched.api.ok("DELETE", f"/v2/apps{APP_ID}")
    deployment_done(timeline, doc["deploymentId"])
    timeline.wait("sse", "app_terminated_event", {"appId": APP_ID}, after=mark, timeout=DEPLOY_TIMEOUT)
    status, _, _ = sched.api.request("GET", f"/v2/apps{APP_ID}")
    assert status == 404

    def all_gone():
        running, completed = master_view(sched, fid)
        return (not running and final <= completed and not Sample.consul_only(consul).consul
                and not agent.executors(fid) and not executor_pids(agent))

    wait(all_gone, "the app's tasks, executors and Consul entries to be gone", cl.TEARDOWN_TIMEOUT)
    fw = sched.master_framework(fid)
    states = {t["id"]: t["state"] for t in fw["completed_tasks"] if t["id"] in final}
    assert set(states.values()) == {"TASK_KILLED"}, states
    deregistered = {r.detail["service_id"] for r in timeline.records("consul", "deregister")
                    if r.t > mark.t and r.detail.get("status") == 200}
    assert final_services <= deregistered, final_services - deregistered

    # ---- SIGTERM: a clean exit (where an ASan build reports leaks), the framework left for failover
    assert sched.stop() == 0, sched.log()[-3000:]
    assert master.framework_ids() == [fid]


def test_scheduler_through_an_agent_restart(cluster, build_dir, workdir, timeline):
    """A task that dies while its agent is down: the TASK_FAILED waits in the
    executor, reaches the scheduler once the agent is back (possibly more than
    once), and the instance is replaced exactly once; its sibling is untouched."""
    agent, pinned = own_agent(cluster, "restart")
    sched = PacerScheduler(cluster, build_dir, workdir / "pacer-data", timeline).start()
    try:
        _agent_restart(cluster, agent, pinned, sched, timeline)
    finally:
        sched.close()


def _agent_restart(cluster, agent, pinned, sched, timeline):
    consul = cluster.consul

    def sample():
        return Sample(sched, consul)

    hdrs, app = sched.api.ok("POST", "/v2/apps", app_spec(2, pinned), status=201)
    deployment_done(timeline, hdrs["Marathon-Deployment-Id"])
    s, _ = follow(timeline, sample, lambda s: s.settled(2, app["version"]), "2 instances ready and in Consul")
    fid = sched.api.ok("GET", "/v2/info")[1]["frameworkId"]
    cluster.frameworks.append(ListedFramework(fid))
    executors = executor_pids(agent)
    assert set(executors) == set(s.tasks), (executors, s)
    victim, survivor = sorted(s.tasks)
    victim_sid = s.consul[victim][0]
    victim_pid = web_server_pid(executors[victim][0])
    assert victim_pid is not None

    # the agent goes away; the victim's task dies meanwhile: its executor deregisters it and
    # keeps the TASK_FAILED for the agent
    assert agent.stop() == "terminated"
    mark = timeline.record("test", "agent.stopped")
    os.kill(victim_pid, signal.SIGKILL)
    timeline.wait("consul", "deregister", {"service_id": victim_sid, "status": 200}, after=mark, timeout=15)
    assert [t["state"] for t in sched.api.tasks()] == ["TASK_RUNNING"] * 2, "the scheduler heard of it early"

    agent_id = agent.agent_id
    assert agent.start() == agent_id, "the agent did not recover"
    failed = timeline.wait("sse", "status_update_event", {"taskId": victim, "taskStatus": "TASK_FAILED"},
                           after=mark, timeout=DEPLOY_TIMEOUT)
    s, _ = follow(timeline, sample, lambda s: s.settled(2) and victim not in s.tasks,
                  "the failed instance to be replaced")
    replacement = set(s.tasks) - {survivor}
    assert len(replacement) == 1 and survivor in s.tasks, s
    assert executor_pids(agent)[survivor] == executors[survivor], "the surviving instance was touched"
    assert pid_alive(executors[survivor][0])
    # however many times the master delivered the failure, it cost one launch and no kill
    metrics = sched.api.metrics()
    assert metrics.get("pacer_tasks_launched_total") == 3, metrics
    assert metrics.get("pacer_tasks_killed_total") == 0, metrics
    assert metrics.get("pacer_stray_tasks_killed_total") == 0, metrics
    assert len(timeline.records("sse", "status_update_event", {"taskId": victim, "taskStatus": "TASK_FAILED"})) == 1
    last = sched.api.ok("GET", f"/v2/apps{APP_ID}")[1]["app"]["pacer"]
    assert "TASK_FAILED" in last.get("lastFailure", ""), last
    fw = sched.master_framework(fid)
    completed = {t["id"]: t["state"] for t in fw["completed_tasks"]}
    assert completed == {victim: "TASK_FAILED"}, completed
    assert failed.detail.get("message"), failed

    _, doc = sched.api.ok("DELETE", f"/v2/apps{APP_ID}")
    deployment_done(timeline, doc["deploymentId"])
    follow(timeline, lambda: Sample.consul_only(consul).consul or agent.executors(fid), lambda v: not v,
           "the app's executors and Consul entries to be gone", cl.TEARDOWN_TIMEOUT)
    assert sched.stop() == 0, sched.log()[-3000:]
