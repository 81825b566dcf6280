"""Shared machinery of the pacer-scheduler integration tests (test_scheduler.py,
test_deployments.py).

* Scheduler starts the real binary against a FakeMaster (``--http=127.0.0.1:0``:
  the port is read back from its log), waits for /ping and the subscription,
  follows its /v2/events stream into the test's Timeline (source "sse", kind =
  the event type, detail = the event's JSON), and kills/restarts it.
* Api is a small REST client (one connection per request).
* AgentSim decides what the simulated executors report, per app, through the
  app label ``pacer.test.sim``: "ready" (the default: running, healthy,
  registered), "unready" (running, registration still in progress: never
  ready until release()), "crash" (unready, then TASK_FAILED).
* instance_timeline() rebuilds, from what the fake master recorded (launches,
  updates written, KILL calls), how many of an app's instances were ready and
  live after every change: the ground truth a deployment is judged by.

Nothing here sleeps to synchronise: waits are on the fake master's and the
Timeline's Conditions; Scheduler.wait_until() re-evaluates a predicate at every
new timeline record (an SSE event from the scheduler or a record of the fake
master).
"""

import dataclasses
import http.client
import json
import math
import msgpack
import re
import signal
import socket
import threading
import time

import pytest

from fakes.mesos_master import is_terminal, make_offer, parse_status_record, state_name
from harness import WaitTimeout, find_binary

# The log line that gives the REST port when --http asks for port 0.
PORT_LINE = r"REST API on http://\S+ \(port (\d+)\)"
START_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
WAIT_TIMEOUT = 15.0
# The label AgentSim reads from the TaskInfo (the app's labels travel there).
SIM_LABEL = "pacer.test.sim"
# What ASan/UBSan/LSan write when they find something (a sanitizer build).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# What a stray or crashed task says when it fails.
CRASH_MESSAGE = "Command exited with status 1"


# --------------------------------------------------------------------------
# REST


@dataclasses.dataclass
class Response:
    status: int
    headers: object  # http.client.HTTPMessage
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return f"<Response {self.status} {self.text[:600]!r}>"


class Api:
    """The scheduler's REST API on 127.0.0.1:port."""

    def __init__(self, port, headers=None):
        self.port = port
        self.headers = dict(headers or {})  # sent with every request (Authorization)

    def request(self, method, path, body=None, raw=None, headers=None, timeout=REQUEST_TIMEOUT):
        """body: a JSON value to send; raw: bytes sent as they are (as JSON)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {"Accept": "application/json", **self.headers}
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # shortcuts that assert the status

    def ok(self, method, path, body=None, status=200):
        r = self.request(method, path, body)
        want = status if isinstance(status, (tuple, list, set)) else (status,)
        assert r.status in want, f"{method} {path}: expected {status}, got {r!r}"
        return r.json if r.body and r.headers.get("Content-Type", "").startswith("application/json") else r

    def app(self, app_id):
        return self.ok("GET", f"/v2/apps{app_id}")["app"]

    def tasks(self, app_id):
        return self.ok("GET", f"/v2/apps{app_id}/tasks")["tasks"]

    def deployments(self):
        return self.ok("GET", "/v2/deployments")

    def deployment(self, dep_id):
        return next((d for d in self.deployments() if d["id"] == dep_id), None)


def task_ready(task):
    """A task of the REST API that a deployment counts as ready."""
    checks_ok = all(c.get("alive") for c in task.get("healthCheckResults", []))
    reg = task.get("registration", {}).get("state")
    return task["state"] == "TASK_RUNNING" and checks_ok and reg in ("registered", "off")


def app_spec(app_id, instances=1, cmd="sleep 1000", sim=None, labels=None, **extra):
    """A small app definition (no ports, tiny resources) for the fake agents."""
    labels = dict(labels or {})
    if sim is not None:
        labels[SIM_LABEL] = sim
    spec = {"id": app_id, "cmd": cmd, "instances": instances, "cpus": 0.01, "mem": 1, "portDefinitions": [],
            "backoffSeconds": 0.2, "labels": labels}
    spec.update(extra)
    return spec


def add_agents(master, n=3, cpus=8.0, mem=1e6, attributes=None, **kw):
    """n agents agent1..n on host1..n; attributes: a list (one dict per agent) or a
    callable(i) -> dict. Returns the agent ids."""
    ids = []
    for i in range(1, n + 1):
        attrs = attributes(i) if callable(attributes) else (attributes[i - 1] if attributes else {})
        ids.append(master.add_agent(make_offer(f"agent{i}", f"host{i}", cpus=cpus, mem=mem, attributes=attrs,
                                               **kw)))
    return ids


# --------------------------------------------------------------------------
# /v2/events


class EventStream:
    """A reader thread on GET /v2/events recording every event into the
    Timeline (source, kind=event type, detail=its JSON object)."""

    def __init__(self, port, timeline, source="sse", headers=None):
        self.port, self.timeline, self.source = port, timeline, source
        self.headers = dict(headers or {})
        self.events = []  # (id, type, payload)
        self._conn = None
        self._thread = None

    def start(self):
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=START_TIMEOUT)
        self._conn.request("GET", "/v2/events", headers={"Accept": "text/event-stream", **self.headers})
        resp = self._conn.getresponse()
        assert resp.status == 200, f"/v2/events answered {resp.status}: {resp.read()[:500]!r}"
        assert resp.headers.get("Content-Type", "").startswith("text/event-stream")
        self._conn.sock.settimeout(None)  # the stream is quiet while nothing happens
        self._thread = threading.Thread(target=self._run, args=(resp,), daemon=True, name="sse-reader")
        self._thread.start()
        return self

    def _run(self, resp):
        ev_id, ev_type, data = None, None, []
        try:
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if ev_type is not None:
                        try:
                            payload = json.loads("\n".join(data))
                        except ValueError:
                            payload = {"raw": "\n".join(data)}
                        self.events.append((ev_id, ev_type, payload))
                        self.timeline.record(self.source, ev_type, payload if isinstance(payload, dict)
                                             else {"value": payload})
                    ev_id, ev_type, data = None, None, []
                elif line.startswith("id:"):
                    ev_id = line[3:].strip()
                elif line.startswith("event:"):
                    ev_type = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.timeline.record(self.source, "stream.closed", f"port={self.port}")

    def close(self):
        if self._conn is not None and self._conn.sock is not None:
            try:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5.0)
        if self._conn is not None:
            self._conn.close()
        self._conn = self._thread = None


class MsgpackStream:
    """A reader thread on GET /v1/stream (one msgpack map per event, back to back)
    recording every event into the Timeline (source, kind=eventType, detail=the map)."""

    def __init__(self, port, timeline, query="", headers=None, source="msgpack"):
        self.port, self.timeline, self.query, self.source = port, timeline, query, source
        self.headers = dict(headers or {})
        self.events = []  # the maps, in order
        self._conn = self._thread = None

    def start(self):
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=START_TIMEOUT)
        self._conn.request("GET", "/v1/stream" + self.query, headers=self.headers)
        resp = self._conn.getresponse()
        assert resp.status == 200, f"/v1/stream answered {resp.status}: {resp.read()[:500]!r}"
        assert resp.headers.get("Content-Type") == "application/x-msgpack", resp.headers.get("Content-Type")
        self._conn.sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, args=(resp,), daemon=True, name="msgpack-reader")
        self._thread.start()
        return self

    def _run(self, resp):
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 20)
        try:
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                unpacker.feed(data)
                for ev in unpacker:
                    self.events.append(ev)
                    self.timeline.record(self.source, ev.get("eventType", "?") if isinstance(ev, dict) else "?",
                                         ev if isinstance(ev, dict) else {"value": ev})
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.timeline.record(self.source, "stream.closed", f"port={self.port}")

    close = EventStream.close


# --------------------------------------------------------------------------
# The scheduler process


class Scheduler:
    """pacer-scheduler against `master`, state in data_dir, started through
    the procs fixture (so teardown stops it and checks for leftovers)."""

    def __init__(self, procs, master, data_dir, timeline, args=(), auth_headers=None):
        self.procs, self.master, self.data_dir, self.timeline = procs, master, data_dir, timeline
        self.args = list(args)
        self.auth_headers = dict(auth_headers or {})  # for the harness's own requests
        self.binary = find_binary("pacer-scheduler")
        self.proc = None
        self.started = []  # every process this object started
        self.api = None
        self.events = None

    def argv(self, extra=(), master=None):
        return [self.binary, f"--master={master or self.master.endpoint}", "--http=127.0.0.1:0",
                f"--data-dir={self.data_dir}", "--log-level=debug", *self.args, *extra]

    def start(self, extra=(), subscribe_to=None, wait_subscribed=True, master=None):
        """Starts it and waits for its API (and, by default, for the master to
        have answered its subscription with SUBSCRIBED). Returns self."""
        sub_master = subscribe_to or self.master
        before = len([s for s in sub_master.subscriptions if s.answered is not None and s.refused is None])
        self.proc = self.procs.start(self.argv(extra, master), name="pacer-scheduler", strict=True)
        self.started.append(self.proc)
        m = self.proc.wait_output(PORT_LINE, timeout=START_TIMEOUT, stream="stderr")
        self.api = Api(int(m.group(1)), self.auth_headers)
        r = self.api.get("/ping")
        assert r.status == 200 and r.body == b"pong\n", r
        self.events = EventStream(self.api.port, self.timeline, headers=self.auth_headers).start()
        self.timeline.record("test", "scheduler.started", f"pid={self.proc.pid} port={self.api.port}")
        if wait_subscribed:
            sub_master.wait_subscribed(before + 1, timeout=START_TIMEOUT)
        return self

    def run_to_exit(self, extra=(), timeout=START_TIMEOUT):
        """Starts it expecting it to fail at start: returns (exit code, stderr)."""
        proc = self.procs.start(self.argv(extra), name="pacer-scheduler", strict=True)
        self.started.append(proc)
        rc = proc.wait_exit(timeout)
        return rc, proc.stderr

    def kill(self, sig=signal.SIGKILL):
        """Stops it with sig (SIGKILL: no chance to clean up) and waits; returns the exit code."""
        if self.events is not None:
            self.events.close()
            self.events = None
        self.proc.signal(sig)
        rc = self.proc.wait_exit(START_TIMEOUT)
        self.timeline.record("test", "scheduler.stopped", f"pid={self.proc.pid} sig={sig} rc={rc}")
        return rc

    def restart(self, extra=(), sig=signal.SIGKILL, **kw):
        self.kill(sig)
        return self.start(extra, **kw)

    def close(self):
        """Stops the running process with SIGTERM and checks that it exited
        cleanly, and that no run of it reported a sanitizer error. Returns the
        problems found (a list of strings)."""
        if self.events is not None:
            self.events.close()
            self.events = None
        problems = []
        for proc in self.started:
            if proc.alive():
                proc.signal(signal.SIGTERM)
                rc = proc.wait_exit(START_TIMEOUT)
                if rc != 0:
                    problems.append(f"{proc.name} (pid {proc.pid}) exited with {rc} after SIGTERM")
            for marker in SANITIZER_MARKERS:
                if marker in proc.stderr:
                    problems.append(f"{proc.name} (pid {proc.pid}) reported {marker!r}")
        return problems

    @property
    def log(self):
        return self.proc.stderr

    # waits

    def wait_until(self, predicate, what, timeout=WAIT_TIMEOUT):
        """Evaluates predicate() now and again after every new timeline record
        (scheduler events, fake master activity) until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            t0 = time.monotonic()
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
            try:
                self.timeline.wait(after=t0, timeout=left)
            except WaitTimeout:
                pass

    def wait_event(self, kind, match=None, after=None, timeout=WAIT_TIMEOUT):
        """The next SSE event of this kind (matching a dict subset or substring)."""
        return self.timeline.wait("sse", kind, match, timeout=timeout, after=after)

    def wait_tasks(self, app_id, n, version=None, ready=True, timeout=WAIT_TIMEOUT):
        """Waits until the app has exactly n tasks, all ready (or just running
        with ready=False), of `version` when given; returns them."""

        def check():
            r = self.api.get(f"/v2/apps{app_id}/tasks")
            if r.status != 200:
                return None
            tasks = r.json["tasks"]
            if len(tasks) != n:
                return None
            for t in tasks:
                if version is not None and t["version"] != version:
                    return None
                if ready and not task_ready(t):
                    return None
                if not ready and t["state"] != "TASK_RUNNING":
                    return None
            return tasks or [None]

        got = self.wait_until(check, f"{app_id}: {n} {'ready' if ready else 'running'} tasks"
                                     f"{' of version ' + version if version else ''}", timeout)
        return [t for t in got if t is not None]

    def wait_deployment_done(self, dep_id, timeout=WAIT_TIMEOUT):
        """Waits for deployment_success or deployment_failed of dep_id; returns the event kind."""
        rec = self.wait_until(
            lambda: self.timeline.last("sse", match=lambda r: r.kind in ("deployment_success", "deployment_failed")
                                       and isinstance(r.detail, dict) and r.detail.get("id") == dep_id),
            f"deployment {dep_id} to end", timeout)
        return rec.kind

    def metrics(self):
        r = self.api.get("/metrics")
        assert r.status == 200, r
        return parse_prometheus(r.text)


# --------------------------------------------------------------------------
# Simulated executors


def task_labels(info):
    return {lb.key: lb.value for lb in info.labels.labels} if info is not None else {}


def task_env(info, name):
    if info is None or not info.HasField("executor"):
        return None
    for v in info.executor.command.environment.variables:
        if v.name == name:
            return v.value
    return None


def task_prefix(app_id):
    """Task ids are "<app id without the leading '/', '/' → '_'>.<uuid>"."""
    return app_id.strip("/").replace("/", "_") + "."


def of_app(task_id, app_id):
    return task_id.startswith(task_prefix(app_id))


def launches_of(master, app_id, after=0):
    """The fake master's LaunchRecords of app_id's tasks among launches[after:]."""
    return [lr for lr in master.launches[after:] if of_app(lr.task_id, app_id)]


def killed_since(master, n_calls):
    """Task ids of the accepted KILL calls among master.calls[n_calls:]."""
    return {c.call.kill.task_id.value for c in master.calls[n_calls:] if c.type == "KILL" and c.status == 202}


class AgentSim:
    """Drives the fake master's auto_run by the app label SIM_LABEL."""

    def __init__(self, master, delay=0.0):
        self.master = master
        self._lock = threading.Lock()
        self.held = {}  # task id -> TaskInfo (reported running but not ready)
        self._stop = threading.Event()
        self._seen = 0
        master.auto_run(True, record=self._record, delay=delay)
        self._thread = threading.Thread(target=self._crasher, daemon=True, name="agent-sim")
        self._thread.start()

    def set_delay(self, delay):
        """Tasks launched from now on report TASK_RUNNING after `delay` seconds."""
        self.master.auto_run(True, record=self._record, delay=delay)

    def _record(self, info):
        mode = task_labels(info).get(SIM_LABEL, "ready")
        if mode == "ready":
            return {}
        with self._lock:
            self.held[info.task_id.value] = info
        return {"registered": False, "registration": "registering",
                "healthy": None if not info.HasField("health_check") else False}

    def _crasher(self):
        while not self._stop.is_set():
            try:
                got = self.master.wait_launch(1, timeout=0.25, after=self._seen)
            except WaitTimeout:
                continue
            self._seen += 1
            rec = got[0]
            if task_labels(rec.task).get(SIM_LABEL) == "crash":
                self.master.send_update(rec.task_id, "TASK_FAILED", message=CRASH_MESSAGE,
                                        reason="REASON_COMMAND_EXECUTOR_FAILED")

    def release(self, app_id):
        """Reports the held tasks of app_id healthy and registered; returns their ids."""
        with self._lock:
            mine = {tid: info for tid, info in self.held.items() if of_app(tid, app_id)}
            for tid in mine:
                del self.held[tid]
        known = self.master.known_tasks
        released = []
        for tid, info in sorted(mine.items()):
            task = known.get(tid)
            if task is None or task.state != "TASK_RUNNING" or task.kill_requested:
                continue
            has_check = info.HasField("health_check")
            self.master.send_update(tid, "TASK_RUNNING", healthy=True if has_check else None,
                                    data={"healthy": True if has_check else None, "registered": True,
                                          "registration": "registered", "service_id": tid,
                                          "registered_at_ms": int(time.time() * 1000)})
            released.append(tid)
        return released

    def held_of(self, app_id):
        with self._lock:
            return sorted(t for t in self.held if of_app(t, app_id))

    def close(self):
        self._stop.set()
        self._thread.join(5.0)


# --------------------------------------------------------------------------
# Instances as the fake master saw them


@dataclasses.dataclass
class Point:
    t: float
    ready: int  # running, reported healthy (when checked) and registered, no KILL asked
    live: int  # launched, not terminal, no KILL asked
    cause: str


def _record_ready(status, has_check, before):
    if not status.HasField("data") or not status.data:
        return before
    rec = parse_status_record(status.data)
    if has_check and rec.get("healthy") is not True:
        return False
    return rec.get("registration") in ("registered", "off") and (rec.get("registration") == "off" or
                                                                 rec.get("registered") is True)


def instance_timeline(master, app_id, since=0.0):
    """[Point] after every launch, update written and KILL of app_id's tasks
    (times are time.monotonic(), from the fake master's records); only
    changes after `since` are listed, starting from the state at `since`."""
    # An update counts from when the fake started writing it (its timeline record), not from
    # when the write returned (EventRecord.time): the scheduler may act on it in between.
    written = {}
    for rec in master.timeline.records("master", "event.UPDATE"):
        words = dict(w.split("=", 1) for w in rec.text.split() if "=" in w)
        key = (words.get("task"), words.get("uuid"))
        if key[1] not in (None, "-"):
            written.setdefault(key, rec.t)
    changes = []
    for lr in master.launches:
        if of_app(lr.task_id, app_id):
            changes.append((lr.time, 0, "launch", lr.task_id, lr.task))
    for ev in master.events_of("UPDATE"):
        tid = ev.status.task_id.value
        if of_app(tid, app_id):
            t = written.get((tid, ev.status.uuid.hex()), ev.time) if ev.status.HasField("uuid") else ev.time
            changes.append((min(t, ev.time), 1, "update", tid, ev.status))
    for c in master.calls_of("KILL"):
        tid = c.call.kill.task_id.value
        if of_app(tid, app_id):
            changes.append((c.time, 2, "kill", tid, None))
    changes.sort(key=lambda c: (c[0], c[1]))
    tasks = {}  # tid -> dict(state, ready, killed, check)

    def snapshot(t, cause):
        live = [x for x in tasks.values() if not x["killed"] and not is_terminal(x["state"])]
        ready = [x for x in live if x["state"] == "TASK_RUNNING" and x["ready"]]
        return Point(t, len(ready), len(live), cause)

    points = []
    for t, _, kind, tid, obj in changes:
        if kind == "launch":
            tasks[tid] = {"state": "TASK_STAGING", "ready": False, "killed": False,
                          "check": obj.HasField("health_check")}
        elif kind == "update":
            x = tasks.setdefault(tid, {"state": "TASK_STAGING", "ready": False, "killed": False, "check": False})
            x["state"] = state_name(obj.state)
            x["ready"] = _record_ready(obj, x["check"], x["ready"])
        elif tid in tasks:
            tasks[tid]["killed"] = True
        points.append(snapshot(t, f"{kind} {tid}"))
    before = [p for p in points if p.t <= since]
    first = Point(since, before[-1].ready, before[-1].live, "start") if before else Point(since, 0, 0, "start")
    return [first] + [p for p in points if p.t > since]


# --------------------------------------------------------------------------
# Prometheus text format


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+-?\d+)?$')


def parse_prometheus(text):
    """Parses the text exposition format 0.0.4 strictly enough to catch a
    malformed line; returns {sample name with labels: float}."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            assert len(parts) >= 3 and parts[1] in ("HELP", "TYPE"), f"line {n}: bad comment {line!r}"
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), f"line {n}: {line!r}"
            continue
        m = _SAMPLE.match(line)
        assert m, f"line {n}: not a sample: {line!r}"
        value = float(m.group(3))  # also accepts +Inf, NaN
        assert not math.isnan(value) or m.group(3) == "NaN"
        out[m.group(1) + (m.group(2) or "")] = value
    return out


# --------------------------------------------------------------------------
# Fixtures (imported by the test modules)


@pytest.fixture
def make_scheduler(procs, fake_master, workdir, timeline):
    """A factory of (not yet started) Schedulers against fake_master, state in
    workdir/data unless data_dir is given. At teardown each is stopped with
    SIGTERM and must exit 0, and no run may have reported a sanitizer error."""
    made = []

    def make(*args, data_dir=None, master=None, auth_headers=None):
        s = Scheduler(procs, master or fake_master, data_dir or workdir / "data", timeline, args, auth_headers)
        made.append(s)
        return s

    yield make
    problems = [p for s in made for p in s.close()]
    assert not problems, "pacer-scheduler did not end cleanly:\n" + "\n".join(problems)


@pytest.fixture
def sim(fake_master):
    """An AgentSim on fake_master (auto_run on from now)."""
    a = AgentSim(fake_master)
    yield a
    a.close()
