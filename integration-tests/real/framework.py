"""A small Mesos framework for tests, speaking the v1 scheduler HTTP API
(PROTOCOLS.md §5) to a real master with protobuf bodies.

SUBSCRIBE opens the event stream, read on a thread and RecordIO-decoded
(fakes/recordio.py); every other call (ACCEPT, ACKNOWLEDGE, KILL, TEARDOWN,
...) goes on a second keep-alive connection with the Mesos-Stream-Id header.
Offers are kept until a test claims one (wait_offer); status updates are
kept in arrival order and acknowledged automatically unless the test holds
them (ack_filter).

Everything the framework receives or sends is recorded in the test's
Timeline, source "framework": kinds subscribed, offers, rescind, update,
failure, error, message, heartbeat, stream.closed, and call.<TYPE> for the
calls it made (detail: status). An update's detail is a dict: task, state,
source, reason, healthy (only when set), message, uuid (hex, "" when none),
agent, executor, timestamp (the executor's/agent's TaskStatus.timestamp).
"""

import dataclasses
import http.client
import socket
import threading
import time

from google.protobuf.message import DecodeError

from fakes import recordio
from harness import WaitTimeout, wait_condition
from mesos.v1 import mesos_pb2
from mesos.v1.scheduler import scheduler_pb2

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event

PROTOBUF = "application/x-protobuf"
SCHEDULER_PATH = "/api/v1/scheduler"
CALL_TIMEOUT = 10.0
SUBSCRIBE_TIMEOUT = 10.0
# Events are a few KiB; an offer from a big agent stays far below.
EVENT_MAX = 4 * 1024 * 1024
MESSAGE_DETAIL_MAX = 300


def state_name(state):
    return mesos_pb2.TaskState.Name(state)


def reason_name(status):
    return mesos_pb2.TaskStatus.Reason.Name(status.reason) if status.HasField("reason") else ""


@dataclasses.dataclass
class Update:
    """A status update as the framework received it."""

    t: float  # time.monotonic() of receipt
    status: mesos_pb2.TaskStatus

    @property
    def task_id(self):
        return self.status.task_id.value

    @property
    def state(self):
        return state_name(self.status.state)

    @property
    def healthy(self):
        """True/False when the update carries `healthy`, else None."""
        return self.status.healthy if self.status.HasField("healthy") else None

    @property
    def reason(self):
        return reason_name(self.status)

    @property
    def source(self):
        return mesos_pb2.TaskStatus.Source.Name(self.status.source)

    @property
    def message(self):
        return self.status.message

    @property
    def uuid(self):
        return self.status.uuid

    @property
    def timestamp(self):
        """TaskStatus.timestamp: when the sender (executor, agent, master)
        created the update, in seconds since the epoch."""
        return self.status.timestamp

    def __str__(self):
        h = "" if self.healthy is None else f" healthy={self.healthy}"
        return f"{self.task_id} {self.state}{h} source={self.source} reason={self.reason} {self.message!r}"


def update_detail(status):
    d = {"task": status.task_id.value, "state": state_name(status.state),
         "source": mesos_pb2.TaskStatus.Source.Name(status.source), "reason": reason_name(status),
         "message": status.message[:MESSAGE_DETAIL_MAX], "uuid": status.uuid.hex(),
         "agent": status.agent_id.value, "executor": status.executor_id.value, "timestamp": status.timestamp}
    if status.HasField("healthy"):
        d["healthy"] = status.healthy
    return d


class CallError(AssertionError):
    """The master refused a call: status and body say why."""

    def __init__(self, call_type, status, body):
        super().__init__(f"{call_type} answered HTTP {status}: {body[:500]!r}")
        self.status, self.body = status, body


class Framework:
    """One framework subscribed to a master (`host:port`).

    ack_filter: a predicate over Update; updates for which it returns False
    are not acknowledged automatically (acknowledge() them by hand). Default:
    acknowledge everything that has a uuid."""

    def __init__(self, master, timeline, name="pacer-real-test", user="root", checkpoint=False,
                 failover_timeout=0.0, capabilities=("TASK_KILLING_STATE",), ack_filter=None, hostname="127.0.0.1"):
        self.master = master
        self.host, port = master.rsplit(":", 1)
        self.port = int(port)
        self.timeline = timeline
        self.info = mesos_pb2.FrameworkInfo(user=user, name=name, checkpoint=checkpoint,
                                            failover_timeout=failover_timeout, hostname=hostname)
        for c in capabilities:
            self.info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.Type.Value(c))
        self.ack_filter = ack_filter
        self.framework_id = None
        self.stream_id = None
        self.heartbeat_interval = None
        self.offers = {}  # offer id -> Offer, not yet claimed or rescinded
        self.updates = []  # Update, in arrival order
        self.failures = []  # Event.Failure
        self.errors = []  # error texts
        self.closed = False  # the event stream ended
        self.framework_id_ready = False
        self._cond = threading.Condition()
        self._call_lock = threading.Lock()
        self._call_conn = None
        self._stream_conn = None
        self._thread = None
        self._stopping = False

    # ------------------------------------------------------------------
    # subscription

    def subscribe(self, timeout=SUBSCRIBE_TIMEOUT):
        """SUBSCRIBE (re-subscribing with the old id when there is one); returns
        the framework id once SUBSCRIBED arrived."""
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(self.info)
        if self.framework_id:
            call.framework_id.value = self.framework_id
            call.subscribe.framework_info.id.value = self.framework_id
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn.request("POST", SCHEDULER_PATH, call.SerializeToString(),
                     {"Content-Type": PROTOBUF, "Accept": PROTOBUF, "Connection": "keep-alive"})
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read(64 * 1024)
            conn.close()
            self.timeline.record("framework", "call.SUBSCRIBE", {"status": resp.status})
            raise CallError("SUBSCRIBE", resp.status, body)
        self.stream_id = resp.getheader("Mesos-Stream-Id")
        # the stream is read without a timeout: events may be 15 s apart (heartbeats)
        conn.sock.settimeout(None)
        self._stream_conn = conn
        with self._cond:
            self.closed = False
            self.framework_id_ready = False
        self._thread = threading.Thread(target=self._read_stream, args=(resp,), daemon=True,
                                        name=f"framework-{self.info.name}")
        self._thread.start()
        wait_condition(self._cond, lambda: self.framework_id_ready or self.closed, timeout,
                       "SUBSCRIBED from the master")
        if not self.framework_id_ready:
            raise AssertionError(f"the master closed the SUBSCRIBE stream: {self.errors}")
        return self.framework_id

    def _read_stream(self, resp):
        decoder = recordio.Decoder(EVENT_MAX)
        why = "end of stream"
        try:
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                for rec in decoder.feed(chunk):
                    try:
                        ev = Event.FromString(rec)
                    except DecodeError as e:
                        why = f"undecodable event: {e}"
                        raise
                    self._on_event(ev)
        except (OSError, http.client.HTTPException, recordio.RecordIOError, DecodeError) as e:
            why = why if isinstance(e, DecodeError) else f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()
            if not self._stopping:
                self.timeline.record("framework", "stream.closed", {"why": why})

    def _on_event(self, ev):
        tl = self.timeline
        kind = Event.Type.Name(ev.type)
        if ev.type == Event.SUBSCRIBED:
            with self._cond:
                self.framework_id = ev.subscribed.framework_id.value
                self.heartbeat_interval = ev.subscribed.heartbeat_interval_seconds
                self.framework_id_ready = True
                self._cond.notify_all()
            tl.record("framework", "subscribed", {"framework": self.framework_id})
        elif ev.type == Event.OFFERS:
            with self._cond:
                for o in ev.offers.offers:
                    self.offers[o.id.value] = o
                self._cond.notify_all()
            tl.record("framework", "offers", {"count": len(ev.offers.offers),
                                              "agents": ",".join(o.agent_id.value for o in ev.offers.offers)})
        elif ev.type == Event.RESCIND:
            with self._cond:
                self.offers.pop(ev.rescind.offer_id.value, None)
            tl.record("framework", "rescind", {"offer": ev.rescind.offer_id.value})
        elif ev.type == Event.UPDATE:
            st = ev.update.status
            upd = Update(time.monotonic(), st)
            # recorded before it is acknowledged: the ack may release the next update at once
            tl.record("framework", "update", update_detail(st))
            with self._cond:
                self.updates.append(upd)
                self._cond.notify_all()
            if st.uuid and (self.ack_filter is None or self.ack_filter(upd)):
                try:
                    self.acknowledge(st)
                except (OSError, http.client.HTTPException, CallError) as e:
                    tl.record("framework", "ack.failed", {"task": st.task_id.value, "error": str(e)})
        elif ev.type == Event.FAILURE:
            f = ev.failure
            with self._cond:
                self.failures.append(f)
                self._cond.notify_all()
            d = {"agent": f.agent_id.value, "executor": f.executor_id.value}
            if f.HasField("status"):
                d["status"] = f.status
            tl.record("framework", "failure", d)
        elif ev.type == Event.ERROR:
            with self._cond:
                self.errors.append(ev.error.message)
                self._cond.notify_all()
            tl.record("framework", "error", {"message": ev.error.message})
        elif ev.type == Event.MESSAGE:
            tl.record("framework", "message", {"executor": ev.message.executor_id.value,
                                               "bytes": len(ev.message.data)})
        elif ev.type == Event.HEARTBEAT:
            tl.record("framework", "heartbeat")
        else:
            tl.record("framework", "event", {"type": kind})

    # ------------------------------------------------------------------
    # calls

    def call(self, call, expect=202):
        """Sends one non-SUBSCRIBE call and returns the response body; raises
        CallError when the status is not `expect`."""
        if not call.HasField("framework_id"):
            call.framework_id.value = self.framework_id
        name = Call.Type.Name(call.type)
        body = call.SerializeToString()
        headers = {"Content-Type": PROTOBUF, "Accept": PROTOBUF, "Mesos-Stream-Id": self.stream_id}
        with self._call_lock:
            for attempt in (1, 2):
                if self._call_conn is None:
                    self._call_conn = http.client.HTTPConnection(self.host, self.port, timeout=CALL_TIMEOUT)
                try:
                    self._call_conn.request("POST", SCHEDULER_PATH, body, headers)
                    resp = self._call_conn.getresponse()
                    data = resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    # a kept-alive connection the master closed: one fresh attempt
                    self._call_conn.close()
                    self._call_conn = None
                    if attempt == 2:
                        raise
        self.timeline.record("framework", f"call.{name}", {"status": resp.status})
        if resp.status != expect:
            raise CallError(name, resp.status, data)
        return data

    def acknowledge(self, status):
        call = Call(type=Call.ACKNOWLEDGE)
        call.acknowledge.agent_id.CopyFrom(status.agent_id)
        call.acknowledge.task_id.CopyFrom(status.task_id)
        call.acknowledge.uuid = status.uuid
        self.call(call)

    def launch(self, offer, task_infos, refuse_seconds=0.0):
        """ACCEPTs `offer` with one LAUNCH of task_infos (TaskInfo or a list);
        unused resources are declined for refuse_seconds."""
        if isinstance(task_infos, mesos_pb2.TaskInfo):
            task_infos = [task_infos]
        call = Call(type=Call.ACCEPT)
        call.accept.offer_ids.add().CopyFrom(offer.id)
        op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
        op.launch.task_infos.extend(task_infos)
        call.accept.filters.refuse_seconds = refuse_seconds
        self.call(call)

    def decline(self, offers, refuse_seconds=0.0):
        call = Call(type=Call.DECLINE)
        for o in offers:
            call.decline.offer_ids.add().CopyFrom(o.id)
        call.decline.filters.refuse_seconds = refuse_seconds
        self.call(call)

    def kill(self, task_id, agent_id=None, grace_seconds=None):
        call = Call(type=Call.KILL)
        call.kill.task_id.value = task_id
        if agent_id:
            call.kill.agent_id.value = agent_id
        if grace_seconds is not None:
            call.kill.kill_policy.grace_period.nanoseconds = int(grace_seconds * 1e9)
        self.call(call)

    def shutdown_executor(self, executor_id, agent_id):
        call = Call(type=Call.SHUTDOWN)
        call.shutdown.executor_id.value = executor_id
        call.shutdown.agent_id.value = agent_id
        self.call(call)

    def reconcile(self, tasks=()):
        """RECONCILE: explicit for [(task_id, agent_id)], implicit when empty."""
        call = Call(type=Call.RECONCILE)
        for task_id, agent_id in tasks:
            t = call.reconcile.tasks.add()
            t.task_id.value = task_id
            if agent_id:
                t.agent_id.value = agent_id
        self.call(call)

    def teardown(self):
        """TEARDOWN: the master removes the framework and shuts its executors down."""
        if self.framework_id and not self.closed:
            self.call(Call(type=Call.TEARDOWN))

    # ------------------------------------------------------------------
    # waiting

    def wait_offer(self, agent_id=None, timeout=15.0, predicate=None):
        """Claims (removes from self.offers) and returns an offer, from agent_id
        if given, for which predicate(offer) holds if given."""

        def find():
            for oid, o in self.offers.items():
                if agent_id is not None and o.agent_id.value != agent_id:
                    continue
                if predicate is not None and not predicate(o):
                    continue
                return oid
            return None

        oid = wait_condition(self._cond, find, timeout, f"an offer from agent {agent_id}")
        with self._cond:
            return self.offers.pop(oid)

    def wait_update(self, predicate, timeout=20.0, after=0):
        """The first update (at index >= after) for which predicate(Update) holds."""

        def find():
            for u in self.updates[after:]:
                if predicate(u):
                    return u
            return None

        try:
            return wait_condition(self._cond, find, timeout, "a status update")
        except WaitTimeout:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for a status update; received:\n  " +
                              "\n  ".join(str(u) for u in self.updates)) from None

    def wait_state(self, task_id, state, timeout=20.0, after=0):
        return self.wait_update(lambda u: u.task_id == task_id and u.state == state, timeout, after)

    def wait_failure(self, executor_id, timeout=20.0):
        """The FAILURE event for executor_id (the executor terminated)."""
        return wait_condition(self._cond,
                              lambda: next((f for f in self.failures if f.executor_id.value == executor_id), None),
                              timeout, f"FAILURE of executor {executor_id}")

    def states(self, task_id):
        """The task's states in arrival order."""
        with self._cond:
            return [u.state for u in self.updates if u.task_id == task_id]

    def task_updates(self, task_id):
        with self._cond:
            return [u for u in self.updates if u.task_id == task_id]

    # ------------------------------------------------------------------

    def close(self):
        """Closes both connections (the master then sees the framework
        disconnect; with failover_timeout 0 it removes it)."""
        self._stopping = True
        with self._call_lock:
            if self._call_conn is not None:
                self._call_conn.close()
                self._call_conn = None
        if self._stream_conn is not None:
            try:
                self._stream_conn.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass
            self._stream_conn.close()
            self._stream_conn = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


# --------------------------------------------------------------------------
# TaskInfo building


def scalar(name, value):
    r = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SCALAR)
    r.scalar.value = value
    return r


def ports_resource(ports):
    r = mesos_pb2.Resource(name="ports", type=mesos_pb2.Value.RANGES)
    for p in ports:
        r.ranges.range.add(begin=p, end=p)
    return r


def offered_ports(offer):
    """The port numbers an offer carries, in order."""
    out = []
    for r in offer.resources:
        if r.name == "ports":
            for rng in r.ranges.range:
                out.extend(range(rng.begin, rng.end + 1))
    return out


def pick_free_port(offer, taken=()):
    """A port of the offer that nothing on 127.0.0.1 listens on right now."""
    for p in offered_ports(offer):
        if p in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        return p
    raise AssertionError("no free port in the offer")


def environment(env):
    e = mesos_pb2.Environment()
    for k, v in env.items():
        e.variables.add(name=k, value=str(v))
    return e


def labels(mapping):
    ls = mesos_pb2.Labels()
    for k, v in mapping.items():
        ls.labels.add(key=k, value=v)
    return ls


def http_health_check(port, path="/health", delay=0.0, interval=0.5, timeout=2.0, grace=10.0, failures=3):
    hc = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.HTTP, delay_seconds=delay, interval_seconds=interval,
                               timeout_seconds=timeout, grace_period_seconds=grace, consecutive_failures=failures)
    hc.http.port = port
    hc.http.path = path
    return hc


def task_info(task_id, agent_id, name=None, cpus=0.1, mem=32.0, ports=(), command=None, env=None,
              executor=None, health_check=None, task_labels=None, kill_grace=None, discovery=True):
    """A TaskInfo: resources cpus/mem/ports; `command` a shell line for
    TaskInfo.command (with `env` as its environment), `executor` an
    ExecutorInfo; ports also become DiscoveryInfo ports, as Marathon builds them."""
    t = mesos_pb2.TaskInfo(name=name or task_id)
    t.task_id.value = task_id
    t.agent_id.value = agent_id
    t.resources.extend([scalar("cpus", cpus), scalar("mem", mem)])
    if ports:
        t.resources.append(ports_resource(ports))
        if discovery:
            t.discovery.visibility = mesos_pb2.DiscoveryInfo.FRAMEWORK
            t.discovery.name = t.name
            for p in ports:
                t.discovery.ports.ports.add(number=p, protocol="tcp")
    if command is not None:
        t.command.value = command
        t.command.shell = True
        if env:
            t.command.environment.CopyFrom(environment(env))
    if executor is not None:
        t.executor.CopyFrom(executor)
    if health_check is not None:
        t.health_check.CopyFrom(health_check)
    if task_labels:
        t.labels.CopyFrom(labels(task_labels))
    if kill_grace is not None:
        t.kill_policy.grace_period.nanoseconds = int(kill_grace * 1e9)
    return t


def executor_info(executor_id, command_value=None, argv=None, env=None, cpus=None, mem=None, name=None,
                  shutdown_grace=None):
    """A custom ExecutorInfo: command_value a shell line (Marathon's shape), or
    argv run without a shell; env its CommandInfo.environment; resources only
    when cpus/mem are given (Marathon gives none)."""
    e = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.CUSTOM, name=name or executor_id)
    e.executor_id.value = executor_id
    if command_value is not None:
        e.command.value = command_value
        e.command.shell = True
    else:
        e.command.value = str(argv[0])
        e.command.shell = False
        e.command.arguments.extend(str(a) for a in argv)
    if env:
        e.command.environment.CopyFrom(environment(env))
    if cpus is not None:
        e.resources.append(scalar("cpus", cpus))
    if mem is not None:
        e.resources.append(scalar("mem", mem))
    if shutdown_grace is not None:
        e.shutdown_grace_period.nanoseconds = int(shutdown_grace * 1e9)
    return e
