"""Blocking Consul registration, asserted from two timelines: what the agent
received (status updates) and what Consul received (calls), recorded in one
Timeline by the fake agent and by the Consul double or by a recording proxy
in front of the real Consul agent from ../shared/ext.

The orderings are the product:
  * no TASK_RUNNING healthy=true before register + verify succeeded;
  * the Consul check critical before healthy=false is reported;
  * deregistered (and confirmed) before the task gets SIGTERM — checked from
    inside the task, which looks itself up in Consul when SIGTERM arrives.
"""

import os
import signal
import time

import msgpack
import pytest

from consul_support import RealConsul, RecordingProxy, consul_binary
from fakes.consul import FakeConsul
from fakes.mesos_agent import http_check, make_task
from harness import free_port, wait_for

TASK_SCRIPT = r'''
import http.server, json, os, signal, sys, urllib.request
port = int(os.environ["PORT0"])
consul = os.environ["TEST_CONSUL"]
task = os.environ["MESOS_TASK_ID"]

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
    # Is this task still in Consul at the moment it is asked to stop?
    req = urllib.request.Request(f"http://{consul}/v1/agent/services")
    token = os.environ.get("TEST_CONSUL_TOKEN")
    if token:
        req.add_header("X-Consul-Token", token)
    with urllib.request.urlopen(req, timeout=5) as r:
        services = json.load(r)
    mine = [s for s in services.values() if (s.get("Meta") or {}).get("pacer_task_id") == task]
    with open(os.environ["TEST_REPORT"], "w") as f:
        f.write("registered" if mine else "gone")
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


class ConsulUnderTest:
    """The fake, or the real agent behind a recording proxy, with one face."""

    def __init__(self, kind, double, upstream=None):
        self.kind, self.double, self.upstream = kind, double, upstream

    @property
    def address(self):
        return self.double.address

    def services(self):
        return self.double.services()

    def checks(self):
        return self.double.checks()

    def task_services(self, task_id):
        return {k: v for k, v in self.services().items() if (v.get("Meta") or {}).get("pacer_task_id") == task_id}


@pytest.fixture
def fake_consul(timeline):
    fc = FakeConsul(timeline, leader="127.0.0.1:8300", reap_interval=0.5, deregister_min=2.0)
    fc.start()
    yield ConsulUnderTest("fake", fc)
    fc.stop()


@pytest.fixture
def real_consul(timeline, tmp_path_factory):
    binary = consul_binary(tmp_path_factory.getbasetemp())
    agent = RealConsul(binary, tmp_path_factory.mktemp("consul")).start()
    proxy = RecordingProxy(agent.port, timeline).start()
    yield ConsulUnderTest("real", proxy, agent)
    proxy.stop()
    agent.stop()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.real)])
def consul(request):
    return request.getfixturevalue(f"{request.param}_consul")


@pytest.fixture
def executor_bin(build_dir):
    return build_dir / "executor" / "pacer-executor"


def msg(update):
    return update.message or ""


def record_of(update):
    return msgpack.unpackb(update.data, raw=False)


class Scenario:
    """One web task with an HTTP health check on its own port."""

    def __init__(self, agent, consul, workdir, executor_bin, task_id="T1"):
        self.agent, self.consul, self.workdir, self.bin = agent, consul, workdir, executor_bin
        self.task_id = task_id
        self.port = free_port()
        self.script = workdir / "web.py"
        self.script.write_text(TASK_SCRIPT)
        self.unhealthy = workdir / "unhealthy"
        self.report = workdir / "term-report"

    def task(self, check=True, failures=3, labels=None, **kw):
        env = {"PORT0": str(self.port), "TEST_CONSUL": self.consul.address, "TEST_UNHEALTHY": str(self.unhealthy),
               "TEST_REPORT": str(self.report)}
        hc = http_check(self.port, path="/health", delay=0, interval=0.2, timeout=1, grace=10,
                        failures=failures) if check else None
        return make_task(self.task_id, cmd=f"exec /usr/bin/python3 {self.script}", env=env, health_check=hc,
                         ports=[self.port], labels=labels if labels is not None else {"consul": "web", "canary": "tag"},
                         **kw)

    def launch(self, task, flags=(), **kw):
        argv = [f"--consul={self.consul.address}", "--consul-ttl=3s", "--consul-timeout=500ms", *flags]
        ex = self.agent.launch_executor(self.bin, argv=argv, **kw)
        self.agent.wait_subscribed()
        self.agent.send_launch(task)
        return ex

    def wait_healthy(self, timeout=20):
        return self.agent.wait_update(lambda u: u.task_id == self.task_id and u.state == "TASK_RUNNING"
                                      and u.status.HasField("healthy") and u.healthy, timeout)


@pytest.fixture
def scenario(fake_agent, consul, workdir, executor_bin):
    return Scenario(fake_agent, consul, workdir, executor_bin)


def test_registered_before_healthy_deregistered_before_sigterm(scenario, timeline):
    s = scenario
    s.launch(s.task())
    healthy = s.wait_healthy()
    # register and verify were answered before the agent heard healthy=true
    timeline.assert_order(("consul", "register", {"status": 200}),
                          ("consul", "service", {"status": 200}),
                          ("agent", "call.UPDATE", "healthy=True"))
    rec = record_of(healthy)
    assert rec["r"] is True and rec["rs"] == "registered" and rec["h"] is True
    svc = s.consul.task_services("T1")
    assert list(svc) == [rec["s"]]
    entry = svc[rec["s"]]
    assert entry["Service"] == "web" and entry["Port"] == s.port
    assert sorted(entry["Tags"]) == ["canary", "pacer"]
    assert rec["t"] > 0

    s.agent.send_kill("T1")
    killed = s.agent.wait_state("T1", "TASK_KILLED", timeout=20)
    assert s.report.read_text() == "gone", "the task was still in Consul when it got SIGTERM"
    timeline.assert_order(("consul", "deregister", {"status": 200}),
                          ("agent", "call.UPDATE", "state=TASK_KILLING"))
    assert s.consul.task_services("T1") == {}
    assert record_of(killed)["rs"] == "deregistered"


def test_no_check_task_running_only_after_registration(scenario, timeline):
    s = scenario
    s.launch(s.task(check=False))
    running = s.agent.wait_state("T1", "TASK_RUNNING", timeout=20)
    assert running.healthy is True, "a task without checks is healthy once registered"
    timeline.assert_order(("consul", "register", {"status": 200}),
                          ("consul", "service", {"status": 200}),
                          ("agent", "call.UPDATE", "state=TASK_RUNNING"))
    assert s.consul.task_services("T1")


def test_failing_check_marks_critical_before_unhealthy(scenario, timeline):
    s = scenario
    s.launch(s.task(failures=1000))
    s.wait_healthy()
    n = len(s.agent.updates)
    s.unhealthy.write_text("1")
    unhealthy = s.agent.wait_update(lambda u: u.task_id == "T1" and u.status.HasField("healthy") and not u.healthy,
                                    timeout=20, after=n)
    critical = timeline.first("consul", "check-update", {"check_status": "critical"})
    assert critical is not None
    bad = timeline.first("agent", "call.UPDATE", "healthy=False")
    assert critical.t <= bad.t, "healthy=false reported before Consul stopped sending traffic"
    assert "HTTP 503" in unhealthy.message
    checks = [c for c in s.consul.checks().values() if c["ServiceID"].startswith("T1_")]
    assert checks and all(c["Status"] == "critical" for c in checks)
    # and back
    s.unhealthy.unlink()
    n = len(s.agent.updates)
    s.agent.wait_update(lambda u: u.task_id == "T1" and u.status.HasField("healthy") and u.healthy, timeout=20, after=n)
    checks = [c for c in s.consul.checks().values() if c["ServiceID"].startswith("T1_")]
    assert all(c["Status"] == "passing" for c in checks)


def test_failure_limit_deregisters_then_kills(scenario, timeline):
    s = scenario
    s.launch(s.task(failures=2))
    s.wait_healthy()
    s.unhealthy.write_text("1")
    killed = s.agent.wait_state("T1", "TASK_KILLED", timeout=20)
    assert killed.healthy is False
    assert "failed 2 consecutive times" in killed.message
    assert s.report.read_text() == "gone"
    timeline.assert_order(("consul", "deregister", {"status": 200}), ("agent", "call.UPDATE", "state=TASK_KILLING"))


def test_stale_registration_of_same_task_removed(scenario, timeline):
    s = scenario
    import json as _json
    import urllib.request
    body = _json.dumps({"ID": "stale-T1", "Name": "web", "Port": 1, "Meta": {"pacer_task_id": "T1"}}).encode()
    req = urllib.request.Request(f"http://{s.consul.address}/v1/agent/service/register", data=body, method="PUT")
    urllib.request.urlopen(req, timeout=5).read()
    assert "stale-T1" in s.consul.services()
    s.launch(s.task())
    s.wait_healthy()
    assert "stale-T1" not in s.consul.services()
    timeline.assert_order(("consul", "deregister", {"service_id": "stale-T1"}),
                          ("consul", "register", lambda r: r.detail["service_id"].startswith("T1_")))


def test_task_exit_deregisters_before_terminal_update(scenario, timeline):
    s = scenario
    task = s.task(check=False)
    task.command.value = "sleep 1"
    s.launch(task)
    s.agent.wait_state("T1", "TASK_FINISHED", timeout=20)
    timeline.assert_order(("consul", "register", {"status": 200}),
                          ("consul", "deregister", {"status": 200}),
                          ("agent", "call.UPDATE", "state=TASK_FINISHED"))
    assert s.consul.task_services("T1") == {}


# ---- failure modes (the fake can be scripted; the real agent cannot) ----


@pytest.fixture
def fscenario(fake_agent, fake_consul, workdir, executor_bin):
    return Scenario(fake_agent, fake_consul, workdir, executor_bin)


def test_consul_down_at_start_then_recovers(fscenario):
    s = fscenario
    s.consul.double.go_down()
    s.launch(s.task(check=False))
    waiting = s.agent.wait_update(lambda u: u.task_id == "T1" and "waiting for Consul" in msg(u), timeout=20)
    assert waiting.state == "TASK_STARTING"
    rec = record_of(waiting)
    assert rec["rs"] == "failed" and rec["r"] is False and "consul" in rec["e"]
    assert "TASK_RUNNING" not in s.agent.states("T1")
    s.consul.double.come_back()
    running = s.agent.wait_state("T1", "TASK_RUNNING", timeout=30)
    assert running.healthy is True
    assert s.consul.task_services("T1")


def test_consul_hanging_hits_deadline_and_retries(fscenario):
    s = fscenario
    s.consul.double.hang(["register"])
    s.launch(s.task())
    slow = s.agent.wait_update(lambda u: u.task_id == "T1" and "Consul registration failed" in msg(u), timeout=30)
    assert "timed out" in slow.message.lower() or "timeout" in slow.message.lower(), slow.message
    assert not (slow.status.HasField("healthy") and slow.healthy)
    s.consul.double.release()
    s.consul.double.clear_faults()
    s.wait_healthy(timeout=40)


def test_consul_500_is_retried(fscenario):
    s = fscenario
    s.consul.double.fail_with(500, "rpc error: boom", paths=["register"], count=4)
    s.launch(s.task(check=False))
    running = s.agent.wait_state("T1", "TASK_RUNNING", timeout=40)
    assert running.healthy is True
    registers = [c for c in s.consul.double.calls if c.kind == "register"]
    assert len(registers) >= 5


def test_acl_token_rejected_then_accepted(fake_agent, timeline, workdir, executor_bin):
    fc = FakeConsul(timeline, leader="127.0.0.1:8300", acl_token="s3cret").start()
    try:
        s = Scenario(fake_agent, ConsulUnderTest("fake", fc), workdir, executor_bin)
        s.launch(s.task(check=False))
        denied = s.agent.wait_update(lambda u: u.task_id == "T1" and "403" in msg(u), timeout=20)
        assert "token" in denied.message.lower()
        fake_agent.stop_executors()
        s2 = Scenario(fake_agent, ConsulUnderTest("fake", fc), workdir, executor_bin, task_id="T2")
        ex = fake_agent.launch_executor(executor_bin, executor_id="E2",
                                        argv=[f"--consul={fc.address}", "--consul-token=s3cret"])
        fake_agent.wait_subscribed(executor_id="E2")
        fake_agent.send_launch(s2.task(check=False), executor_id="E2")
        running = fake_agent.wait_state("T2", "TASK_RUNNING", timeout=20)
        assert running.healthy is True
        assert "s3cret" not in ex.stderr
    finally:
        fake_agent.stop_executors()
        fc.stop()


def test_garbage_consul_response_is_an_error_not_a_crash(fscenario):
    s = fscenario
    s.consul.double.garbage_response(["service"])
    ex = s.launch(s.task(check=False))
    bad = s.agent.wait_update(lambda u: u.task_id == "T1" and "waiting for Consul" in msg(u), timeout=20)
    assert "JSON" in bad.message or "json" in bad.message
    s.consul.double.clear_faults()
    s.agent.wait_state("T1", "TASK_RUNNING", timeout=40)
    assert ex.alive


def test_unverifiable_registration_is_removed_before_a_retry(fscenario, timeline):
    """Consul took the registration but the verification answered garbage: the entry is
    removed before the retry (nothing stays registered half-way, taking traffic for a task
    reported not ready), and no healthy=true goes out meanwhile."""
    s = fscenario
    s.consul.double.garbage_response(["service"])  # GET /v1/agent/service/<id>: the verify call
    s.launch(s.task(check=False))
    reg = timeline.wait("consul", "register", timeout=20)
    verify = timeline.wait("consul", "service", after=reg, timeout=20)
    undo = timeline.wait("consul", "deregister", after=verify, timeout=20)
    retry = timeline.wait("consul", "register", after=undo, timeout=30)
    assert not [r for r in timeline.records("consul", "register") if reg.t < r.t < undo.t], \
        "registered again before the unverified entry was removed"
    assert undo.detail["service_id"] == reg.detail["service_id"]
    assert not [u for u in s.agent.updates_for("T1") if u.status.HasField("healthy") and u.healthy]
    s.consul.double.clear_faults()
    s.wait_healthy(timeout=40)
    assert retry.t < timeline.last("consul", "register").t or retry is timeline.last("consul", "register")


def test_entry_lost_and_not_taken_back_is_reported_unhealthy(fscenario):
    """The Consul agent restarted without our entry and refuses it for a while: healthy means
    registered, so the task is reported unhealthy with the reason, then healthy once it is back."""
    s = fscenario
    s.launch(s.task(check=False), flags=["--consul-ttl=1s"])
    s.wait_healthy()
    s.consul.double.fail_with(500, "rpc error: no leader", paths=["register"])
    s.consul.double.go_down()
    s.consul.double.come_back(keep_state=False)
    lost = s.agent.wait_update(lambda u: u.task_id == "T1" and u.state == "TASK_RUNNING"
                               and u.status.HasField("healthy") and not u.healthy, timeout=20)
    assert "Consul registration failed" in msg(lost)
    assert s.consul.task_services("T1") == {}
    s.consul.double.clear_faults()
    back = s.agent.wait_update(lambda u: u.task_id == "T1" and u.time > lost.time
                               and u.status.HasField("healthy") and u.healthy, timeout=30)
    assert back.state == "TASK_RUNNING"
    assert s.consul.task_services("T1")


def test_executor_sigkill_leaves_entry_critical_by_ttl(fscenario):
    s = fscenario
    ex = s.launch(s.task(check=False), flags=["--consul-ttl=1s"])
    s.agent.wait_state("T1", "TASK_RUNNING", timeout=20)
    ex.signal(signal.SIGKILL)
    ex.wait_exit(5)
    # the TTL the dead executor no longer feeds runs out: no traffic to a dead instance
    wait_for(lambda: [c for c in s.consul.checks().values()
                      if c["ServiceID"].startswith("T1_") and c["Status"] == "critical"], 10,
             "the TTL check to turn critical")


def test_drain_delay_between_deregistration_and_sigterm(fscenario, timeline):
    s = fscenario
    s.launch(s.task(check=False, labels={"consul": "web", "pacer.drain": "1secs"}))
    s.agent.wait_state("T1", "TASK_RUNNING", timeout=20)
    s.agent.send_kill("T1")
    s.agent.wait_state("T1", "TASK_KILLED", timeout=20)
    dereg = timeline.first("consul", "deregister", {"status": 200})
    killing = timeline.first("agent", "call.UPDATE", "state=TASK_KILLING")
    assert killing.t - dereg.t >= 0.9


@pytest.mark.parametrize("labels,health,needle", [
    ({"consul": "x" * 100_000}, None, "label consul"),
    ({"consul": "web\nevil"}, None, "control character"),
    ({"pacer.check.extra": "type=http,port-index=5"}, None, "port"),
    ({"consul": "web"}, "newline", "path"),
])
def test_bad_input_rejected_before_anything_registers(fscenario, labels, health, needle):
    s = fscenario
    task = s.task(check=True, labels=labels)
    if health == "newline":
        task.health_check.http.path = "/he\nalth"
    s.launch(task)
    err = s.agent.wait_state("T1", "TASK_ERROR", timeout=20)
    assert needle in err.message, err.message
    assert not [c for c in s.consul.double.calls if c.kind == "register"]
    assert s.consul.task_services("T1") == {}


def test_shutdown_deregisters_before_sigterm_and_exits(scenario, timeline):
    s = scenario
    ex = s.launch(s.task())
    s.wait_healthy()
    assert s.consul.task_services("T1")
    s.agent.send_shutdown()
    killed = s.agent.wait_state("T1", "TASK_KILLED", timeout=20)
    assert s.report.read_text() == "gone", "the task was still in Consul when it got SIGTERM"
    shutdown = timeline.first("agent", "event.SHUTDOWN")
    dereg, _ = timeline.assert_order(("consul", "deregister", {"status": 200}),
                                     ("agent", "call.UPDATE", "state=TASK_KILLING"))
    assert dereg.t > shutdown.t
    assert s.consul.task_services("T1") == {}
    assert record_of(killed)["rs"] == "deregistered"
    assert ex.wait_exit(10) == 0


@pytest.mark.parametrize("flag,labels,low,high", [
    ("--drain-delay=1secs", {"consul": "web"}, 0.9, 5.0),
    # the label overrides the flag
    ("--drain-delay=30secs", {"consul": "web", "pacer.drain": "1secs"}, 0.9, 5.0),
])
def test_drain_delay_flag(fscenario, timeline, flag, labels, low, high):
    s = fscenario
    s.launch(s.task(check=False, labels=labels), flags=[flag])
    s.agent.wait_state("T1", "TASK_RUNNING", timeout=20)
    s.agent.send_kill("T1")
    s.agent.wait_state("T1", "TASK_KILLED", timeout=40)
    assert s.report.read_text() == "gone"
    dereg = timeline.first("consul", "deregister", {"status": 200})
    killing = timeline.first("agent", "call.UPDATE", "state=TASK_KILLING")
    assert low <= killing.t - dereg.t < high, f"drained {killing.t - dereg.t:.2f}s"


# ---- check roles at runtime (docs/checks.md, Roles) ----

# TASK_SCRIPT, but each path has its own switch: GET /ready fails while the file "<TEST_UNHEALTHY>.ready" exists
ROLES_SCRIPT = TASK_SCRIPT.replace('os.path.exists(os.environ["TEST_UNHEALTHY"])',
                                   'os.path.exists(os.environ["TEST_UNHEALTHY"] + self.path.replace("/", "."))')
assert ROLES_SCRIPT != TASK_SCRIPT


def roles_task(s, failures=2):
    """A task with a readiness check on /ready and a liveness check on /alive, no Mesos check."""
    s.script.write_text(ROLES_SCRIPT)
    timing = f"interval=200ms,timeout=200ms,delay=0s,grace=10s,failures={failures}"
    return s.task(check=False, labels={"consul": "web",
                                       "pacer.check.ready": f"type=http,path=/ready,{timing},role=readiness",
                                       "pacer.check.alive": f"type=http,path=/alive,{timing},role=liveness"})


def test_readiness_check_failing_takes_task_out_of_service_never_kills(fscenario, timeline):
    s = fscenario
    ex = s.launch(roles_task(s))
    s.wait_healthy()
    n = len(s.agent.updates)
    mark = timeline.record("test", "ready.fail")
    (s.workdir / "unhealthy.ready").write_text("1")
    unhealthy = s.agent.wait_update(lambda u: u.task_id == "T1" and u.status.HasField("healthy") and not u.healthy,
                                    timeout=20, after=n)
    assert unhealthy.state == "TASK_RUNNING"
    assert "ready" in unhealthy.message and "HTTP 503" in unhealthy.message, unhealthy.message
    critical = timeline.wait("consul", "check-update", {"check_status": "critical"}, after=mark, timeout=5)
    assert critical.t <= timeline.wait("agent", "call.UPDATE", "healthy=False", after=mark).t, \
        "healthy=false reported before Consul stopped sending traffic"
    checks = [c for c in s.consul.checks().values() if c["ServiceID"].startswith("T1_")]
    assert checks and all(c["Status"] == "critical" for c in checks)
    # three times its failure limit of 2, and still running
    ex.wait_output(r"check ready failed \(6 in a row\)", stream="stderr", timeout=20)
    assert s.agent.states("T1")[-1] == "TASK_RUNNING" and "TASK_KILLING" not in s.agent.states("T1")
    assert not s.report.exists(), "the task got SIGTERM"
    assert s.consul.task_services("T1"), "a task that is not ready stays registered (critical)"
    # and back in service
    n = len(s.agent.updates)
    (s.workdir / "unhealthy.ready").unlink()
    back = s.agent.wait_update(lambda u: u.task_id == "T1" and u.status.HasField("healthy") and u.healthy,
                               timeout=20, after=n)
    assert back.state == "TASK_RUNNING"
    checks = [c for c in s.consul.checks().values() if c["ServiceID"].startswith("T1_")]
    assert all(c["Status"] == "passing" for c in checks)


def test_liveness_check_failure_limit_kills_task(fscenario, timeline):
    s = fscenario
    ex = s.launch(roles_task(s, failures=3))
    s.wait_healthy()
    ex.wait_output(r"check alive: passing", stream="stderr")  # past its grace period: every failure counts
    n = len(s.agent.updates)
    (s.workdir / "unhealthy.alive").write_text("1")
    killed = s.agent.wait_state("T1", "TASK_KILLED", timeout=20)
    assert killed.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    assert killed.healthy is False
    assert "health check alive failed 3 consecutive times" in killed.message, killed.message
    assert s.report.read_text() == "gone"
    timeline.assert_order(("consul", "deregister", {"status": 200}), ("agent", "call.UPDATE", "state=TASK_KILLING"))
    # a liveness check does not gate readiness: below its limit the task stayed healthy
    between = [u for u in s.agent.updates[n:] if u.task_id == "T1"]
    assert [u.state for u in between][-2:] == ["TASK_KILLING", "TASK_KILLED"]
    assert not [u for u in between if u.state == "TASK_RUNNING" and u.healthy is False], \
        "a failing liveness check made the task unhealthy before its limit"
    assert ex.wait_exit(10) == 0
