"""pacer-executor on a real Mesos 1.11 agent, registering in a real Consul
agent (behind a recording proxy), driven by a test framework through a real
master.

What the fakes assert (test_executor_consul.py), asserted here from the real
agent's and Consul's views: healthy only once registered; KILL deregisters
before SIGTERM; the terminal state and reason; the agent's /state. Plus what
only a real agent can show: checkpoint recovery across an agent restart, and
an agent that refuses the executor.

Facts about the real master that shape these tests (see the report of issue
9): a LAUNCH whose TaskInfo has both `command` and `executor` is refused by
the master (TASK_ERROR, REASON_TASK_INVALID), so a custom executor launched
by LAUNCH never sees TaskInfo.command; the command reaches it in its own
command line (Marathon's wrapped shell line, or plain argv).
"""

import datetime
import os
import re
import time
import uuid

import pytest

from harness import WaitTimeout, group_leftovers, pid_alive, proc_table, wait_for
from mesos.v1 import mesos_pb2
from mesos.v1.scheduler import scheduler_pb2
from real import cluster as cl
from real.framework import executor_info, http_health_check, pick_free_port, scalar, task_info

pytestmark = pytest.mark.real

# The web task: serves the health check, reports at SIGTERM whether it was
# still in Consul (as test_executor_consul.TASK_SCRIPT does) and writes its pid.
TASK_SCRIPT = r'''
import http.server, json, os, signal, sys, urllib.request
port = int(os.environ["PORT0"])
task = os.environ["MESOS_TASK_ID"]
with open(os.environ["TEST_PIDFILE"], "w") as f:
    f.write(str(os.getpid()))

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 503 if os.path.exists(os.environ["TEST_UNHEALTHY"]) else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

def on_term(*_):
    with urllib.request.urlopen(f"http://{os.environ['TEST_CONSUL']}/v1/agent/services", timeout=5) as r:
        services = json.load(r)
    mine = [s for s in services.values() if (s.get("Meta") or {}).get("pacer_task_id") == task]
    with open(os.environ["TEST_REPORT"], "w") as f:
        f.write("registered" if mine else "gone")
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''

SERVICE_NAME = "realweb"


def wall(rec):
    """A Timeline record's time on the wall clock, to compare with the
    TaskStatus.timestamp the executor stamped (both from this machine)."""
    return rec.t + (time.time() - time.monotonic())


def log_time(log, pattern):
    """Wall-clock time of the first executor log line matching pattern (the
    executor stamps lines "2024-01-01T00:00:00.000Z ..."), or None."""
    rx = re.compile(pattern)
    for line in log.splitlines():
        if rx.search(line):
            stamp = line.split(" ", 1)[0]
            return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
    return None


@pytest.fixture
def executor_bin(build_dir):
    return build_dir / "executor" / "pacer-executor"


class WebTask:
    """One web task run by pacer-executor, launched in one of the shapes a
    real master lets through:

      marathon  ExecutorInfo.command.value = "chmod ug+rx '<exe>' && exec '<exe>' <cmd>"
                (shell), the task's environment in ExecutorInfo.command.environment,
                no TaskInfo.command, no executor resources — what Marathon sends
      argv      ExecutorInfo.command = <exe> -- /usr/bin/python3 <script>
                (shell=false, arguments), executor resources of its own
    """

    def __init__(self, cluster, fw, agent, executor_bin, shape, failures=3, kill_grace=3.0):
        self.cluster, self.fw, self.agent, self.shape = cluster, fw, agent, shape
        self.task_id = f"web-{shape}-{uuid.uuid4().hex[:8]}"
        self.executor_id = f"pacer-{self.task_id}"
        d = cluster.workdir / self.task_id
        d.mkdir()
        self.script = d / "web.py"
        self.script.write_text(TASK_SCRIPT)
        self.pidfile, self.report, self.unhealthy = d / "pid", d / "term-report", d / "unhealthy"
        offer = fw.wait_offer(agent_id=agent.agent_id)
        self.port = pick_free_port(offer)
        env = {"PORT0": self.port, "PORT": self.port, "PORTS": self.port, "HOST": "127.0.0.1",
               "MESOS_TASK_ID": self.task_id, "MARATHON_APP_ID": "/real/web",
               "TEST_CONSUL": cluster.consul.upstream_address, "TEST_PIDFILE": self.pidfile,
               "TEST_REPORT": self.report, "TEST_UNHEALTHY": self.unhealthy}
        if shape == "marathon":
            cmd = f"exec /usr/bin/python3 {self.script}"
            line = f"chmod ug+rx '{executor_bin}' && exec '{executor_bin}' {cmd}"
            ei = executor_info(self.executor_id, command_value=line, env=env)
        elif shape == "argv":
            ei = executor_info(self.executor_id, argv=[executor_bin, "--", "/usr/bin/python3", self.script], env=env,
                               cpus=0.05, mem=32)
        else:
            raise ValueError(shape)
        hc = http_health_check(self.port, "/health", delay=0, interval=0.5, timeout=2, grace=10, failures=failures)
        self.info = task_info(self.task_id, agent.agent_id, ports=[self.port], executor=ei, health_check=hc,
                              task_labels={"consul": SERVICE_NAME}, kill_grace=kill_grace)
        self.n0 = len(fw.updates)
        fw.launch(offer, self.info)

    def wait_healthy(self, healthy=True, timeout=30, after=None):
        return self.fw.wait_update(lambda u: u.task_id == self.task_id and u.state == "TASK_RUNNING"
                                   and u.healthy is healthy, timeout, self.n0 if after is None else after)

    def wait_state(self, state, timeout=30):
        return self.fw.wait_state(self.task_id, state, timeout, self.n0)

    def task_pid(self):
        return int(wait_for(lambda: self.pidfile.exists() and self.pidfile.read_text(), 10, "the task's pid file"))

    def agent_task(self, completed=False):
        """(executor entry, task entry) from the agent's /state."""
        for ex in self.agent.executors(self.fw.framework_id, completed=completed):
            if ex["id"] == self.executor_id:
                tasks = ex.get("completed_tasks" if completed else "tasks", [])
                return ex, next((t for t in tasks if t["id"] == self.task_id), None)
        return None, None

    def executor_log(self):
        path = self.agent.sandbox(self.fw.framework_id, self.executor_id) / "stderr"
        return path.read_text(errors="replace") if path.exists() else ""


# ---------------------------------------------------------------------------
# both launch shapes: healthy only once registered, KILL deregisters first


@pytest.mark.parametrize("shape", ["marathon", "argv"])
def test_healthy_once_registered_and_kill_deregisters_before_sigterm(cluster, executor_bin, timeline, shape):
    fw = cluster.framework(f"real-{shape}")
    web = WebTask(cluster, fw, cluster.agent, executor_bin, shape)
    healthy = web.wait_healthy()

    # register and verify were answered before the executor stamped healthy=true,
    # and before the framework heard of it
    _, verify, _ = timeline.assert_order(
        ("consul", "register", lambda r: r.detail.get("status") == 200 and
         str(r.detail.get("service_id", "")).startswith(web.task_id)),
        ("consul", "service", lambda r: r.detail.get("status") == 200 and
         str(r.detail.get("service_id", "")).startswith(web.task_id)),
        ("framework", "update", {"task": web.task_id, "healthy": True}))
    assert healthy.timestamp >= wall(verify) - 0.001, "the executor stamped healthy=true before Consul confirmed"
    assert healthy.source == "SOURCE_EXECUTOR"
    assert healthy.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    updates = fw.task_updates(web.task_id)
    before = updates[:updates.index(healthy)]
    assert [u.state for u in before][:2] == ["TASK_STARTING", "TASK_RUNNING"], [str(u) for u in before]
    assert all(u.healthy is not True for u in before)

    services = cluster.consul.task_services(web.task_id)
    assert len(services) == 1, services
    (sid, entry), = services.items()
    assert entry["Service"] == SERVICE_NAME and entry["Port"] == web.port and "pacer" in entry["Tags"]
    assert entry["Meta"]["pacer_executor_id"] == web.executor_id
    assert entry["Meta"]["pacer_framework_id"] == fw.framework_id

    # the agent's view
    ex, task = web.agent_task()
    assert ex is not None and task is not None, cluster.agent.state()
    assert ex["type"] == "CUSTOM"
    assert task["state"] == "TASK_RUNNING"
    assert task["resources"]["ports"] == f"[{web.port}-{web.port}]"
    assert [s["state"] for s in task["statuses"]][:2] == ["TASK_STARTING", "TASK_RUNNING"]
    assert any(s.get("healthy") is True for s in task["statuses"]), task["statuses"]
    task_pid = web.task_pid()
    assert pid_alive(task_pid)
    executors = cluster.agent.executor_processes()
    assert list(executors.values()) == ["pacer-executor"], executors
    executor_pid = next(iter(executors))

    # KILL: deregistered and confirmed before TASK_KILLING and SIGTERM
    fw.kill(web.task_id, cluster.agent.agent_id)
    killed = web.wait_state("TASK_KILLED")
    assert web.report.read_text() == "gone", "the task was still in Consul when it got SIGTERM"
    dereg, killing = timeline.assert_order(
        ("consul", "deregister", lambda r: r.detail.get("status") == 200 and r.detail.get("service_id") == sid),
        ("framework", "update", {"task": web.task_id, "state": "TASK_KILLING"}))
    killing_update = fw.wait_state(web.task_id, "TASK_KILLING", 1)
    assert killing_update.timestamp >= wall(dereg) - 0.001
    assert cluster.consul.task_services(web.task_id) == {}
    assert killed.source == "SOURCE_EXECUTOR"
    assert killed.reason == "", killed
    assert fw.states(web.task_id)[-2:] == ["TASK_KILLING", "TASK_KILLED"]

    # the executor exits 0 once the agent acknowledged TASK_KILLED; nothing stays
    failure = fw.wait_failure(web.executor_id)
    assert failure.HasField("status") and os.WIFEXITED(failure.status) and os.WEXITSTATUS(failure.status) == 0, \
        failure
    wait_for(lambda: not pid_alive(executor_pid) and not pid_alive(task_pid), 10, "executor and task to be gone")
    ex, task = web.agent_task(completed=True)
    assert task is not None and task["state"] == "TASK_KILLED", cluster.agent.state()
    assert "giving up" not in web.executor_log()


# ---------------------------------------------------------------------------
# what the real master and agent let through


def test_master_refuses_task_with_both_command_and_executor(cluster, executor_bin):
    """The fakes hand pacer-executor TaskInfos with `command` set; a real
    master never launches one on a custom executor."""
    fw = cluster.framework("real-both")
    offer = fw.wait_offer(agent_id=cluster.agent.agent_id)
    ei = executor_info("pacer-both", argv=[executor_bin], cpus=0.05, mem=32)
    fw.launch(offer, task_info("both", cluster.agent.agent_id, command="sleep 100", executor=ei))
    err = fw.wait_state("both", "TASK_ERROR", 10)
    assert err.source == "SOURCE_MASTER" and err.reason == "REASON_TASK_INVALID", err
    assert "CommandInfo or ExecutorInfo" in err.message, err
    assert cluster.agent.executors(fw.framework_id) == []


def test_launch_group_is_refused_by_the_executor(cluster, executor_bin):
    """The only way a TaskInfo with `command` reaches a custom executor is a
    task group: pacer-executor refuses it with TASK_ERROR and exits."""
    fw = cluster.framework("real-group")
    offer = fw.wait_offer(agent_id=cluster.agent.agent_id)
    ei = executor_info("pacer-group", argv=[executor_bin], cpus=0.05, mem=32)
    # task groups need every executor resource, disk included ("Executor uses no disk")
    ei.resources.append(scalar("disk", 8))
    ei.framework_id.value = fw.framework_id
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH_GROUP)
    op.launch_group.executor.CopyFrom(ei)
    op.launch_group.task_group.tasks.add().CopyFrom(task_info("grouped", cluster.agent.agent_id, command="sleep 100"))
    fw.call(call)
    err = fw.wait_state("grouped", "TASK_ERROR", 20)
    assert err.source == "SOURCE_EXECUTOR" and err.reason == "REASON_TASK_GROUP_INVALID", err
    assert "task groups" in err.message
    # with nothing left to run it should exit (the agent never stops an idle
    # custom executor); the TASK_ERROR is acknowledged within milliseconds
    failure = fw.wait_failure("pacer-group", timeout=15)
    assert os.WIFEXITED(failure.status) and os.WEXITSTATUS(failure.status) == 0, failure
    wait_for(lambda: not cluster.agent.leftovers(), 10, "nothing left below the agent")


# ---------------------------------------------------------------------------
# agent restart


def test_agent_restart_with_checkpointing_keeps_task_and_entry(cluster, executor_bin, timeline):
    agent = cluster.start_agent("restart")
    fw = cluster.framework("real-restart", checkpoint=True)
    web = WebTask(cluster, fw, agent, executor_bin, "marathon", failures=1000)
    web.wait_healthy()
    task_pid = web.task_pid()
    (executor_pid, _), = agent.executor_processes().items()
    (sid, _), = cluster.consul.task_services(web.task_id).items()

    assert agent.stop() == "terminated"
    down = time.time()
    assert pid_alive(executor_pid) and pid_alive(task_pid), "stopping the agent stopped its executor"
    # while the agent is away the task turns unhealthy: Consul hears it at
    # once, the agent cannot — the update waits in the executor
    web.unhealthy.write_text("1")
    timeline.wait("consul", "check-update", {"check_status": "critical"}, timeout=20)
    n = len(fw.updates)

    old_id = agent.agent_id
    assert agent.start() == old_id, "the agent did not recover its checkpointed id"
    # the executor re-subscribed carrying the update the agent never took
    unhealthy = web.wait_healthy(False, after=n)
    resubscribed = log_time(web.executor_log(),
                            r"subscribed to the agent .*\(([1-9]\d*) unacknowledged updates carried")
    assert resubscribed is not None, "the executor did not re-subscribe with its unacknowledged updates"
    assert down <= unhealthy.timestamp < resubscribed, "healthy=false was not created while the agent was away"
    assert unhealthy.source == "SOURCE_EXECUTOR"
    ex, task = web.agent_task()
    assert ex is not None and task is not None and task["state"] == "TASK_RUNNING", agent.state()
    assert task["statuses"][-1].get("healthy") is False, task["statuses"]
    assert pid_alive(executor_pid) and pid_alive(task_pid), "the executor or its task did not survive"
    assert cl.argv0_name(executor_pid) == "pacer-executor"
    assert int(web.pidfile.read_text()) == task_pid
    assert sid in cluster.consul.task_services(web.task_id), "Consul lost the entry over the restart"
    assert "unacknowledged updates carried" in web.executor_log()

    # and the link works both ways after the restart
    m = len(fw.updates)
    web.unhealthy.unlink()
    web.wait_healthy(True, after=m)
    fw.kill(web.task_id, agent.agent_id)
    web.wait_state("TASK_KILLED")
    assert web.report.read_text() == "gone"
    assert cluster.consul.task_services(web.task_id) == {}
    wait_for(lambda: not pid_alive(executor_pid) and not pid_alive(task_pid), 15, "executor and task to exit")


# ---------------------------------------------------------------------------
# bad input: an agent that does not (or no longer) know the executor


def test_agent_restarted_on_new_work_dir_executor_gives_up_cleanly(cluster, executor_bin, timeline):
    agent = cluster.start_agent("amnesia")
    fw = cluster.framework("real-amnesia", checkpoint=True)
    web = WebTask(cluster, fw, agent, executor_bin, "marathon")
    web.wait_healthy()
    task_pid = web.task_pid()
    (executor_pid, _), = agent.executor_processes().items()
    (sid, _), = cluster.consul.task_services(web.task_id).items()
    old_id, old_runtime = agent.agent_id, agent.runtime_dir
    sandbox = agent.sandbox(fw.framework_id, web.executor_id).resolve()

    agent.stop()
    (launcher_pid, _), = agent.adopted.items()
    # same address, no checkpointed state: a different agent as far as anyone can tell
    new_id = agent.start(work_dir=agent.workdir / "work2", runtime_dir=agent.workdir / "runtime2")
    assert new_id != old_id

    cl.reaper.wait(launcher_pid, 30)
    assert not pid_alive(executor_pid)
    # the container launcher exits 0 whatever its child did; the child's wait
    # status is in the runtime dir
    status = cl.container_status(old_runtime, sandbox.name)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0, f"executor wait status {status}"
    log = (sandbox / "stderr").read_text(errors="replace")
    assert re.search(r"giving up on the agent .*HTTP 400: Framework cannot be found", log), log[-3000:]
    assert not pid_alive(task_pid), "the task outlived its executor"
    assert cluster.consul.task_services(web.task_id) == {}, "the entry outlived its executor"
    timeline.assert_order(("consul", "deregister", lambda r: r.detail.get("service_id") == sid and
                           r.detail.get("status") == 200))
    # the master's side of it
    lost = web.wait_state("TASK_LOST")
    assert lost.source == "SOURCE_MASTER" and lost.reason == "REASON_AGENT_REMOVED", lost
    assert not lost.uuid


@pytest.mark.parametrize("case", ["unknown-framework", "unknown-executor"])
def test_executor_refused_by_the_agent_exits_nonzero(cluster, executor_bin, procs, timeline, case):
    agent = cluster.agent
    if case == "unknown-framework":
        framework_id, refusal = f"no-such-framework-{uuid.uuid4().hex[:8]}", "Framework cannot be found"
    else:
        # a framework the agent knows, running an executor of its own
        fw = cluster.framework("real-known")
        offer = fw.wait_offer(agent_id=agent.agent_id)
        ei = executor_info("pacer-known", argv=[executor_bin, "--", "sleep", "300"], cpus=0.05, mem=32,
                           env={"CONSUL_HTTP_ADDR": "off"})
        fw.launch(offer, task_info("known", agent.agent_id, executor=ei))
        fw.wait_state("known", "TASK_RUNNING")
        framework_id, refusal = fw.framework_id, "Executor cannot be found"
    sandbox = cluster.workdir / "rogue-sandbox"
    sandbox.mkdir()
    env = {"MESOS_FRAMEWORK_ID": framework_id, "MESOS_EXECUTOR_ID": "rogue", "MESOS_AGENT_ENDPOINT": agent.address,
           "MESOS_SLAVE_ID": agent.agent_id, "MESOS_DIRECTORY": sandbox, "MESOS_SANDBOX": sandbox,
           "MESOS_CHECKPOINT": "1", "MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
           "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs", "CONSUL_HTTP_ADDR": cluster.consul.address,
           "PATH": cl.DEFAULT_PATH}
    ex = procs.start([executor_bin, "--", "sleep", "300"], name="rogue-executor", env=env, cwd=sandbox,
                     inherit_env=False, strict=True)
    rc = ex.wait_exit(15)
    assert rc not in (0, None) and rc > 0, f"exit code {rc}"
    assert re.search(rf"giving up on the agent at {re.escape(agent.address)}: agent answered SUBSCRIBE with "
                     rf"HTTP 400: {refusal}", ex.stderr), ex.stderr
    assert not [r for r in timeline.records("consul") if r.kind in ("register", "deregister")], \
        "a refused executor touched Consul"
    # the command never ran: nothing in its group, nothing orphaned to us
    assert group_leftovers(ex.pid) == []
    assert not [i for i in proc_table().values() if i.ppid == os.getpid() and cl.argv0_name(i.pid) == "sleep"]
