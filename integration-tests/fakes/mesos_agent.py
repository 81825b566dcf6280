"""A fake Mesos agent serving the v1 executor HTTP API, for driving a real
executor process from a test (PROTOCOLS.md §1, §2, §3, §9b).

It speaks the wire protocol the real agent does: `POST /api/v1/executor`
(also `/slave(1)/api/v1/executor`) on 127.0.0.1 over HTTP/1.1 keep-alive;
Content-Type exactly `application/x-protobuf` or `application/json` (415
otherwise, 400 when missing); the agent's call validation (400 with a plain
text body); 403 "Executor is not subscribed" for any call before SUBSCRIBE;
SUBSCRIBE answered with 200, `Content-Type` = the negotiated media type (JSON
when Accept allows it or is absent, as the agent prefers JSON; 406 when Accept
allows neither), chunked transfer encoding and RecordIO-framed
`mesos.v1.executor.Event`s, SUBSCRIBED first, then the queued LAUNCHes;
UPDATE/MESSAGE/HEARTBEAT answered 202; every UPDATE (and every update carried
by a re-SUBSCRIBE) goes through a status-update manager that drops duplicate
uuids and then ACKNOWLEDGEs on the subscription stream (policy: auto, delayed
or withheld); a re-SUBSCRIBE ends the previous stream.

JSON: fully supported for calls and the event stream, through the protobuf
library's JSON mapping. It differs from Mesos's in details no executor should
depend on: 64-bit integers are emitted as strings, and fields with an explicit
[default=...] are not emitted when unset.

Everything runs on threads; all controls are thread-safe. Every call received,
call rejected, event written and connection change is recorded in the test's
Timeline (source "agent"); an event is recorded just before it is written.
Kinds: call.<TYPE> (accepted), reject, event.<TYPE>, event.raw, stream.open,
stream.closed, stream.write_failed, update.resent (new update carried by a
SUBSCRIBE), update.duplicate, ack.withheld, ack.dropped, launch.executor,
down, up, unavailable. Details are "key=value" words, e.g.
"task=T1 state=TASK_RUNNING healthy=True uuid=<hex>".

What it does not do: kill the executor after the shutdown grace period, send
agent-generated updates (TASK_LOST/TASK_FAILED on executor exit), authenticate,
or serve anything but the executor API.
"""

import collections
import dataclasses
import http.server
import json
import re
import socket
import struct
import threading
import time
import uuid as uuidlib
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from mesos.v1 import mesos_pb2
from mesos.v1.executor import executor_pb2

from fakes import recordio
# The process helpers are re-exported: executor tests want them next to the agent.
from harness import Timeline, WaitTimeout, descendants, pid_alive, pids_in_group, wait_condition

__all__ = [
    "FakeAgent", "NotSubscribed", "ReceivedUpdate", "Subscription", "CallRecord",
    "make_task", "http_check", "tcp_check", "command_check", "validate_call", "accepts", "encode_event",
    "parse_duration", "state_name", "Call", "Event", "TaskStatus", "mesos_pb2", "executor_pb2",
    "PROTOBUF", "JSON", "DEFAULT_FRAMEWORK_ID", "DEFAULT_EXECUTOR_ID", "DEFAULT_AGENT_ID", "DEFAULT_PATH",
    "WaitTimeout", "descendants", "pid_alive", "pids_in_group",
]

Call = executor_pb2.Call
Event = executor_pb2.Event
TaskStatus = mesos_pb2.TaskStatus

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
EXECUTOR_PATHS = ("/api/v1/executor", "/slave(1)/api/v1/executor")

DEFAULT_FRAMEWORK_ID = "F1"
DEFAULT_EXECUTOR_ID = "E1"
DEFAULT_AGENT_ID = "fake-agent-S0"
DEFAULT_CAPABILITIES = ("TASK_KILLING_STATE",)
# What a Mesos agent puts in an executor's PATH when none is configured.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Cap on a request body; a call carrying unacknowledged tasks and updates is a
# few KiB, so anything near this is a broken client.
BODY_MAX = 4 * 1024 * 1024
# The 503 body of an agent still recovering.
RECOVERY_MESSAGE = "Agent has not finished recovery"
# How long go_down()/stop() wait for the connection threads to let go.
CLOSE_TIMEOUT = 5.0
# Socket send timeout of the stream writer, so a client that stopped reading
# cannot wedge go_down().
SEND_TIMEOUT = 5.0

# Units of Mesos duration strings (stout Duration), in nanoseconds.
_DURATION_UNITS = {"ns": 1, "us": 10**3, "ms": 10**6, "secs": 10**9, "mins": 60 * 10**9,
                   "hrs": 3600 * 10**9, "days": 86400 * 10**9, "weeks": 7 * 86400 * 10**9}
_DURATION_RE = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|ms|secs|mins|hrs|days|weeks)$")


class NotSubscribed(RuntimeError):
    """A scenario control needs a live subscription stream and there is none."""


def parse_duration(text):
    """Nanoseconds of a Mesos duration string ("5secs", "1.5mins"); ValueError
    for anything the agent's parser rejects."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a Mesos duration: {text!r}")
    return int(float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def state_name(state):
    """"TASK_RUNNING" for a TaskState value."""
    return mesos_pb2.TaskState.Name(state)


# --------------------------------------------------------------------------
# Records of what the agent saw


@dataclasses.dataclass
class ReceivedUpdate:
    """A status update accepted by the fake's status-update manager."""

    status: TaskStatus
    time: float  # time.monotonic() when received
    via: str  # "update" (an UPDATE call) or "subscribe" (carried by a re-SUBSCRIBE)
    executor_id: str
    acked_before: bool = False  # for duplicates: its uuid had already been acknowledged

    @property
    def task_id(self):
        return self.status.task_id.value

    @property
    def state(self):
        """The state's name, e.g. "TASK_RUNNING"."""
        return state_name(self.status.state)

    @property
    def uuid(self):
        return self.status.uuid

    @property
    def healthy(self):
        """True/False, or None when the update does not say."""
        return self.status.healthy if self.status.HasField("healthy") else None

    @property
    def reason(self):
        """The reason's name, or None when unset."""
        if not self.status.HasField("reason"):
            return None
        return TaskStatus.Reason.Name(self.status.reason)

    @property
    def message(self):
        return self.status.message if self.status.HasField("message") else None

    @property
    def data(self):
        return self.status.data

    @property
    def source(self):
        return TaskStatus.Source.Name(self.status.source)

    def __str__(self):
        return _status_detail(self.status)


@dataclasses.dataclass
class Subscription:
    """One accepted SUBSCRIBE call and the stream it opened."""

    number: int  # 1-based, counted over the agent's lifetime
    executor_id: str
    call: Call
    time: float  # when the call arrived
    media_type: str  # encoding of the event stream
    answered: float = None  # when the first event (SUBSCRIBED or SHUTDOWN) was written
    ended: float = None  # when the stream closed
    end_reason: str = None

    @property
    def unacknowledged_tasks(self):
        """The TaskInfos the executor listed."""
        return list(self.call.subscribe.unacknowledged_tasks)

    @property
    def unacknowledged_updates(self):
        """The TaskStatuses of the updates the executor listed."""
        return [u.status for u in self.call.subscribe.unacknowledged_updates]


@dataclasses.dataclass
class CallRecord:
    """A request to the executor endpoint and how it was answered."""

    time: float
    type: str  # "SUBSCRIBE", ..., or "?" when the body did not parse
    status: int  # HTTP status code answered
    reason: str  # error text ("" when accepted)
    call: Call = None
    content_type: str = None
    accept: str = None


# --------------------------------------------------------------------------
# Task helpers


def _duration(seconds):
    return mesos_pb2.DurationInfo(nanoseconds=int(round(seconds * 1e9)))


def _labels(mapping):
    labels = mesos_pb2.Labels()
    for k, v in mapping.items():
        label = labels.labels.add(key=k)
        if v is not None:
            label.value = v
    return labels


def _set_check_timing(hc, delay, interval, timeout, grace, failures):
    if delay is not None:
        hc.delay_seconds = delay
    if interval is not None:
        hc.interval_seconds = interval
    if timeout is not None:
        hc.timeout_seconds = timeout
    if grace is not None:
        hc.grace_period_seconds = grace
    if failures is not None:
        hc.consecutive_failures = failures
    return hc


def http_check(port, path="/", scheme=None, statuses=None, delay=None, interval=None, timeout=None, grace=None,
               failures=None):
    """A HealthCheck of type HTTP. Timing arguments left None keep the Mesos
    defaults (delay 15, interval 10, timeout 20, grace 10 s, 3 failures)."""
    hc = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.HTTP)
    hc.http.port = port
    if path is not None:
        hc.http.path = path
    if scheme is not None:
        hc.http.scheme = scheme
    hc.http.statuses.extend(statuses or [])
    return _set_check_timing(hc, delay, interval, timeout, grace, failures)


def tcp_check(port, delay=None, interval=None, timeout=None, grace=None, failures=None):
    """A HealthCheck of type TCP (see http_check for the timing arguments)."""
    hc = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.TCP)
    hc.tcp.port = port
    return _set_check_timing(hc, delay, interval, timeout, grace, failures)


def command_check(cmd, shell=True, delay=None, interval=None, timeout=None, grace=None, failures=None):
    """A HealthCheck of type COMMAND running cmd (see http_check for timing)."""
    hc = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.COMMAND)
    hc.command.value = cmd
    hc.command.shell = shell
    return _set_check_timing(hc, delay, interval, timeout, grace, failures)


def make_task(task_id, cmd=None, shell=True, argv=None, env=None, health_check=None, kill_grace=None,
              labels=None, ports=None, name=None, agent_id=DEFAULT_AGENT_ID, cpus=0.1, mem=32.0,
              executor_info=None, data=None):
    """Builds a mesos.v1.TaskInfo.

    cmd: a shell command line (shell=True), or the executable (shell=False).
    argv: with shell=False, the full argument vector incl. argv[0]; the
    executable defaults to argv[0]. env: {name: value} for
    CommandInfo.environment. health_check: a HealthCheck (see http_check,
    tcp_check, command_check). kill_grace: seconds for kill_policy. labels:
    {key: value} (order kept). ports: port numbers, or dicts with number,
    name, protocol, labels; they become a "ports" resource and
    DiscoveryInfo ports, as Marathon builds them. executor_info: set
    TaskInfo.executor (Mesos requires exactly one of command/executor from a
    framework, but delivers the TaskInfo to the executor as given).
    """
    task = mesos_pb2.TaskInfo(name=name or task_id)
    task.task_id.value = task_id
    task.agent_id.value = agent_id
    for rname, amount in (("cpus", cpus), ("mem", mem)):
        r = task.resources.add(name=rname, type=mesos_pb2.Value.SCALAR)
        r.scalar.value = amount
    if cmd is not None or argv is not None:
        task.command.shell = shell
        if shell:
            task.command.value = cmd if cmd is not None else " ".join(argv)
        else:
            args = list(argv) if argv is not None else [cmd]
            task.command.value = cmd if cmd is not None else args[0]
            task.command.arguments.extend(args)
    if env:
        for k, v in env.items():
            var = task.command.environment.variables.add(name=k)
            var.value = v
    if health_check is not None:
        task.health_check.CopyFrom(health_check)
    if kill_grace is not None:
        task.kill_policy.grace_period.CopyFrom(_duration(kill_grace))
    if labels:
        task.labels.CopyFrom(_labels(labels))
    if ports:
        specs = [p if isinstance(p, dict) else {"number": p} for p in ports]
        r = task.resources.add(name="ports", type=mesos_pb2.Value.RANGES)
        for spec in specs:
            r.ranges.range.add(begin=spec["number"], end=spec["number"])
        task.discovery.visibility = mesos_pb2.DiscoveryInfo.FRAMEWORK
        task.discovery.name = task.name
        for spec in specs:
            port = task.discovery.ports.ports.add(number=spec["number"], protocol=spec.get("protocol", "tcp"))
            if spec.get("name"):
                port.name = spec["name"]
            if spec.get("labels"):
                port.labels.CopyFrom(_labels(spec["labels"]))
    if executor_info is not None:
        task.executor.CopyFrom(executor_info)
    if data is not None:
        task.data = data
    return task


# --------------------------------------------------------------------------
# Protocol details


def _status_detail(st):
    words = [f"task={st.task_id.value}", f"state={state_name(st.state)}"]
    if st.HasField("healthy"):
        words.append(f"healthy={st.healthy}")
    if st.HasField("reason"):
        words.append(f"reason={TaskStatus.Reason.Name(st.reason)}")
    words.append(f"uuid={st.uuid.hex()}")
    return " ".join(words)


def _call_detail(call):
    if call.type == Call.SUBSCRIBE:
        sub = call.subscribe
        return (f"executor={call.executor_id.value} unacked_tasks={len(sub.unacknowledged_tasks)} "
                f"unacked_updates={len(sub.unacknowledged_updates)}")
    if call.type == Call.UPDATE:
        return _status_detail(call.update.status)
    if call.type == Call.MESSAGE:
        return f"bytes={len(call.message.data)}"
    return f"executor={call.executor_id.value}"


def _event_detail(ev):
    t = ev.type
    if t == Event.SUBSCRIBED:
        return f"executor={ev.subscribed.executor_info.executor_id.value}"
    if t == Event.LAUNCH:
        return f"task={ev.launch.task.task_id.value}"
    if t == Event.KILL:
        words = f"task={ev.kill.task_id.value}"
        if ev.kill.HasField("kill_policy"):
            words += f" grace_ns={ev.kill.kill_policy.grace_period.nanoseconds}"
        return words
    if t == Event.ACKNOWLEDGED:
        return f"task={ev.acknowledged.task_id.value} uuid={ev.acknowledged.uuid.hex()}"
    if t == Event.MESSAGE:
        return f"bytes={len(ev.message.data)}"
    if t == Event.ERROR:
        return f"message={ev.error.message}"
    return ""


def validate_call(call):
    """The agent's executor-call validation (common/validation.cpp); returns the
    error text, or None when the call is valid."""
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    if not call.HasField("executor_id"):
        return "Expecting 'executor_id' to be present"
    if not call.HasField("framework_id"):
        return "Expecting 'framework_id' to be present"
    fid, eid = call.framework_id.value, call.executor_id.value
    if call.type == Call.SUBSCRIBE:
        if not call.HasField("subscribe"):
            return "Expecting 'subscribe' to be present"
    elif call.type == Call.UPDATE:
        if not call.HasField("update"):
            return "Expecting 'update' to be present"
        st = call.update.status
        if not st.HasField("uuid"):
            return "Expecting 'uuid' to be present"
        if len(st.uuid) != 16:
            return f"Not a valid UUID: expected 16 bytes, got {len(st.uuid)}"
        if st.HasField("executor_id") and st.executor_id.value != eid:
            return f"ExecutorID in Call: {eid} does not match ExecutorID in TaskStatus: {st.executor_id.value}"
        if st.source != TaskStatus.SOURCE_EXECUTOR:
            return (f"Received Call from executor {eid} of framework {fid} with invalid source, "
                    f"expecting 'SOURCE_EXECUTOR'")
        if st.state == mesos_pb2.TASK_STAGING:
            return f"Received TASK_STAGING from executor {eid} of framework {fid} which is not allowed"
    elif call.type == Call.MESSAGE:
        if not call.HasField("message"):
            return "Expecting 'message' to be present"
    return None


def accepts(accept, media_type):
    """Whether an Accept header value allows media_type, as libprocess decides:
    no header allows everything; the most specific matching range wins and
    allows when its q > 0."""
    if accept is None:
        return True
    main = media_type.split("/")[0]
    best = None  # (specificity, q)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        rng = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            k, _, v = param.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if rng == media_type:
            spec = 2
        elif rng == f"{main}/*":
            spec = 1
        elif rng == "*/*":
            spec = 0
        else:
            continue
        if best is None or spec > best[0]:
            best = (spec, q)
    return best is not None and best[1] > 0


def encode_event(ev, media_type):
    """One event serialized for a stream of media_type (not yet framed)."""
    if media_type == PROTOBUF:
        return ev.SerializeToString()
    doc = json_format.MessageToDict(ev, preserving_proto_field_name=True)
    return json.dumps(doc, separators=(",", ":")).encode()


# --------------------------------------------------------------------------
# The agent


class _Slot:
    """An executor the agent knows: its ids, state and subscription."""

    def __init__(self, framework_id, executor_id, executor_info, framework_info, checkpoint):
        self.framework_id, self.executor_id = framework_id, executor_id
        self.executor_info, self.framework_info = executor_info, framework_info
        self.checkpoint = checkpoint
        self.container_id = str(uuidlib.uuid4())
        self.state = "REGISTERING"  # then RUNNING; TERMINATING after send_shutdown()
        self.stream = None  # the live _Stream
        self.queued = []  # TaskInfos waiting for a subscription
        self.tasks = {}  # task_id -> TaskInfo of every task launched
        self.received = set()  # uuids seen by the status-update manager
        self.acked = set()  # uuids acknowledged
        self.process = None  # ManagedProcess from launch_executor()
        self.sandbox = None  # its sandbox directory


class _Stream:
    """The event stream of one subscription, written by its handler thread."""

    def __init__(self, slot, sub, sock):
        self.slot, self.sub, self.sock = slot, sub, sock
        self.queue = collections.deque()  # ("event", Event) | ("raw", bytes)
        # None while live; else how it ends: "end" (flush the queue, then the
        # final chunk), "close" or "reset" (at once, the queue dropped).
        self.closing = None
        self.reason = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-mesos-agent/1.11.0"
    # headers and body go out in separate writes: without this a kept-alive client waits
    # for its delayed ACK (~40 ms) on every answer; the real Mesos and Consul turn Nagle off too
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.agent._conn_opened(self.connection)

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # the peer went away; nothing to answer

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        self.server.agent._handle(self)

    def _not_post(self):
        path = self.path.split("?")[0]
        if path in EXECUTOR_PATHS:
            self.server.agent._reply(self, 405, "Expecting one of { 'POST' }, but received '%s'" % self.command,
                                     headers={"Allow": "POST"})
        else:
            self.server.agent._reply(self, 404, "")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_post


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, agent, port):
        self.agent = agent
        super().__init__(("127.0.0.1", port), _Handler)

    def shutdown_request(self, request):
        # An abortive close (RST) must not be preceded by the FIN of shutdown().
        try:
            if self.agent._take_reset(request):
                request.close()
            else:
                super().shutdown_request(request)
        finally:
            self.agent._conn_closed(request)

    def handle_error(self, request, client_address):
        pass  # a client vanishing mid-request is an ordinary event here


class FakeAgent:
    """A scripted Mesos agent for the executor HTTP API; see the module docstring.

    FakeAgent(procs=None, workdir=None, timeline=None, framework_id="F1",
    executor_id="E1", agent_id=DEFAULT_AGENT_ID,
    capabilities=("TASK_KILLING_STATE",), auto_ack=True, ack_delay=0.0,
    chunk_size=None)

    The executor (framework_id, executor_id) is known from the start (as if the
    agent had launched it); launch_executor() and register_executor() add
    more. Controls that address an executor take executor_id=None meaning the
    default one. chunk_size splits every framed event into HTTP chunks of at
    most that many bytes (decoders must not assume chunk == record).
    """

    def __init__(self, procs=None, workdir=None, timeline=None, framework_id=DEFAULT_FRAMEWORK_ID,
                 executor_id=DEFAULT_EXECUTOR_ID, agent_id=DEFAULT_AGENT_ID, capabilities=DEFAULT_CAPABILITIES,
                 auto_ack=True, ack_delay=0.0, chunk_size=None):
        self.procs, self.timeline = procs, timeline if timeline is not None else Timeline()
        self.workdir = Path(workdir) if workdir is not None else None
        self.agent_id, self.capabilities = agent_id, tuple(capabilities)
        self.default_executor_id = executor_id
        self.chunk_size = chunk_size
        self.port = None
        self._cond = threading.Condition()
        self._server = None
        self._serve_thread = None
        self._conns = set()
        self._reset_socks = set()
        self._slots = {}  # (framework_id, executor_id) -> _Slot
        self._unavailable = None  # None or (status, allow_subscribe)
        self._auto_ack, self._ack_delay, self._ack_filter = auto_ack, ack_delay, None
        self._withheld = []  # (slot, task_id, uuid) acknowledgements not sent
        self._timers = set()
        self._updates, self._duplicates, self._messages = [], [], []
        self._subscriptions, self._calls = [], []
        self.register_executor(framework_id, executor_id)

    # ------------------------------------------------------------------
    # lifecycle

    def start(self):
        """Binds 127.0.0.1 on a free port (the first time) and starts serving."""
        with self._cond:
            if self._server is not None:
                return self
            self._server = _Server(self, self.port or 0)
            self.port = self._server.server_address[1]
            self._serve_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                                  name=f"fake-agent-{self.port}", daemon=True)
            self._serve_thread.start()
        return self

    @property
    def endpoint(self):
        """"127.0.0.1:<port>", as in MESOS_AGENT_ENDPOINT."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.endpoint}/api/v1/executor"

    def go_down(self, how="close"):
        """Stops accepting connections and closes every open one, like a
        crashed agent. how: "close" (FIN) or "reset" (RST). The port stays
        ours to come_back() on."""
        with self._cond:
            server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._close_all(how, "agent went down")
        self.timeline.record("agent", "down", f"port={self.port} how={how}")

    def come_back(self):
        """Listens again on the same port (SO_REUSEADDR), keeping all state, like
        an agent that restarted and recovered its checkpoints."""
        self.start()
        self.timeline.record("agent", "up", f"port={self.port}")

    def stop(self):
        """Shuts everything down: server, connections, pending ack timers.
        Idempotent."""
        with self._cond:
            timers, self._timers = list(self._timers), set()
        for t in timers:
            t.cancel()
        self.go_down()

    def _close_all(self, how, reason):
        with self._cond:
            streams = [s.stream for s in self._slots.values() if s.stream is not None]
            for st in streams:
                self._end_stream_locked(st, how, reason)
            conns = list(self._conns)
            stream_socks = {st.sock for st in streams}
        for sock in conns:
            if sock in stream_socks:
                continue
            if how == "reset":
                self._mark_reset(sock)
            try:
                sock.shutdown(socket.SHUT_RD if how == "reset" else socket.SHUT_RDWR)
            except OSError:
                pass
        wait_condition(self._cond, lambda: not self._conns, CLOSE_TIMEOUT, "agent connections to close")

    def _conn_opened(self, sock):
        with self._cond:
            self._conns.add(sock)

    def _conn_closed(self, sock):
        with self._cond:
            self._conns.discard(sock)
            self._cond.notify_all()

    def _mark_reset(self, sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._cond:
            self._reset_socks.add(sock)

    def _take_reset(self, sock):
        with self._cond:
            if sock in self._reset_socks:
                self._reset_socks.discard(sock)
                return True
        return False

    # ------------------------------------------------------------------
    # executors

    def register_executor(self, framework_id=DEFAULT_FRAMEWORK_ID, executor_id=DEFAULT_EXECUTOR_ID,
                          checkpoint=True, shutdown_grace="5secs", command=None, capabilities=None,
                          executor_info=None, framework_info=None):
        """Makes the agent know an executor (as if it had launched it) and returns
        its ExecutorInfo. Re-registering replaces the infos but keeps state."""
        if executor_info is None:
            executor_info = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.CUSTOM, name=f"executor {executor_id}")
            executor_info.executor_id.value = executor_id
            executor_info.framework_id.value = framework_id
            if command:
                executor_info.command.value = str(command[0])
                executor_info.command.shell = False
                executor_info.command.arguments.extend(str(a) for a in command)
            executor_info.shutdown_grace_period.nanoseconds = parse_duration(shutdown_grace)
        if framework_info is None:
            framework_info = mesos_pb2.FrameworkInfo(user="root", name="pacer-test", checkpoint=checkpoint)
            framework_info.id.value = framework_id
            caps = self.capabilities if capabilities is None else capabilities
            for c in caps:
                framework_info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.Type.Value(c))
        with self._cond:
            slot = self._slots.get((framework_id, executor_id))
            if slot is None:
                self._slots[(framework_id, executor_id)] = _Slot(framework_id, executor_id, executor_info,
                                                                 framework_info, checkpoint)
            else:
                slot.executor_info, slot.framework_info, slot.checkpoint = executor_info, framework_info, checkpoint
        return executor_info

    def executor_env(self, framework_id=DEFAULT_FRAMEWORK_ID, executor_id=DEFAULT_EXECUTOR_ID, sandbox=None,
                     checkpoint=True, recovery_timeout="15mins", backoff_max="2secs", shutdown_grace="5secs"):
        """The environment a Mesos agent gives this executor (PROTOCOLS.md §3)."""
        env = {
            "MESOS_FRAMEWORK_ID": framework_id,
            "MESOS_EXECUTOR_ID": executor_id,
            "MESOS_DIRECTORY": str(sandbox),
            "MESOS_SANDBOX": str(sandbox),
            "MESOS_AGENT_ENDPOINT": self.endpoint,
            "MESOS_SLAVE_ID": self.agent_id,
            "MESOS_SLAVE_PID": f"slave(1)@{self.endpoint}",
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": shutdown_grace,
            "LIBPROCESS_PORT": "0",
            "PATH": DEFAULT_PATH,
        }
        if checkpoint:
            env["MESOS_RECOVERY_TIMEOUT"] = recovery_timeout
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = backoff_max
        return env

    def launch_executor(self, binary, framework_id=DEFAULT_FRAMEWORK_ID, executor_id=DEFAULT_EXECUTOR_ID,
                        argv=None, env=None, checkpoint=True, recovery_timeout="15mins", backoff_max="2secs",
                        shutdown_grace="5secs", sandbox=None, capabilities=None, executor_info=None,
                        framework_info=None):
        """Starts `binary argv...` as this agent's executor and returns its
        harness.ManagedProcess (stopped at teardown by the process registry).

        The environment is exactly the agent's (executor_env(); the test's own
        environment is not inherited, except the sanitizer knobs), with `env`
        layered on top: a value of None removes that variable. cwd and
        MESOS_SANDBOX are `sandbox`, by default a fresh directory under the
        workdir. The process is strict (harness.ProcessRegistry.start):
        anything it leaves behind fails the test.

        The executor is registered (register_executor) so that its SUBSCRIBE is
        accepted; SUBSCRIBED carries an ExecutorInfo whose command is this argv
        and a FrameworkInfo with `capabilities` (default: the agent's).
        Launching an executor id again starts a new run: it must SUBSCRIBE
        before anything else, while the status-update manager keeps what it
        received and acknowledged.
        """
        if self.procs is None or self.workdir is None:
            raise RuntimeError("launch_executor needs FakeAgent(procs=..., workdir=...)")
        if self._server is None:
            raise RuntimeError("launch_executor: the agent is not serving (start() it first)")
        if sandbox is None:
            base = self.workdir / "sandboxes" / f"{framework_id}.{executor_id}"
            sandbox, n = base, 1
            while sandbox.exists():
                n += 1
                sandbox = base.with_name(f"{base.name}.{n}")
        sandbox = Path(sandbox).resolve()
        sandbox.mkdir(parents=True, exist_ok=True)
        command = [str(binary)] + [str(a) for a in (argv or [])]
        self.register_executor(framework_id, executor_id, checkpoint=checkpoint, shutdown_grace=shutdown_grace,
                               command=command, capabilities=capabilities, executor_info=executor_info,
                               framework_info=framework_info)
        full_env = self.executor_env(framework_id, executor_id, sandbox, checkpoint, recovery_timeout, backoff_max,
                                     shutdown_grace)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        proc = self.procs.start(command, name=f"executor-{executor_id}", env=full_env, cwd=sandbox,
                                inherit_env=False, strict=True)
        with self._cond:
            slot = self._slots[(framework_id, executor_id)]
            slot.process, slot.sandbox = proc, sandbox
            slot.container_id = str(uuidlib.uuid4())
            if slot.stream is None:
                slot.state = "REGISTERING"
        self.timeline.record("agent", "launch.executor", f"executor={executor_id} pid={proc.pid}")
        return proc

    def stop_executors(self):
        """Stops the executor processes this agent launched (SIGTERM, then
        SIGKILL), while the agent still answers them."""
        with self._cond:
            procs = [s.process for s in self._slots.values() if s.process is not None]
        for p in procs:
            p.stop()

    def sandbox(self, executor_id=None, framework_id=None):
        """The sandbox directory (Path) of a launched executor, or None."""
        return self._slot(executor_id, framework_id).sandbox

    def executor_process(self, executor_id=None, framework_id=None):
        """The ManagedProcess of a launched executor, or None."""
        return self._slot(executor_id, framework_id).process

    def _slot(self, executor_id=None, framework_id=None):
        eid = executor_id or self.default_executor_id
        with self._cond:
            matches = [s for (f, e), s in self._slots.items()
                       if e == eid and (framework_id is None or f == framework_id)]
        if len(matches) != 1:
            raise KeyError(f"no single executor {eid!r} (framework {framework_id!r}) known to the agent")
        return matches[0]

    def executor_state(self, executor_id=None):
        """"REGISTERING", "RUNNING" or "TERMINATING"."""
        return self._slot(executor_id).state

    # ------------------------------------------------------------------
    # policies

    def set_ack_policy(self, auto=True, delay=0.0, filter=None):
        """How the status-update manager acknowledges: auto=False withholds
        every ACKNOWLEDGED until ack() releases it; delay postpones each one;
        filter(ReceivedUpdate) -> bool withholds the updates it returns False
        for."""
        with self._cond:
            self._auto_ack, self._ack_delay, self._ack_filter = auto, delay, filter

    def ack(self, uuid=None, task_id=None):
        """Sends the withheld acknowledgements matching uuid/task_id (all when
        both are None) on the current streams; returns how many were sent."""
        with self._cond:
            keep, send = [], []
            for item in self._withheld:
                slot, tid, u = item
                if (uuid is None or u == uuid) and (task_id is None or tid == task_id):
                    send.append(item)
                else:
                    keep.append(item)
            self._withheld = keep
            for slot, tid, u in send:
                self._send_ack_locked(slot, tid, u)
        return len(send)

    def withheld_acks(self):
        """[(task_id, uuid)] of acknowledgements not sent yet."""
        with self._cond:
            return [(t, u) for _, t, u in self._withheld]

    def set_unavailable(self, status=503, allow_subscribe=False):
        """Answers like an agent in recovery: every call gets `status` with
        "Agent has not finished recovery"; with allow_subscribe=True (the later
        phase of recovery) SUBSCRIBE is served, HEARTBEAT gets 202 and only
        UPDATE/MESSAGE get `status`. status=None restores normal service."""
        with self._cond:
            self._unavailable = None if status is None else (status, allow_subscribe)
        self.timeline.record("agent", "unavailable", f"status={status} allow_subscribe={allow_subscribe}")

    # ------------------------------------------------------------------
    # scenario controls

    def send_launch(self, task_info, executor_id=None):
        """Delivers a LAUNCH for task_info. Without a live subscription the task is
        queued and delivered right after the next SUBSCRIBED, as the agent does.
        Returns True when sent now, False when queued."""
        slot = self._slot(executor_id)
        with self._cond:
            slot.tasks[task_info.task_id.value] = task_info
            if slot.stream is None or slot.stream.closing:
                slot.queued.append(task_info)
                return False
            ev = Event(type=Event.LAUNCH)
            ev.launch.task.CopyFrom(task_info)
            self._enqueue_locked(slot.stream, "event", ev)
            return True

    def send_kill(self, task_id, grace_seconds=None, executor_id=None):
        """KILL for task_id; grace_seconds sets Kill.kill_policy (overriding the
        TaskInfo's)."""
        ev = Event(type=Event.KILL)
        ev.kill.task_id.value = task_id
        if grace_seconds is not None:
            ev.kill.kill_policy.grace_period.CopyFrom(_duration(grace_seconds))
        self.send_event(ev, executor_id)

    def send_shutdown(self, executor_id=None):
        """SHUTDOWN. The executor turns TERMINATING: a later SUBSCRIBE is answered
        with SHUTDOWN only. Without a live stream only the state changes."""
        slot = self._slot(executor_id)
        with self._cond:
            slot.state = "TERMINATING"
            if slot.stream is None or slot.stream.closing:
                return
            self._enqueue_locked(slot.stream, "event", Event(type=Event.SHUTDOWN))

    def send_message(self, data, executor_id=None):
        """MESSAGE with opaque bytes (a framework message)."""
        ev = Event(type=Event.MESSAGE)
        ev.message.data = bytes(data)
        self.send_event(ev, executor_id)

    def send_error(self, text, executor_id=None):
        """ERROR with a message."""
        ev = Event(type=Event.ERROR)
        ev.error.message = text
        self.send_event(ev, executor_id)

    def send_heartbeat(self, executor_id=None):
        """HEARTBEAT (the real agent sends one every 30 minutes)."""
        self.send_event(Event(type=Event.HEARTBEAT), executor_id)

    def send_event(self, event, executor_id=None):
        """Any Event on the live stream; raises NotSubscribed without one."""
        slot = self._slot(executor_id)
        with self._cond:
            stream = self._live_stream_locked(slot)
            self._enqueue_locked(stream, "event", event)

    def send_raw(self, data, executor_id=None):
        """Raw bytes on the stream, inside the chunked encoding but not RecordIO
        framed (for malformed-stream tests)."""
        slot = self._slot(executor_id)
        with self._cond:
            stream = self._live_stream_locked(slot)
            self._enqueue_locked(stream, "raw", bytes(data))

    def drop_stream(self, how="close", executor_id=None):
        """Closes the subscription connection. how: "close" (FIN, no final
        chunk: the connection broke), "end" (final chunk, then FIN: the agent
        ended the stream) or "reset" (RST). Waits until it is closed."""
        slot = self._slot(executor_id)
        with self._cond:
            stream = self._live_stream_locked(slot)
            self._end_stream_locked(stream, how, f"drop_stream({how})")
        wait_condition(self._cond, lambda: stream.sock not in self._conns, CLOSE_TIMEOUT,
                       "the subscription connection to close")

    # ------------------------------------------------------------------
    # observations

    @property
    def updates(self):
        """Every distinct update received (ReceivedUpdate), oldest first."""
        with self._cond:
            return list(self._updates)

    @property
    def duplicates(self):
        """Updates received again with a uuid already seen (ReceivedUpdate)."""
        with self._cond:
            return list(self._duplicates)

    @property
    def messages(self):
        """Data of MESSAGE calls, oldest first."""
        with self._cond:
            return list(self._messages)

    @property
    def subscriptions(self):
        """Every accepted SUBSCRIBE (Subscription), oldest first."""
        with self._cond:
            return list(self._subscriptions)

    @property
    def calls(self):
        """Every request to the executor endpoint (CallRecord), oldest first."""
        with self._cond:
            return list(self._calls)

    def updates_for(self, task_id):
        """The updates of one task, oldest first."""
        return [u for u in self.updates if u.task_id == task_id]

    def states(self, task_id):
        """The state names a task went through, e.g. ["TASK_STARTING", "TASK_RUNNING"]."""
        return [u.state for u in self.updates_for(task_id)]

    def acknowledged(self, uuid, executor_id=None):
        """Whether the update with this uuid has been acknowledged."""
        slot = self._slot(executor_id)
        with self._cond:
            return uuid in slot.acked

    def connected(self, executor_id=None):
        """Whether the executor has a live subscription stream."""
        slot = self._slot(executor_id)
        with self._cond:
            return slot.stream is not None and not slot.stream.closing

    def wait_update(self, predicate=None, timeout=10.0, after=0):
        """Waits for an update (ReceivedUpdate) matching predicate (None = any)
        among updates[after:] and returns the first one. No polling."""

        def find():
            for u in self._updates[after:]:
                if predicate is None or predicate(u):
                    return u
            return None

        return wait_condition(self._cond, find, timeout, f"a status update matching {predicate}")

    def wait_state(self, task_id, state, timeout=10.0, after=0):
        """Waits for an update of task_id in state (a name like "TASK_RUNNING")."""
        return self.wait_update(lambda u: u.task_id == task_id and u.state == state, timeout, after)

    def wait_subscribed(self, timeout=10.0, count=1, executor_id=None):
        """Waits until `count` subscriptions of the executor have been answered
        (SUBSCRIBED, or SHUTDOWN for a terminating executor, written to the
        stream) and returns the count-th Subscription."""
        eid = executor_id or self.default_executor_id

        def find():
            done = [s for s in self._subscriptions if s.executor_id == eid and s.answered is not None]
            return done[count - 1] if len(done) >= count else None

        return wait_condition(self._cond, find, timeout, f"subscription #{count} of executor {eid}")

    def wait_disconnected(self, timeout=10.0, executor_id=None):
        """Waits until the executor has no live subscription stream (it closed
        it, or it was dropped)."""
        slot = self._slot(executor_id)
        wait_condition(self._cond, lambda: slot.stream is None, timeout,
                       f"executor {slot.executor_id} to be disconnected")

    def wait_call(self, call_type, timeout=10.0, after=0, status=None):
        """Waits for a request of call_type ("HEARTBEAT", ...) among calls[after:],
        optionally answered with `status`; returns its CallRecord."""

        def find():
            for c in self._calls[after:]:
                if c.type == call_type and (status is None or c.status == status):
                    return c
            return None

        return wait_condition(self._cond, find, timeout, f"a {call_type} call")

    # ------------------------------------------------------------------
    # request handling (handler threads)

    def _reply(self, handler, status, text, content_type="text/plain; charset=utf-8", headers=None):
        body = text.encode()
        handler.send_response(status)
        if body or status not in (202,):
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        if body and handler.command != "HEAD":
            handler.wfile.write(body)

    def _read_body(self, handler):
        """The request body, or raises ValueError (too large / malformed chunks)."""
        te = (handler.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = bytearray()
            while True:
                line = handler.rfile.readline(64)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                if len(body) + size > BODY_MAX:
                    raise ValueError("body too large")
                body += handler.rfile.read(size)
                handler.rfile.readline(8)
        length = int(handler.headers.get("Content-Length") or 0)
        if length > BODY_MAX:
            raise ValueError("body too large")
        return handler.rfile.read(length) if length else b""

    def _reject(self, handler, status, text, call=None, call_type="?", ctype=None):
        handler.close_connection = handler.close_connection or status == 413
        with self._cond:
            self._calls.append(CallRecord(time.monotonic(), call_type, status, text, call, ctype,
                                          handler.headers.get("Accept")))
            self._cond.notify_all()
        self.timeline.record("agent", "reject", f"status={status} call={call_type} reason={text}")
        self._reply(handler, status, text)

    def _handle(self, handler):
        path = handler.path.split("?")[0]
        if path not in EXECUTOR_PATHS:
            self._reply(handler, 404, "")
            return
        try:
            body = self._read_body(handler)
        except ValueError as e:
            handler.close_connection = True
            self._reject(handler, 413 if "large" in str(e) else 400, f"Request body: {e}")
            return
        with self._cond:
            unavailable = self._unavailable
        if unavailable is not None and not unavailable[1]:
            self._reject(handler, unavailable[0], RECOVERY_MESSAGE)
            return

        ctype = handler.headers.get("Content-Type")
        call = Call()
        if ctype is None:
            self._reject(handler, 400, "Expecting 'Content-Type' to be present")
            return
        if ctype == PROTOBUF:
            try:
                call.ParseFromString(body)
                ok = call.IsInitialized()
            except DecodeError:
                ok = False
            if not ok:
                self._reject(handler, 400, "Failed to parse body into Call protobuf", ctype=ctype)
                return
        elif ctype == JSON:
            try:
                doc = json.loads(body)
            except ValueError as e:
                self._reject(handler, 400, f"Failed to parse body into JSON: {e}", ctype=ctype)
                return
            try:
                json_format.ParseDict(doc, call, ignore_unknown_fields=True)
                missing = call.FindInitializationErrors()
            except (json_format.ParseError, TypeError, ValueError) as e:
                missing = [str(e)]
            if missing:
                self._reject(handler, 400, f"Failed to convert JSON into Call protobuf: {', '.join(missing)}",
                             ctype=ctype)
                return
        else:
            self._reject(handler, 415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
            return

        ctype_name = Call.Type.Name(call.type) if call.HasField("type") else "?"
        error = validate_call(call)
        if error is not None:
            self._reject(handler, 400, f"Failed to validate Executor::Call: {error}", call, ctype_name, ctype)
            return

        media = None
        if call.type == Call.SUBSCRIBE:
            accept = handler.headers.get("Accept")
            if accepts(accept, JSON):
                media = JSON
            elif accepts(accept, PROTOBUF):
                media = PROTOBUF
            else:
                self._reject(handler, 406, f"Expecting 'Accept' to allow '{JSON}' or '{PROTOBUF}'", call,
                             ctype_name, ctype)
                return

        if unavailable is not None:
            if call.type == Call.HEARTBEAT:
                self._accept(handler, call, ctype)
                return
            if call.type in (Call.UPDATE, Call.MESSAGE):
                self._reject(handler, unavailable[0], RECOVERY_MESSAGE, call, ctype_name, ctype)
                return

        with self._cond:
            fw_known = any(f == call.framework_id.value for f, _ in self._slots)
            slot = self._slots.get((call.framework_id.value, call.executor_id.value))
        if not fw_known:
            self._reject(handler, 400, "Framework cannot be found", call, ctype_name, ctype)
            return
        if slot is None:
            self._reject(handler, 400, "Executor cannot be found", call, ctype_name, ctype)
            return
        if slot.state == "REGISTERING" and call.type != Call.SUBSCRIBE:
            self._reject(handler, 403, "Executor is not subscribed", call, ctype_name, ctype)
            return
        if call.type == Call.UNKNOWN:
            self._reject(handler, 501, "", call, ctype_name, ctype)
            return

        if call.type == Call.SUBSCRIBE:
            self._subscribe(handler, slot, call, media, ctype)
        else:
            self._accept(handler, call, ctype, slot)

    def _accept(self, handler, call, ctype, slot=None):
        """Applies the call and answers 202. The call is recorded before the
        answer (a test that got its 202 sees it), but an UPDATE's ACKNOWLEDGED
        goes out after the 202, as the agent's status-update manager
        acknowledges after the HTTP handler has answered."""
        name = Call.Type.Name(call.type)
        self.timeline.record("agent", f"call.{name}", _call_detail(call))
        ack = None
        with self._cond:
            self._calls.append(CallRecord(time.monotonic(), name, 202, "", call, ctype, handler.headers.get("Accept")))
            if slot is not None and call.type == Call.UPDATE:
                ack = self._receive_update_locked(slot, call.update.status, "update")
            elif slot is not None and call.type == Call.MESSAGE:
                self._messages.append(bytes(call.message.data))
            self._cond.notify_all()
        self._reply(handler, 202, "")
        if ack is not None:
            with self._cond:
                self._send_ack_locked(*ack)

    # ------------------------------------------------------------------
    # status-update manager (called with self._cond held)

    def _receive_update_locked(self, slot, status, via):
        """Records an update and applies the ack policy. Returns the (slot,
        task_id, uuid) to acknowledge right away, or None when the ack is
        withheld or delayed."""
        u = status.uuid
        rec = ReceivedUpdate(TaskStatus.FromString(status.SerializeToString()), time.monotonic(), via,
                             slot.executor_id)
        if u in slot.received:
            rec.acked_before = u in slot.acked
            self._duplicates.append(rec)
            self.timeline.record("agent", "update.duplicate", f"via={via} {_status_detail(status)}")
        else:
            slot.received.add(u)
            self._updates.append(rec)
            if via == "subscribe":
                # UPDATE calls are on the timeline as call.UPDATE already.
                self.timeline.record("agent", "update.resent", _status_detail(status))
        self._cond.notify_all()
        # The agent acknowledges duplicates too: the status-update manager
        # reports success for them, so the executor stops resending.
        if not self._auto_ack or (self._ack_filter is not None and not self._ack_filter(rec)):
            self._withheld.append((slot, rec.task_id, u))
            self.timeline.record("agent", "ack.withheld", f"task={rec.task_id} uuid={u.hex()}")
        elif self._ack_delay > 0:
            timer = threading.Timer(self._ack_delay, self._delayed_ack, (slot, rec.task_id, u))
            timer.daemon = True
            self._timers.add(timer)
            timer.start()
        else:
            return slot, rec.task_id, u
        return None

    def _delayed_ack(self, slot, task_id, u):
        with self._cond:
            self._timers.discard(threading.current_thread())
            self._send_ack_locked(slot, task_id, u)

    def _send_ack_locked(self, slot, task_id, u):
        stream = slot.stream
        if stream is None or stream.closing:
            # As the agent: an acknowledgement for a disconnected HTTP executor
            # is dropped; the executor resends the update on re-subscribing.
            self.timeline.record("agent", "ack.dropped", f"task={task_id} uuid={u.hex()}")
            return
        slot.acked.add(u)
        ev = Event(type=Event.ACKNOWLEDGED)
        ev.acknowledged.task_id.value = task_id
        ev.acknowledged.uuid = u
        self._enqueue_locked(stream, "event", ev)

    # ------------------------------------------------------------------
    # subscription streams

    def _live_stream_locked(self, slot):
        if slot.stream is None or slot.stream.closing:
            raise NotSubscribed(f"executor {slot.executor_id} has no live subscription stream")
        return slot.stream

    def _enqueue_locked(self, stream, kind, payload):
        stream.queue.append((kind, payload))
        self._cond.notify_all()

    def _end_stream_locked(self, stream, how, reason):
        if stream.closing is None:
            stream.closing, stream.reason = how, reason
        if stream.slot.stream is stream:
            stream.slot.stream = None
        self._cond.notify_all()

    def _subscribe(self, handler, slot, call, media, ctype):
        sock = handler.connection
        self.timeline.record("agent", "call.SUBSCRIBE", _call_detail(call))
        with self._cond:
            sub = Subscription(len(self._subscriptions) + 1, slot.executor_id, call, time.monotonic(), media)
            self._subscriptions.append(sub)
            self._calls.append(CallRecord(sub.time, "SUBSCRIBE", 200, "", call, ctype, handler.headers.get("Accept")))
            if slot.stream is not None:
                self._end_stream_locked(slot.stream, "end", f"replaced by subscription {sub.number}")
            stream = _Stream(slot, sub, sock)
            if slot.state == "TERMINATING":
                self._enqueue_locked(stream, "event", Event(type=Event.SHUTDOWN))
                stream.closing, stream.reason = "end", "executor is terminating"
            else:
                slot.state = "RUNNING"
                ev = Event(type=Event.SUBSCRIBED)
                ev.subscribed.executor_info.CopyFrom(slot.executor_info)
                ev.subscribed.framework_info.CopyFrom(slot.framework_info)
                ev.subscribed.agent_info.hostname = "127.0.0.1"
                ev.subscribed.agent_info.port = self.port
                ev.subscribed.agent_info.id.value = self.agent_id
                ev.subscribed.container_id.value = slot.container_id
                self._enqueue_locked(stream, "event", ev)
                for task in slot.queued:
                    launch = Event(type=Event.LAUNCH)
                    launch.launch.task.CopyFrom(task)
                    self._enqueue_locked(stream, "event", launch)
                slot.queued = []
                slot.stream = stream
                for update in call.subscribe.unacknowledged_updates:
                    ack = self._receive_update_locked(slot, update.status, "subscribe")
                    if ack is not None:
                        self._send_ack_locked(*ack)

        handler.send_response(200)
        handler.send_header("Content-Type", media)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.close_connection = True
        self.timeline.record("agent", "stream.open", f"executor={slot.executor_id} subscription={sub.number} "
                                                     f"media={media}")
        watcher = threading.Thread(target=self._watch_client, args=(stream,), daemon=True,
                                   name=f"stream-watch-{sub.number}")
        watcher.start()
        try:
            sock.settimeout(SEND_TIMEOUT)
            self._write_stream(handler, stream)
        finally:
            try:
                sock.shutdown(socket.SHUT_RD)  # wakes the watcher
            except OSError:
                pass
            with self._cond:
                if stream.closing is None:
                    stream.closing = "close"
                if slot.stream is stream:
                    slot.stream = None
                sub.ended, sub.end_reason = time.monotonic(), stream.reason
                self._cond.notify_all()
            self.timeline.record("agent", "stream.closed",
                                 f"executor={slot.executor_id} subscription={sub.number} reason={stream.reason}")

    def _watch_client(self, stream):
        """Notices the executor closing its end of the stream (the agent would
        see the connection close)."""
        while True:
            try:
                data = stream.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
        with self._cond:
            self._end_stream_locked(stream, "close", stream.reason or "executor closed the connection")

    def _write_stream(self, handler, stream):
        while True:
            with self._cond:
                self._cond.wait_for(lambda: stream.queue or stream.closing)
                if stream.closing in ("close", "reset"):
                    how, item = stream.closing, None
                elif stream.queue:
                    how, item = None, stream.queue.popleft()
                else:
                    how, item = "end", None
            if how is not None:
                self._finish_stream(handler, stream, how)
                return
            kind, payload = item
            # Recorded before the write: the executor may react (and its next
            # call be recorded) before a record made after it.
            if kind == "event":
                data = recordio.encode(encode_event(payload, stream.sub.media_type))
                self.timeline.record("agent", f"event.{Event.Type.Name(payload.type)}", _event_detail(payload))
            else:
                data = payload
                self.timeline.record("agent", "event.raw", f"bytes={len(payload)}")
            try:
                self._write_chunks(handler, data)
            except OSError as e:
                self.timeline.record("agent", "stream.write_failed", f"subscription={stream.sub.number} error={e}")
                with self._cond:
                    self._end_stream_locked(stream, "close", stream.reason or "write failed: executor gone")
                return
            with self._cond:
                if stream.sub.answered is None:
                    stream.sub.answered = time.monotonic()
                    self._cond.notify_all()

    def _write_chunks(self, handler, data):
        step = self.chunk_size or len(data)
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            handler.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")

    def _finish_stream(self, handler, stream, how):
        if how == "end":
            try:
                handler.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif how == "reset":
            self._mark_reset(stream.sock)
