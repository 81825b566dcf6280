"""A fake Mesos master serving the v1 scheduler HTTP API, for driving a real
framework scheduler from a test (PROTOCOLS.md §1, §4, §5, §9b).

Transport, as the real master (src/master/http.cpp Master::Http::scheduler):
`POST /api/v1/scheduler` (also `/master/api/v1/scheduler`) on 127.0.0.1 over
HTTP/1.1 keep-alive. In order: a master that does not lead answers every
request with 307 and `Location: //<leader host>:<port><same path>` (a
protocol-relative URL), or 503 "No leader elected" when it knows no leader;
503 "Master has not finished recovery" while recovering; 405 for anything but
POST; 400 without Content-Type, 415 unless it is exactly
`application/x-protobuf` or `application/json`; 400 for a body that does not
parse into a Call; 400 "Failed to validate scheduler::Call: ..." (type
present, the sub-message of the type present, `framework_id` equal to
`subscribe.framework_info.id` on SUBSCRIBE and present on every other call,
ACKNOWLEDGE uuids of 16 bytes); then for SUBSCRIBE 406 when Accept allows
neither media type (JSON preferred, as the master does) and 400 when it
carries `Mesos-Stream-Id`; for the other calls 400 "Framework cannot be
found" (a framework the master never saw, or one it removed), 403 "Framework
is not subscribed" (known but without a stream: disconnected, recovered after
come_back(), or made known by add_task()), 400 without `Mesos-Stream-Id` or
with a stale one, 501 for UNKNOWN, else 202 with an empty body. Error bodies
are plain text.

SUBSCRIBE answers 200 with `Mesos-Stream-Id: <uuid>` and a chunked stream of
RecordIO-framed `mesos.v1.scheduler.Event`s: SUBSCRIBED (a new framework id
on a first subscription, the given one on a re-subscription;
heartbeat_interval_seconds; master_info), at once a first HEARTBEAT, then one
every interval. A new SUBSCRIBE of a subscribed framework sends ERROR
"Framework failed over" on the old stream and ends it. A framework that was
removed gets ERROR "Framework has been removed" and an ended stream.

Offers, tasks and status updates follow the master (and, for updates, the
agent's status-update manager):
* ACCEPT: offer ids validated (unique, outstanding, this framework's, one
  agent); invalid ones fail every LAUNCH task with TASK_LOST, or TASK_DROPPED
  for PARTITION_AWARE frameworks, REASON_INVALID_OFFERS. Each task is then
  validated in the master's order (task id, duplicate id, agent id, kill
  policy, health check, resources, executor XOR command, executor info, and
  task + new executor resources ⊆ what is left of the offers: names,
  reservations, scalar amounts to 0.001, port ranges); an invalid task gets
  TASK_ERROR, REASON_TASK_INVALID. Master-generated updates are SOURCE_MASTER
  without uuid. Resources left over are declined with the call's filters.
* DECLINE records a refuse filter (default 5 s, 0 = none, capped at a year);
  offer_cycle() does not offer a filtered agent to that framework before the
  filter expires. REVIVE drops the filters and un-suppresses; SUPPRESS stops
  offer_cycle() for the framework. Offers die on disconnection and
  re-subscription (no RESCIND, as the master), or by rescind().
* Updates with a uuid go through a status-update manager per task: resent
  with the same uuid every retry interval (doubling up to a maximum) until
  ACKNOWLEDGEd, and (switchable) later updates of the task are held back
  until the current one is acknowledged. An acknowledgement that does not
  match the update in flight is ignored, as the agent ignores it. A terminal
  task leaves the master when its terminal update is acknowledged (at once
  for updates without uuid). Updates for a disconnected framework are
  dropped and come again with the next retry.
* KILL of a known task: (auto, switchable) TASK_KILLED from the "executor",
  preceded by TASK_KILLING when asked for and the framework has
  TASK_KILLING_STATE; of an unknown task: the explicit-reconciliation answer.
* RECONCILE: explicit → per task the latest state ("Reconciliation: Latest
  task state"), or for unknown tasks TASK_GONE (agent registered),
  TASK_UNREACHABLE, TASK_GONE_BY_OPERATOR, TASK_UNKNOWN (agent unknown),
  nothing (agent recovering); TASK_LOST for all four without PARTITION_AWARE.
  Implicit → the latest state of every task the master knows. Always
  SOURCE_MASTER, REASON_RECONCILIATION, no uuid, no data or labels.
* A framework whose stream closes is disconnected: its calls get 403 until
  it re-subscribes, and after FrameworkInfo.failover_timeout seconds (0 = at
  once) it is removed and its tasks are killed. TEARDOWN removes it at once.
  fail_over() (a new leader) closes every stream under the same rule;
  go_down()/come_back() (a restart on the same port) keeps the frameworks as
  recovered ones with no failover timer running.

Agent simulation (no real executors): auto_run() moves launched tasks to
TASK_RUNNING (optionally via TASK_STARTING) with a status record in `data`
(the msgpack map of shared/status_record.h: v, h, r, rs, s, f, l, e, t).

JSON is fully supported for calls and the stream through the protobuf
library's JSON mapping; unlike Mesos it emits 64-bit integers as strings and
leaves out unset fields that have an explicit default.

Everything runs on threads (one per connection, plus a timer thread for
heartbeats, retries, failover timeouts, auto offers and auto runs); every
control is thread-safe. Records go to `calls`, `subscriptions`, `events`,
`launches`, `acks` and the test's Timeline (source "master"). Timeline kinds:
call.<TYPE> (accepted), reject, redirect, event.<TYPE> (just before the
write), event.raw, stream.open, stream.closed, stream.write_failed, launch,
task.invalid, accept.invalid, offers.invalidated, filter, update.held,
update.retry, update.dropped, ack, ack.ignored, kill, framework.disconnected,
framework.removed, operation.unsupported, heartbeats, leader, failover, down, up,
internal.error. Details are "key=value" words.

Not modelled: authentication/authorization, UPDATE_FRAMEWORK, inverse
offers, operations other than LAUNCH (recorded and ignored), resource
filters on partial resources (a filter blocks the whole agent), allocation
fairness, offer timeouts, agents failing on their own.
"""

import collections
import dataclasses
import heapq
import http.server
import json
import math
import socket
import struct
import threading
import time
import uuid as uuidlib

import msgpack
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from mesos.v1 import mesos_pb2
from mesos.v1.scheduler import scheduler_pb2

from fakes import recordio
from fakes.mesos_agent import JSON, PROTOBUF, accepts, encode_event, state_name
from harness import Timeline, WaitTimeout, wait_condition

__all__ = [
    "FakeMaster", "NotSubscribed", "CallRecord", "Subscription", "EventRecord", "LaunchRecord", "AckRecord",
    "Filter", "MasterTask", "make_offer", "status_record", "parse_status_record", "validate_call",
    "is_terminal", "state_name", "Call", "Event", "TaskStatus", "mesos_pb2", "scheduler_pb2", "PROTOBUF",
    "JSON", "SCHEDULER_PATHS", "WaitTimeout",
]

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
TaskStatus = mesos_pb2.TaskStatus
Value = mesos_pb2.Value
ReservationInfo = mesos_pb2.Resource.ReservationInfo

SCHEDULER_PATHS = ("/api/v1/scheduler", "/master/api/v1/scheduler")
MESOS_VERSION = "1.11.0"

# What the master advertises and sends (master/constants.hpp).
DEFAULT_HEARTBEAT_INTERVAL = 15.0
# The agent's status-update manager: first retry after 10 s, then doubling up
# to 10 minutes (slave/constants.hpp STATUS_UPDATE_RETRY_INTERVAL_MIN/MAX).
UPDATE_RETRY_INTERVAL = 10.0
UPDATE_RETRY_INTERVAL_MAX = 600.0
# Filters.refuse_seconds: the proto default, and the allocator's cap.
DEFAULT_REFUSE_SECONDS = 5.0
REFUSE_SECONDS_MAX = 365 * 86400.0
# Mesos ids are file names on the agent.
ID_MAX = 255
# Cap on a request body: an ACCEPT launching a thousand tasks is a few MiB.
BODY_MAX = 32 * 1024 * 1024
# Cap on a chunk-size line of a chunked request body.
CHUNK_LINE_MAX = 64
# How long go_down()/stop() wait for the connection threads to let go.
CLOSE_TIMEOUT = 5.0
# Events a stream writer sends in one socket write.
WRITE_BATCH_MAX = 1024
# Socket send timeout of a stream writer, so a scheduler that stopped reading
# cannot wedge go_down().
SEND_TIMEOUT = 5.0
# The agent port in Offer.url (the real agents listen there by default).
AGENT_PORT = 5051

STATUS_RECORD_VERSION = 1
# RegistrationState names of shared/status_record.c, in enum order.
REGISTRATION_STATES = ("off", "pending", "registering", "registered", "failed", "deregistering", "deregistered")

_TERMINAL = frozenset(mesos_pb2.TaskState.Value(s) for s in (
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE",
    "TASK_GONE_BY_OPERATOR"))
_AGENT_STATES = ("registered", "recovering", "unreachable", "gone")

_PLAIN = "text/plain; charset=utf-8"


class NotSubscribed(RuntimeError):
    """A scenario control needs a framework with a live stream and there is none."""


def is_terminal(state):
    """Whether a TaskState (value or name) is terminal, as Mesos's isTerminalState."""
    if isinstance(state, str):
        state = mesos_pb2.TaskState.Value(state)
    return state in _TERMINAL


def _state_value(state):
    return mesos_pb2.TaskState.Value(state) if isinstance(state, str) else int(state)


def _reason_value(reason):
    return TaskStatus.Reason.Value(reason) if isinstance(reason, str) else int(reason)


def _source_value(source):
    return TaskStatus.Source.Value(source) if isinstance(source, str) else int(source)


# --------------------------------------------------------------------------
# Status record (shared/status_record.h)


def status_record(healthy=None, registered=False, registration="off", service_id="", failures=0, latency_us=0,
                  error="", registered_at_ms=0, version=STATUS_RECORD_VERSION, extra=None):
    """The msgpack status record pacer-executor puts in TaskStatus.data, with
    the keys in the C encoder's order. healthy: True/False/None (unknown).
    extra: more keys (or replacements), e.g. to test unknown or wrongly typed
    ones."""
    if registration not in REGISTRATION_STATES:
        raise ValueError(f"unknown registration state {registration!r}")
    rec = {"v": version, "h": healthy, "r": registered, "rs": registration, "s": service_id, "f": failures,
           "l": latency_us, "e": error, "t": registered_at_ms}
    rec.update(extra or {})
    return msgpack.packb(rec, use_bin_type=True)


_RECORD_KEYS = {"v": "version", "h": "healthy", "r": "registered", "rs": "registration", "s": "service_id",
                "f": "failures", "l": "latency_us", "e": "error", "t": "registered_at_ms"}


def parse_status_record(data):
    """A status record as a dict with status_record()'s argument names
    (unknown keys kept as they are)."""
    raw = msgpack.unpackb(bytes(data), raw=False)
    if not isinstance(raw, dict):
        raise ValueError(f"status record is not a map: {raw!r}")
    return {_RECORD_KEYS.get(k, k): v for k, v in raw.items()}


# --------------------------------------------------------------------------
# Offers


def _attribute(name, value):
    attr = mesos_pb2.Attribute(name=name)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"attribute {name}: unsupported value {value!r}")
    if isinstance(value, (int, float)):
        attr.type = Value.SCALAR
        attr.scalar.value = float(value)
    elif isinstance(value, str):
        attr.type = Value.TEXT
        attr.text.value = value
    elif isinstance(value, (set, frozenset)):
        attr.type = Value.SET
        attr.set.item.extend(sorted(value))
    else:
        attr.type = Value.RANGES
        for b, e in value:
            attr.ranges.range.add(begin=b, end=e)
    return attr


def _labels(mapping):
    labels = mesos_pb2.Labels()
    for k, v in mapping.items():
        label = labels.labels.add(key=k)
        if v is not None:
            label.value = v
    return labels


def _reserve(res, role, reserved):
    """Marks res as reserved for role, in the pre-refinement format: role alone
    is a static reservation; `reserved` (a dict with principal and/or labels)
    makes it dynamic."""
    if role == "*":
        if reserved:
            raise ValueError("a dynamic reservation needs a role other than '*'")
        return res
    res.role = role
    if reserved is not None:
        res.reservation.SetInParent()
        if reserved.get("principal") is not None:
            res.reservation.principal = reserved["principal"]
        if reserved.get("labels"):
            res.reservation.labels.CopyFrom(_labels(reserved["labels"]))
    return res


def make_offer(agent_id, hostname=None, cpus=1.0, mem=1024.0, disk=1024.0, ports=((31000, 31099),),
               attributes=None, role="*", reserved=None, gpus=None, offer_id=None):
    """A mesos.v1.Offer of one agent for send_offers() or add_agent(); the
    master fills in id (unless offer_id is given) and framework_id.

    cpus/mem/disk/gpus: scalar amounts (None leaves the resource out); ports:
    (begin, end) ranges, inclusive. attributes: {name: value}, a str is TEXT,
    a number SCALAR, a set SET, a list of (begin, end) RANGES; None means
    {"rack": "r1"}, {} none. role: "*" for unreserved resources, else they
    are reserved for that role (statically, or dynamically when `reserved`
    is a dict with "principal" and/or "labels")."""
    offer = mesos_pb2.Offer(hostname=hostname or agent_id)
    offer.agent_id.value = agent_id
    if offer_id is not None:
        offer.id.value = offer_id
    for name, amount in (("cpus", cpus), ("mem", mem), ("disk", disk), ("gpus", gpus)):
        if amount is not None:
            res = offer.resources.add(name=name, type=Value.SCALAR)
            res.scalar.value = float(amount)
            _reserve(res, role, reserved)
    if ports:
        res = offer.resources.add(name="ports", type=Value.RANGES)
        for b, e in ports:
            res.ranges.range.add(begin=b, end=e)
        _reserve(res, role, reserved)
    for name, value in ({"rack": "r1"} if attributes is None else attributes).items():
        offer.attributes.append(_attribute(name, value))
    return offer


# --------------------------------------------------------------------------
# Resource arithmetic: what the master's Resources class does for ACCEPT.


def _reservation_stack(res):
    """A resource's reservations, normalized over the pre- and
    post-refinement formats: a tuple of (type, role, principal, labels)."""
    if res.reservations:
        out = []
        for r in res.reservations:
            if r.HasField("type") and r.type != ReservationInfo.UNKNOWN:
                rtype = r.type
            else:
                rtype = ReservationInfo.DYNAMIC if r.HasField("principal") or r.HasField("labels") else \
                    ReservationInfo.STATIC
            out.append((rtype, r.role, r.principal, r.labels.SerializeToString(deterministic=True)))
        return tuple(out)
    if res.role == "*":
        return ()
    if res.HasField("reservation"):
        return ((ReservationInfo.DYNAMIC, res.role, res.reservation.principal,
                 res.reservation.labels.SerializeToString(deterministic=True)),)
    return ((ReservationInfo.STATIC, res.role, "", b""),)


def _merge_ranges(ranges):
    out = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((b, e))
    return tuple(out)


def _amount(res):
    if res.type == Value.SCALAR:
        return int(round(res.scalar.value * 1000))  # Mesos's fixed point: 3 decimals
    if res.type == Value.RANGES:
        return _merge_ranges((r.begin, r.end) for r in res.ranges.range)
    return frozenset(res.set.item)


def _plus(a, b):
    if isinstance(a, int):
        return a + b
    if isinstance(a, tuple):
        return _merge_ranges(a + b)
    return a | b


def _covers(have, need):
    if isinstance(have, int):
        return have >= need
    if isinstance(have, tuple):
        return all(any(hb <= b and e <= he for hb, he in have) for b, e in need)
    return need <= have


def _minus(have, need):
    if isinstance(have, int):
        return have - need
    if isinstance(have, tuple):
        left = list(have)
        for b, e in need:
            cut = []
            for hb, he in left:
                if e < hb or b > he:
                    cut.append((hb, he))
                    continue
                if hb < b:
                    cut.append((hb, b - 1))
                if e < he:
                    cut.append((e + 1, he))
            left = cut
        return tuple(left)
    return have - need


def _format_amount(v):
    if isinstance(v, int):
        return f"{v / 1000:g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(f"{b}-{e}" for b, e in v) + "]"
    return "{" + ", ".join(sorted(v)) + "}"


class _Bag:
    """Resources summed per (name, type, reservations): scalars in thousandths,
    ranges merged, sets. Keeps one Resource of each kind as a template."""

    def __init__(self, resources=()):
        self._items = {}  # key -> [template Resource, amount]
        for r in resources:
            self.add(r)

    @staticmethod
    def _key(res):
        return (res.name, res.type, _reservation_stack(res))

    def add(self, res):
        key, amount = self._key(res), _amount(res)
        if key in self._items:
            self._items[key][1] = _plus(self._items[key][1], amount)
        else:
            self._items[key] = [mesos_pb2.Resource.FromString(res.SerializeToString()), amount]

    def add_bag(self, other):
        for key, (tmpl, amount) in other._items.items():
            if key in self._items:
                self._items[key][1] = _plus(self._items[key][1], amount)
            else:
                self._items[key] = [tmpl, amount]

    def contains(self, other):
        for key, (_, amount) in other._items.items():
            if not amount:
                continue
            mine = self._items.get(key)
            if mine is None or not _covers(mine[1], amount):
                return False
        return True

    def subtract(self, other):
        """Removes other (which this bag must contain)."""
        for key, (_, amount) in other._items.items():
            if key in self._items:
                self._items[key][1] = _minus(self._items[key][1], amount)
                if not self._items[key][1]:
                    del self._items[key]

    def subtract_clamped(self, other):
        """Removes what it can of other (amounts stop at zero)."""
        for key, (_, amount) in other._items.items():
            if key in self._items:
                have = self._items[key][1]
                self._items[key][1] = max(0, have - amount) if isinstance(have, int) else _minus(have, amount)

    def empty(self):
        return not any(amount for _, amount in self._items.values())

    def resources(self):
        """The contents as Resources (in the templates' format)."""
        out = []
        for tmpl, amount in self._items.values():
            if not amount:
                continue
            res = mesos_pb2.Resource()
            res.CopyFrom(tmpl)
            res.ClearField("scalar")
            res.ClearField("ranges")
            res.ClearField("set")
            if isinstance(amount, int):
                res.scalar.value = amount / 1000
            elif isinstance(amount, tuple):
                for b, e in amount:
                    res.ranges.range.add(begin=b, end=e)
            else:
                res.set.item.extend(sorted(amount))
            out.append(res)
        return out

    def __str__(self):
        words = []
        for (name, _, stack), (_, amount) in self._items.items():
            if not amount:
                continue
            role = f"({stack[-1][1]})" if stack else ""
            words.append(f"{name}{role}:{_format_amount(amount)}")
        return "; ".join(words) if words else "{}"


def _validate_resource(res):
    """Resources::validate for one resource: the error text, or None."""
    if not res.name:
        return "Empty resource name"
    if res.type == Value.SCALAR:
        if not res.HasField("scalar") or res.HasField("ranges") or res.HasField("set"):
            return "Invalid scalar resource"
        if not math.isfinite(res.scalar.value) or res.scalar.value < 0:
            return f"Invalid scalar resource: value {res.scalar.value} is negative or not finite"
    elif res.type == Value.RANGES:
        if res.HasField("scalar") or not res.HasField("ranges") or res.HasField("set"):
            return "Invalid ranges resource"
        spans = sorted((r.begin, r.end) for r in res.ranges.range)
        for b, e in spans:
            if b > e:
                return f"Invalid ranges resource: range [{b}-{e}] begins after it ends"
        for (_, e1), (b2, _) in zip(spans, spans[1:]):
            if b2 <= e1:
                return "Invalid ranges resource: overlapping ranges"
    elif res.type == Value.SET:
        if res.HasField("scalar") or res.HasField("ranges") or not res.HasField("set"):
            return "Invalid set resource"
    else:
        return f"Unsupported resource type {Value.Type.Name(res.type)}"
    if res.role == "*" and res.HasField("reservation"):
        return "Invalid reservation: role \"*\" cannot be dynamically reserved"
    return None


def _validate_id(value):
    """common::validation::validateID: the error text, or None."""
    if not value:
        return "ID must not be empty"
    if len(value) > ID_MAX:
        return f"ID must not be greater than {ID_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(ord(c) < 0x20 or ord(c) == 0x7f or c in "/\\" for c in value):
        return f"'{value}' contains invalid characters"
    return None


def _validate_health_check(hc):
    """checks::validation::healthCheck: the error text, or None."""
    HC = mesos_pb2.HealthCheck
    if not hc.HasField("type"):
        return "HealthCheck must specify 'type'"
    if hc.type == HC.COMMAND:
        if not hc.HasField("command"):
            return "Expecting 'command' to be set for COMMAND health check"
        if hc.command.shell and not hc.command.HasField("value"):
            return "Command health check must contain 'shell command'"
    elif hc.type == HC.HTTP:
        if not hc.HasField("http"):
            return "Expecting 'http' to be set for HTTP health check"
        if hc.http.HasField("scheme") and hc.http.scheme not in ("http", "https"):
            return f"Unsupported HTTP health check scheme: '{hc.http.scheme}'"
        if hc.http.HasField("path") and not hc.http.path.startswith("/"):
            return f"The path '{hc.http.path}' of HTTP health check must start with '/'"
    elif hc.type == HC.TCP:
        if not hc.HasField("tcp"):
            return "Expecting 'tcp' to be set for TCP health check"
    else:
        return f"'{HC.Type.Name(hc.type)}' is not a valid health check type"
    for field in ("delay_seconds", "interval_seconds", "timeout_seconds", "grace_period_seconds"):
        if getattr(hc, field) < 0:
            return f"Expecting '{field}' to be non-negative"
    return None


def validate_call(call):
    """The master's scheduler-call validation (master/validation.cpp); returns
    the error text, or None when the call is valid."""
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    if call.type == Call.SUBSCRIBE:
        if not call.HasField("subscribe"):
            return "Expecting 'subscribe' to be present"
        info = call.subscribe.framework_info
        given = call.framework_id.value if call.HasField("framework_id") else ""
        wanted = info.id.value if info.HasField("id") else ""
        if given != wanted:
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if not call.HasField("framework_id"):
        return "Expecting 'framework_id' to be present"
    needs = {Call.ACCEPT: "accept", Call.DECLINE: "decline", Call.KILL: "kill", Call.SHUTDOWN: "shutdown",
             Call.ACKNOWLEDGE: "acknowledge", Call.RECONCILE: "reconcile", Call.MESSAGE: "message"}
    field = needs.get(call.type)
    if field is not None and not call.HasField(field):
        return f"Expecting '{field}' to be present"
    if call.type == Call.ACKNOWLEDGE and len(call.acknowledge.uuid) != 16:
        return f"Not a valid UUID: expected 16 bytes, got {len(call.acknowledge.uuid)}"
    return None


# --------------------------------------------------------------------------
# Records of what the master saw and did


@dataclasses.dataclass
class CallRecord:
    """A request to the scheduler endpoint and how it was answered."""

    time: float
    type: str  # "SUBSCRIBE", ..., or "?" when not parsed
    status: int  # HTTP status code answered
    reason: str  # error text ("" when accepted)
    call: Call = None
    content_type: str = None
    accept: str = None
    stream_id: str = None  # the Mesos-Stream-Id header sent, if any
    path: str = None
    method: str = "POST"


@dataclasses.dataclass
class Subscription:
    """One accepted SUBSCRIBE and the stream it opened."""

    number: int  # 1-based, over the master's lifetime
    framework_id: str
    stream_id: str
    call: Call
    time: float
    media_type: str
    resubscribe: bool  # the call carried a framework id
    answered: float = None  # when the first event was written
    ended: float = None
    end_reason: str = None
    refused: str = None  # the ERROR sent instead of SUBSCRIBED, if any

    @property
    def framework_info(self):
        return self.call.subscribe.framework_info


@dataclasses.dataclass
class EventRecord:
    """An event written to a subscription stream."""

    time: float
    framework_id: str
    subscription: int
    event: Event

    @property
    def type(self):
        return Event.Type.Name(self.event.type)

    @property
    def status(self):
        """The TaskStatus of an UPDATE (None for other events)."""
        return self.event.update.status if self.event.type == Event.UPDATE else None


@dataclasses.dataclass
class LaunchRecord:
    """A task the master accepted from an ACCEPT's LAUNCH."""

    time: float
    framework_id: str
    agent_id: str
    offer_ids: list
    task: mesos_pb2.TaskInfo

    @property
    def task_id(self):
        return self.task.task_id.value


@dataclasses.dataclass
class AckRecord:
    """An ACKNOWLEDGE and what the status-update manager made of it."""

    time: float
    framework_id: str
    agent_id: str
    task_id: str
    uuid: bytes
    accepted: bool  # matched the update in flight
    reason: str = ""


@dataclasses.dataclass
class Filter:
    """A refuse filter: `agent_id` is not offered to the framework before `expires`."""

    framework_id: str
    agent_id: str
    refuse_seconds: float
    created: float
    expires: float
    via: str  # "DECLINE" or "ACCEPT"


@dataclasses.dataclass
class MasterTask:
    """A task the master knows (launched, or added by add_task())."""

    task_id: str
    framework_id: str
    agent_id: str
    state: str  # name of the latest state sent to the framework (TASK_STAGING after launch)
    executor_id: str = None
    info: mesos_pb2.TaskInfo = None
    healthy: bool = None
    origin: str = "launch"  # or "added"
    statuses: list = dataclasses.field(default_factory=list)  # TaskStatuses sent, oldest first
    kill_requested: bool = False


def _status_detail(st):
    words = [f"task={st.task_id.value}", f"state={state_name(st.state)}",
             f"source={TaskStatus.Source.Name(st.source)}"]
    if st.HasField("reason"):
        words.append(f"reason={TaskStatus.Reason.Name(st.reason)}")
    if st.HasField("healthy"):
        words.append(f"healthy={st.healthy}")
    words.append(f"uuid={st.uuid.hex() if st.HasField('uuid') else '-'}")
    return " ".join(words)


def _event_detail(ev):
    t = ev.type
    if t == Event.SUBSCRIBED:
        return (f"framework={ev.subscribed.framework_id.value} "
                f"heartbeat={ev.subscribed.heartbeat_interval_seconds:g}")
    if t == Event.OFFERS:
        return "offers=" + ",".join(f"{o.id.value}@{o.agent_id.value}" for o in ev.offers.offers)
    if t == Event.RESCIND:
        return f"offer={ev.rescind.offer_id.value}"
    if t == Event.UPDATE:
        return _status_detail(ev.update.status)
    if t == Event.MESSAGE:
        return f"agent={ev.message.agent_id.value} executor={ev.message.executor_id.value} " \
               f"bytes={len(ev.message.data)}"
    if t == Event.FAILURE:
        return f"agent={ev.failure.agent_id.value} executor={ev.failure.executor_id.value} " \
               f"status={ev.failure.status if ev.failure.HasField('status') else '-'}"
    if t == Event.ERROR:
        return f"message={ev.error.message}"
    return ""


def _call_detail(call):
    t = call.type
    fid = call.framework_id.value if call.HasField("framework_id") else "-"
    if t == Call.SUBSCRIBE:
        info = call.subscribe.framework_info
        caps = ",".join(mesos_pb2.FrameworkInfo.Capability.Type.Name(c.type) for c in info.capabilities)
        return f"framework={fid} name={info.name} failover_timeout={info.failover_timeout:g} caps={caps or '-'}"
    if t == Call.ACCEPT:
        tasks = [ti.task_id.value for op in call.accept.operations for ti in op.launch.task_infos]
        return (f"framework={fid} offers={','.join(o.value for o in call.accept.offer_ids) or '-'} "
                f"tasks={','.join(tasks) or '-'}")
    if t == Call.DECLINE:
        return (f"framework={fid} offers={','.join(o.value for o in call.decline.offer_ids) or '-'} "
                f"refuse={call.decline.filters.refuse_seconds:g}")
    if t == Call.KILL:
        agent = call.kill.agent_id.value if call.kill.HasField("agent_id") else "-"
        return f"framework={fid} task={call.kill.task_id.value} agent={agent}"
    if t == Call.ACKNOWLEDGE:
        ack = call.acknowledge
        return f"framework={fid} task={ack.task_id.value} agent={ack.agent_id.value} uuid={ack.uuid.hex()}"
    if t == Call.RECONCILE:
        ids = [rt.task_id.value for rt in call.reconcile.tasks]
        return f"framework={fid} tasks={','.join(ids) if ids else '(implicit)'}"
    if t == Call.SHUTDOWN:
        return f"framework={fid} agent={call.shutdown.agent_id.value} executor={call.shutdown.executor_id.value}"
    if t == Call.MESSAGE:
        return f"framework={fid} agent={call.message.agent_id.value} executor={call.message.executor_id.value} " \
               f"bytes={len(call.message.data)}"
    return f"framework={fid}"


# --------------------------------------------------------------------------
# Internal state


class _Timer:
    __slots__ = ("deadline", "fn", "cancelled")

    def __init__(self, deadline, fn):
        self.deadline, self.fn, self.cancelled = deadline, fn, False

    def cancel(self):
        self.cancelled = True


class _Stream:
    """The event stream of one subscription, written by its handler thread."""

    def __init__(self, framework, sub, sock):
        self.framework, self.sub, self.sock = framework, sub, sock
        self.queue = collections.deque()  # ("event", Event) | ("raw", bytes)
        # None while live; else how it ends: "end" (flush the queue, then the
        # final chunk), "close" or "reset" (at once, the queue dropped).
        self.closing = None
        self.reason = None

    @property
    def live(self):
        return self.closing is None


class _PendingUpdate:
    """An update with a uuid the status-update manager has not seen acknowledged."""

    __slots__ = ("status", "attempts", "interval", "timer")

    def __init__(self, status, interval):
        self.status, self.attempts, self.interval, self.timer = status, 0, interval, None


class _Framework:
    def __init__(self, fid, info):
        self.id = fid
        self.info = info
        self.stream = None  # the live _Stream
        self.failover_timer = None
        self.suppressed = False
        self.filters = {}  # agent_id -> Filter
        self.tasks = {}  # task_id -> MasterTask
        self.updates = {}  # task_id -> deque of _PendingUpdate
        self.disconnected_at = None

    @property
    def connected(self):
        return self.stream is not None and self.stream.live

    @property
    def capabilities(self):
        return {mesos_pb2.FrameworkInfo.Capability.Type.Name(c.type) for c in self.info.capabilities}

    @property
    def partition_aware(self):
        return "PARTITION_AWARE" in self.capabilities

    def roles(self):
        if "MULTI_ROLE" in self.capabilities:
            return list(self.info.roles) or ["*"]
        return [self.info.role]


class _Agent:
    def __init__(self, agent_id, hostname):
        self.id, self.hostname = agent_id, hostname
        self.state = "registered"
        self.template = None  # the Offer add_agent() was given: the agent's total resources
        self.executors = {}  # (framework_id, executor_id) -> [ExecutorInfo, set of task ids]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"fake-mesos-master/{MESOS_VERSION}"
    # headers and body go out in separate writes: without this a kept-alive client waits
    # for its delayed ACK (~40 ms) on every answer; the real Mesos and Consul turn Nagle off too
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.master._conn_opened(self.connection)

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # the peer went away; nothing to answer

    def log_message(self, fmt, *args):
        pass

    def _any(self):
        self.server.master._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, master, port):
        self.master = master
        super().__init__(("127.0.0.1", port), _Handler)

    def shutdown_request(self, request):
        # An abortive close (RST) must not be preceded by the FIN of shutdown().
        try:
            if self.master._take_reset(request):
                request.close()
            else:
                super().shutdown_request(request)
        finally:
            self.master._conn_closed(request)

    def handle_error(self, request, client_address):
        pass  # a client vanishing mid-request is an ordinary event here


@dataclasses.dataclass
class _AutoRun:
    enabled: bool = False
    record: object = None
    healthy: object = None
    delay: float = 0.0
    starting: bool = False


# --------------------------------------------------------------------------
# The master


class FakeMaster:
    """A scripted Mesos master for the scheduler HTTP API; see the module docstring.

    FakeMaster(timeline=None, heartbeat_interval=15.0, heartbeats=True,
    update_retry_interval=10.0, update_retry_max=600.0, hold_back=True,
    auto_kill=True, chunk_size=None)

    Controls that address a framework take framework_id=None meaning the
    current one: the most recently subscribed (or, before any subscription,
    the only one add_task() made known). chunk_size splits every framed
    event into HTTP chunks of at most that many bytes.
    """

    def __init__(self, timeline=None, heartbeat_interval=DEFAULT_HEARTBEAT_INTERVAL, heartbeats=True,
                 update_retry_interval=UPDATE_RETRY_INTERVAL, update_retry_max=UPDATE_RETRY_INTERVAL_MAX,
                 hold_back=True, auto_kill=True, chunk_size=None):
        self.timeline = timeline if timeline is not None else Timeline()
        self.chunk_size = chunk_size
        self.port = None
        self._cond = threading.Condition()
        self._server = None
        self._serve_thread = None
        self._conns = set()
        self._reset_socks = set()
        self._streams = set()  # _Streams whose handler thread is writing
        self._master_id = str(uuidlib.uuid4())
        self._leader = True  # True: leading; else ("host", port) to redirect to, or None: no leader
        self._recovering = False
        self._held_reconciles = None  # a list while reconciliation answers are held back
        self._heartbeat_interval = float(heartbeat_interval)
        self._heartbeats = heartbeats
        self._heartbeats_paused = False
        self._retry_interval, self._retry_max = float(update_retry_interval), float(update_retry_max)
        self._hold_back = hold_back
        self._auto_kill, self._kill_via_killing = auto_kill, False
        self._auto_run = _AutoRun()
        self._auto_offer = None  # (interval, _Timer)
        self._frameworks = {}  # id -> _Framework
        self._completed = {}  # id -> _Framework removed
        self._current = None  # id of the framework controls address by default
        self._agents = {}  # id -> _Agent
        self._offers = {}  # offer id -> (framework id, Offer)
        self._next_framework = 0
        self._next_offer = 0
        self._timers = []  # heap of (deadline, seq, _Timer)
        self._timer_seq = 0
        self._ticker = None
        self._ticker_stop = False
        self._calls, self._subscriptions, self._events = [], [], []
        self._launches, self._acks, self._errors = [], [], []

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
                                                  name=f"fake-master-{self.port}", daemon=True)
            self._serve_thread.start()
            if self._ticker is None:
                self._ticker_stop = False
                self._ticker = threading.Thread(target=self._tick_loop, name=f"fake-master-timers-{self.port}",
                                                daemon=True)
                self._ticker.start()
        return self

    @property
    def endpoint(self):
        """"127.0.0.1:<port>"."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.endpoint}/api/v1/scheduler"

    @property
    def master_id(self):
        with self._cond:
            return self._master_id

    def stop(self):
        """Shuts everything down: server, connections, timers. Idempotent."""
        self.go_down()
        with self._cond:
            ticker, self._ticker = self._ticker, None
            self._ticker_stop = True
            self._timers.clear()
            self._cond.notify_all()
        if ticker is not None:
            ticker.join(CLOSE_TIMEOUT)

    def go_down(self, how="close"):
        """Stops accepting connections and closes every open one, like a
        crashed master (how: "close" or "reset"). Frameworks become
        disconnected without a failover timer running: they are known again
        after come_back(), as frameworks a restarted master recovered, and
        get 403 until they re-subscribe. The port stays ours."""
        with self._cond:
            server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._cond:
            self._drop_streams_locked(how, "master went down", failover=False)
        self._close_conns(how)
        self.timeline.record("master", "down", f"port={self.port} how={how}")

    def come_back(self):
        """Listens again on the same port (SO_REUSEADDR) with all state kept."""
        self.start()
        self.timeline.record("master", "up", f"port={self.port}")

    def fail_over(self, how="close"):
        """A leader change onto this same master: a new master id, every stream
        closed, outstanding offers gone. Each framework must re-subscribe with
        its framework id within its failover_timeout or it is removed and its
        tasks are killed."""
        with self._cond:
            self._master_id = str(uuidlib.uuid4())
            socks = self._drop_streams_locked(how, "master failed over")
        self._wait_socks_closed(socks)
        self.timeline.record("master", "failover", f"master_id={self._master_id}")

    def check(self):
        """Raises AssertionError if the fake hit an internal error (a bug in
        the fake, or a scenario it cannot handle). The fixture calls it at
        teardown."""
        with self._cond:
            errors = list(self._errors)
        if errors:
            raise AssertionError("fake master internal errors:\n" + "\n".join(errors))

    def _drop_streams_locked(self, how, reason, failover=True):
        """Ends every live stream and disconnects its framework; returns their sockets."""
        socks = set()
        for fw in self._frameworks.values():
            if fw.stream is not None:
                socks.add(fw.stream.sock)
                self._end_stream_locked(fw.stream, how, reason)
                self._disconnect_locked(fw, reason, failover=failover)
        return socks

    def _close_conns(self, how):
        with self._cond:
            conns = list(self._conns)
            streams = {st.sock for st in self._streams}
        for sock in conns:
            if sock in streams:
                continue  # its writer closes it
            if how == "reset":
                self._mark_reset(sock)
            try:
                sock.shutdown(socket.SHUT_RD if how == "reset" else socket.SHUT_RDWR)
            except OSError:
                pass
        wait_condition(self._cond, lambda: not self._conns, CLOSE_TIMEOUT, "master connections to close")

    def _wait_socks_closed(self, socks):
        wait_condition(self._cond, lambda: not (socks & self._conns), CLOSE_TIMEOUT, "streams to close")

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
    # leadership and availability

    def redirect_to(self, other, close_streams=True):
        """Stops leading: every request gets 307 to `other` (a FakeMaster, or
        "host:port"). A real master that loses leadership exits, so by default
        the streams close (their frameworks are disconnected here)."""
        if isinstance(other, FakeMaster):
            target = ("127.0.0.1", other.port)
        else:
            host, _, port = str(other).rpartition(":")
            target = (host, int(port))
        self._set_leader(target, close_streams)

    def no_leader(self, close_streams=True):
        """Every request gets 503 "No leader elected"."""
        self._set_leader(None, close_streams)

    def lead(self):
        """Leads again (the default)."""
        self._set_leader(True, False)

    def set_recovering(self, recovering=True):
        """While recovering every request gets 503 "Master has not finished recovery"."""
        with self._cond:
            self._recovering = recovering
        self.timeline.record("master", "leader", f"recovering={recovering}")

    def _set_leader(self, leader, close_streams):
        with self._cond:
            self._leader = leader
            socks = set()
            if close_streams and leader is not True:
                socks = self._drop_streams_locked("close", "master lost leadership")
        self._wait_socks_closed(socks)
        what = "self" if leader is True else ("none" if leader is None else f"{leader[0]}:{leader[1]}")
        self.timeline.record("master", "leader", f"leader={what}")

    # ------------------------------------------------------------------
    # policies

    def set_heartbeats(self, interval=None, enabled=None):
        """interval: seconds between HEARTBEATs (and what SUBSCRIBED
        advertises to later subscriptions); enabled=False stops sending them
        while SUBSCRIBED still advertises the interval (a dead master for the
        scheduler's watchdog)."""
        with self._cond:
            if interval is not None:
                self._heartbeat_interval = float(interval)
            if enabled is not None:
                self._heartbeats = enabled
            self._cond.notify_all()

    def pause_heartbeats(self):
        """No HEARTBEAT is sent until resume_heartbeats()."""
        with self._cond:
            self._heartbeats_paused = True
        self.timeline.record("master", "heartbeats", "paused")

    def resume_heartbeats(self):
        """Sends a HEARTBEAT on every live stream now, then every interval."""
        with self._cond:
            self._heartbeats_paused = False
            for fw in self._frameworks.values():
                if fw.connected and self._heartbeats:
                    self._enqueue_locked(fw.stream, "event", Event(type=Event.HEARTBEAT))
        self.timeline.record("master", "heartbeats", "resumed")

    def set_update_policy(self, hold_back=None, retry_interval=None, retry_max=None):
        """hold_back: later updates of a task wait for the acknowledgement of the
        current one (Mesos), or go out at once. retry_interval/retry_max: the
        resend backoff of unacknowledged updates (first interval, cap)."""
        with self._cond:
            if hold_back is not None:
                self._hold_back = hold_back
            if retry_interval is not None:
                self._retry_interval = float(retry_interval)
            if retry_max is not None:
                self._retry_max = float(retry_max)

    def set_auto_kill(self, enabled=True, killing=False):
        """What the simulated agent does on KILL of a known live task: enabled
        sends TASK_KILLED (with a uuid, from the executor), preceded by
        TASK_KILLING when killing=True and the framework has
        TASK_KILLING_STATE. Disabled: the KILL is only recorded."""
        with self._cond:
            self._auto_kill, self._kill_via_killing = enabled, killing

    def auto_run(self, enabled=True, record=None, healthy=None, delay=0.0, starting=False):
        """Agent simulation: every task launched from now on goes from
        TASK_STAGING to TASK_RUNNING after `delay` seconds (through
        TASK_STARTING first when starting=True), as executor updates with a
        uuid. The RUNNING update's data is a status record: by default healthy
        (h=True when the task has a health check, else unknown) and registered
        (r=True, rs="registered", s=<task id>, t=now); `record` is a dict of
        status_record() arguments layered on that, raw bytes, or a callable
        (TaskInfo) -> dict or bytes. TaskStatus.healthy is `healthy` when
        given, else the record's h for a task with a health check."""
        with self._cond:
            self._auto_run = _AutoRun(enabled, record, healthy, float(delay), starting)

    # ------------------------------------------------------------------
    # agents and offers

    def add_agent(self, offer, state="registered"):
        """Makes the master know an agent whose total resources and attributes
        are those of `offer` (see make_offer()); offer_cycle() offers them."""
        with self._cond:
            agent = self._agent_locked(offer.agent_id.value, offer.hostname)
            agent.template = mesos_pb2.Offer.FromString(offer.SerializePartialToString())
            agent.state = state
        return agent.id

    def hold_reconciliation(self, hold=True):
        """While held, RECONCILE calls are accepted and recorded but answered only when released
        (a master slow to answer, or whose agents have not re-registered yet)."""
        with self._cond:
            if hold:
                if self._held_reconciles is None:
                    self._held_reconciles = []
                return
            held, self._held_reconciles = self._held_reconciles or [], None
            for fw, reconcile in held:
                self._reconcile_locked(fw, reconcile)
            self._cond.notify_all()

    def set_agent_state(self, agent_id, state):
        """"registered", "recovering" (after a master failover, not yet
        re-registered), "unreachable" or "gone": what explicit reconciliation
        of unknown tasks on it answers."""
        if state not in _AGENT_STATES:
            raise ValueError(f"agent state must be one of {_AGENT_STATES}")
        with self._cond:
            self._agent_locked(agent_id).state = state

    def send_offers(self, offers, framework_id=None):
        """Sends one OFFERS event with these offers (make_offer()), ignoring
        filters and suppression. Offer ids are assigned unless set; resources
        are put in the format the framework's capabilities ask for. Returns
        the offers as sent. Raises NotSubscribed without a live stream."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            if not fw.connected:
                raise NotSubscribed(f"framework {fw.id} has no live subscription stream")
            return self._send_offers_locked(fw, offers)

    def offer_cycle(self, framework_id=None):
        """One allocation round over the agents of add_agent(): each subscribed,
        unsuppressed framework (or only framework_id) is offered, per
        registered agent without an outstanding offer or an active filter for
        it, what is free there (total less the resources of live tasks and
        executors and of outstanding offers), reserved resources only to
        frameworks of their role. Returns the offers sent."""
        with self._cond:
            return self._offer_cycle_locked(framework_id)

    def auto_offer(self, interval=1.0):
        """Runs offer_cycle() every `interval` seconds (the allocator's
        allocation interval); None stops it."""
        with self._cond:
            if self._auto_offer is not None:
                self._auto_offer[1].cancel()
                self._auto_offer = None
            if interval is not None:
                self._auto_offer = (float(interval), self._schedule_locked(0.0, self._auto_offer_tick))

    def rescind(self, offer_id):
        """Withdraws an outstanding offer and sends RESCIND. Returns whether the
        offer was outstanding."""
        with self._cond:
            entry = self._offers.pop(offer_id, None)
            if entry is None:
                return False
            fw = self._frameworks.get(entry[0])
            if fw is not None:
                ev = Event(type=Event.RESCIND)
                ev.rescind.offer_id.value = offer_id
                self._emit_locked(fw, ev)
            return True

    # ------------------------------------------------------------------
    # tasks and updates

    def add_task(self, task_id, agent_id, state="TASK_RUNNING", framework_id=None, executor_id=None,
                 healthy=None, info=None):
        """Makes the master know a task, e.g. a stray left by an earlier
        scheduler of the framework. An unknown framework id becomes known as
        a framework that has not (re-)subscribed yet (its calls get 403); an
        unknown agent becomes known as registered. Returns the MasterTask."""
        with self._cond:
            fid = framework_id or self._current
            if fid is None:
                raise NotSubscribed("add_task: no framework_id and no framework known")
            fw = self._frameworks.get(fid)
            if fw is None:
                info_ = mesos_pb2.FrameworkInfo(user="unknown", name="unknown")
                info_.id.value = fid
                fw = _Framework(fid, info_)
                self._frameworks[fid] = fw
                self._current = self._current or fid
            self._agent_locked(agent_id)
            task = MasterTask(task_id, fid, agent_id, state_name(_state_value(state)), executor_id=executor_id,
                              info=info, healthy=healthy, origin="added")
            fw.tasks[task_id] = task
            if executor_id is not None:
                self._agents[agent_id].executors.setdefault(
                    (fid, executor_id), [mesos_pb2.ExecutorInfo(), set()])[1].add(task_id)
            return dataclasses.replace(task, statuses=list(task.statuses))

    def send_update(self, task_id, state, agent_id=None, healthy=None, data=None, uuid=True, reason=None,
                    message=None, source="SOURCE_EXECUTOR", executor_id=None, framework_id=None, labels=None,
                    timestamp=None):
        """Emits a status UPDATE for task_id, as the agent forwards one.

        state/reason/source: names or values. agent_id/executor_id default to
        the known task's. data: bytes, or a dict of status_record() arguments.
        uuid: True (a random one), bytes (exactly those), or False (none, as
        master-generated updates). With a uuid the update goes through the
        status-update manager (held back behind an unacknowledged one,
        resent until acknowledged). Returns the TaskStatus (status.uuid is
        what wait_ack() takes)."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            status = self._build_status_locked(fw, task_id, state, agent_id=agent_id, healthy=healthy, data=data,
                                               uuid=uuid, reason=reason, message=message, source=source,
                                               executor_id=executor_id, labels=labels, timestamp=timestamp)
            self._submit_update_locked(fw, status)
            return status

    # ------------------------------------------------------------------
    # other events and stream controls

    def send_message(self, agent_id, executor_id, data, framework_id=None):
        """MESSAGE from an executor (opaque bytes)."""
        ev = Event(type=Event.MESSAGE)
        ev.message.agent_id.value = agent_id
        ev.message.executor_id.value = executor_id
        ev.message.data = bytes(data)
        self.send_event(ev, framework_id)

    def send_failure(self, agent_id, executor_id=None, status=None, framework_id=None):
        """FAILURE: an executor exited (executor_id, raw wait status) or the agent was removed."""
        ev = Event(type=Event.FAILURE)
        ev.failure.agent_id.value = agent_id
        if executor_id is not None:
            ev.failure.executor_id.value = executor_id
        if status is not None:
            ev.failure.status = status
        self.send_event(ev, framework_id)

    def send_error(self, text, framework_id=None):
        """ERROR with a message (the stream stays open; see drop_stream())."""
        ev = Event(type=Event.ERROR)
        ev.error.message = text
        self.send_event(ev, framework_id)

    def send_heartbeat(self, framework_id=None):
        """One HEARTBEAT now (whatever the heartbeat policy)."""
        self.send_event(Event(type=Event.HEARTBEAT), framework_id)

    def send_event(self, event, framework_id=None):
        """Any Event on the framework's live stream; raises NotSubscribed without one."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            if not fw.connected:
                raise NotSubscribed(f"framework {fw.id} has no live subscription stream")
            self._enqueue_locked(fw.stream, "event", event)

    def send_raw(self, data, framework_id=None):
        """Raw bytes on the stream, inside the chunked encoding but not RecordIO
        framed (for malformed-stream tests)."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            if not fw.connected:
                raise NotSubscribed(f"framework {fw.id} has no live subscription stream")
            self._enqueue_locked(fw.stream, "raw", bytes(data))

    def drop_stream(self, how="close", framework_id=None):
        """Closes the framework's subscription connection. how: "close" (FIN, no
        final chunk: the connection broke), "end" (final chunk, then FIN) or
        "reset" (RST). The framework is disconnected (failover timer running).
        Waits until the connection is closed."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            if not fw.connected:
                raise NotSubscribed(f"framework {fw.id} has no live subscription stream")
            stream = fw.stream
            self._end_stream_locked(stream, how, f"drop_stream({how})")
            self._disconnect_locked(fw, f"drop_stream({how})")
        self._wait_socks_closed({stream.sock})

    # ------------------------------------------------------------------
    # observations

    @property
    def calls(self):
        """Every request to the scheduler endpoint (CallRecord), oldest first."""
        with self._cond:
            return list(self._calls)

    def calls_of(self, call_type, accepted=True):
        """The CallRecords of one type ("DECLINE", ...), by default only those answered 2xx."""
        return [c for c in self.calls if c.type == call_type and (not accepted or c.status in (200, 202))]

    @property
    def subscriptions(self):
        """Every accepted SUBSCRIBE (Subscription), oldest first."""
        with self._cond:
            return list(self._subscriptions)

    @property
    def events(self):
        """Every event written to a stream (EventRecord), oldest first."""
        with self._cond:
            return list(self._events)

    def events_of(self, event_type, framework_id=None):
        return [e for e in self.events if e.type == event_type and (framework_id is None or
                                                                     e.framework_id == framework_id)]

    def updates_sent(self, task_id=None):
        """The TaskStatuses written in UPDATE events (of one task), oldest first."""
        return [e.status for e in self.events_of("UPDATE") if task_id is None or e.status.task_id.value == task_id]

    @property
    def launches(self):
        """Every task launched by an ACCEPT (LaunchRecord), oldest first."""
        with self._cond:
            return list(self._launches)

    @property
    def acks(self):
        """Every ACKNOWLEDGE (AckRecord), oldest first."""
        with self._cond:
            return list(self._acks)

    @property
    def declines(self):
        """The accepted DECLINE calls (CallRecord)."""
        return self.calls_of("DECLINE")

    @property
    def framework_id(self):
        """The current framework's id (None before any is known)."""
        with self._cond:
            return self._current

    @property
    def frameworks(self):
        """Ids of the frameworks the master knows (not removed)."""
        with self._cond:
            return list(self._frameworks)

    @property
    def removed_frameworks(self):
        with self._cond:
            return list(self._completed)

    def framework_info(self, framework_id=None):
        with self._cond:
            return mesos_pb2.FrameworkInfo.FromString(self._framework_locked(framework_id).info.SerializeToString())

    def stream_id(self, framework_id=None):
        """The Mesos-Stream-Id of the framework's live stream, or None."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            return fw.stream.sub.stream_id if fw.connected else None

    def connected(self, framework_id=None):
        with self._cond:
            fid = framework_id or self._current
            fw = self._frameworks.get(fid)
            return fw is not None and fw.connected

    def suppressed(self, framework_id=None):
        with self._cond:
            return self._framework_locked(framework_id).suppressed

    @property
    def known_tasks(self):
        """{task_id: MasterTask} of every task the master knows, over all
        frameworks (copies)."""
        with self._cond:
            return {tid: dataclasses.replace(t, statuses=list(t.statuses))
                    for fw in self._frameworks.values() for tid, t in fw.tasks.items()}

    def task_state(self, task_id):
        """The latest state (name) the master sent for a known task, or None."""
        return getattr(self.known_tasks.get(task_id), "state", None)

    @property
    def outstanding_offers(self):
        """{offer_id: Offer} of the offers not yet accepted, declined or rescinded."""
        with self._cond:
            return {oid: o for oid, (_, o) in self._offers.items()}

    def filters(self, framework_id=None, active=True):
        """The framework's refuse filters (Filter), only unexpired ones by default."""
        now = time.monotonic()
        with self._cond:
            fw = self._framework_locked(framework_id)
            return [f for f in fw.filters.values() if not active or f.expires > now]

    def pending_updates(self, task_id=None, framework_id=None):
        """The unacknowledged updates with a uuid (TaskStatus), per the
        status-update manager, in order (the first of each task is in flight)."""
        with self._cond:
            fw = self._framework_locked(framework_id)
            return [p.status for tid, q in fw.updates.items() if task_id is None or tid == task_id for p in q]

    # ------------------------------------------------------------------
    # waits (Condition-based, no polling)

    def wait_subscribed(self, count=1, timeout=10.0):
        """Waits until `count` subscriptions have been answered with SUBSCRIBED
        (written to the stream) and returns the count-th Subscription."""

        def find():
            done = [s for s in self._subscriptions if s.answered is not None and s.refused is None]
            return done[count - 1] if len(done) >= count else None

        return wait_condition(self._cond, find, timeout, f"subscription #{count}")

    def wait_call(self, call_type, predicate=None, timeout=10.0, after=0, status=None):
        """Waits for a request of call_type among calls[after:] whose decoded
        Call satisfies predicate (None = any), optionally answered with
        `status`; returns its CallRecord."""

        def find():
            for c in self._calls[after:]:
                if c.type != call_type or (status is not None and c.status != status):
                    continue
                if predicate is None or (c.call is not None and predicate(c.call)):
                    return c
            return None

        return wait_condition(self._cond, find, timeout, f"a {call_type} call matching {predicate}")

    def wait_launch(self, count=1, timeout=10.0, after=0):
        """Waits until `count` tasks have been launched (among launches[after:])
        and returns their LaunchRecords."""

        def find():
            got = self._launches[after:]
            return got[:count] if len(got) >= count else None

        return wait_condition(self._cond, find, timeout, f"{count} task launch(es)")

    def wait_ack(self, uuid, timeout=10.0):
        """Waits for an accepted ACKNOWLEDGE of the update with this uuid; returns its AckRecord."""
        uuid = bytes(uuid)

        def find():
            return next((a for a in self._acks if a.uuid == uuid and a.accepted), None)

        return wait_condition(self._cond, find, timeout, f"an acknowledgement of uuid {uuid.hex()}")

    def wait_decline(self, offer_id=None, count=1, timeout=10.0, after=0):
        """Waits for the count-th accepted DECLINE (among calls[after:])
        naming offer_id (None = any); returns its CallRecord."""

        def find():
            got = [c for c in self._calls[after:] if c.type == "DECLINE" and c.status == 202 and
                   (offer_id is None or any(o.value == offer_id for o in c.call.decline.offer_ids))]
            return got[count - 1] if len(got) >= count else None

        return wait_condition(self._cond, find, timeout, f"DECLINE #{count} of offer {offer_id}")

    def wait_event(self, event_type, predicate=None, timeout=10.0, after=0):
        """Waits until an event of event_type ("UPDATE", ...) satisfying
        predicate(EventRecord) has been written (among events[after:]); returns it."""

        def find():
            for e in self._events[after:]:
                if e.type == event_type and (predicate is None or predicate(e)):
                    return e
            return None

        return wait_condition(self._cond, find, timeout, f"a {event_type} event matching {predicate}")

    def wait_update_sent(self, task_id, state=None, timeout=10.0, after=0):
        """Waits until an UPDATE of task_id (in `state`, a name) has been written; returns its EventRecord."""
        return self.wait_event("UPDATE", lambda e: e.status.task_id.value == task_id and
                               (state is None or state_name(e.status.state) == state), timeout, after)

    def wait_disconnected(self, framework_id=None, timeout=10.0):
        """Waits until the framework has no live stream."""
        with self._cond:
            fid = framework_id or self._current

        def find():
            fw = self._frameworks.get(fid)
            return fw is None or not fw.connected

        wait_condition(self._cond, find, timeout, f"framework {fid} to be disconnected")

    def wait_removed(self, framework_id=None, timeout=10.0):
        """Waits until the framework has been removed (failover timeout, TEARDOWN)."""
        with self._cond:
            fid = framework_id or self._current
        wait_condition(self._cond, lambda: fid in self._completed, timeout, f"framework {fid} to be removed")

    # ------------------------------------------------------------------
    # request handling (handler threads)

    def _reply(self, handler, status, text="", headers=None):
        body = text.encode()
        handler.send_response(status)
        if body:
            handler.send_header("Content-Type", _PLAIN)
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
                line = handler.rfile.readline(CHUNK_LINE_MAX)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ValueError("malformed chunk size") from None
                if size == 0:
                    while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                if len(body) + size > BODY_MAX:
                    raise ValueError("body too large")
                body += handler.rfile.read(size)
                handler.rfile.readline(8)
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("malformed Content-Length") from None
        if length > BODY_MAX:
            raise ValueError("body too large")
        return handler.rfile.read(length) if length > 0 else b""

    def _record_call_locked(self, handler, call_type, status, reason, call=None, path=None):
        rec = CallRecord(time.monotonic(), call_type, status, reason, call, handler.headers.get("Content-Type"),
                         handler.headers.get("Accept"), handler.headers.get("Mesos-Stream-Id"), path,
                         handler.command)
        self._calls.append(rec)
        self._cond.notify_all()
        return rec

    def _reject(self, handler, status, text, call=None, call_type="?", path=None, headers=None):
        if status == 413:
            handler.close_connection = True
        with self._cond:
            self._record_call_locked(handler, call_type, status, text, call, path)
        kind = "redirect" if status == 307 else "reject"
        self.timeline.record("master", kind, f"status={status} call={call_type} reason={text}")
        self._reply(handler, status, text, headers)

    def _handle(self, handler):
        try:
            self._handle_request(handler)
        except OSError:
            raise
        except Exception as e:  # a bug in the fake: make it visible, and answer
            import traceback
            with self._cond:
                self._errors.append(traceback.format_exc())
            self.timeline.record("master", "internal.error", f"error={e!r}")
            handler.close_connection = True
            try:
                self._reply(handler, 500, f"fake master internal error: {e!r}")
            except OSError:
                pass

    def _handle_request(self, handler):
        path = handler.path.split("?")[0]
        if path not in SCHEDULER_PATHS:
            self._discard_body(handler)
            self._reply(handler, 404)
            return
        with self._cond:
            leader, recovering = self._leader, self._recovering
        if leader is not True:
            self._discard_body(handler)
            if leader is None:
                self._reject(handler, 503, "No leader elected", path=path)
            else:
                self._reject(handler, 307, "", path=path, headers={"Location": f"//{leader[0]}:{leader[1]}{path}"})
            return
        if recovering:
            self._discard_body(handler)
            self._reject(handler, 503, "Master has not finished recovery", path=path)
            return
        if handler.command != "POST":
            self._discard_body(handler)
            self._reject(handler, 405, f"Expecting one of {{ 'POST' }}, but received '{handler.command}'", path=path,
                         headers={"Allow": "POST"})
            return
        try:
            body = self._read_body(handler)
        except ValueError as e:
            handler.close_connection = True
            self._reject(handler, 413 if "large" in str(e) else 400, f"Request body: {e}", path=path)
            return

        ctype = handler.headers.get("Content-Type")
        call = Call()
        if ctype is None:
            self._reject(handler, 400, "Expecting 'Content-Type' to be present", path=path)
            return
        if ctype == PROTOBUF:
            try:
                call.ParseFromString(body)
                ok = call.IsInitialized()
            except DecodeError:
                ok = False
            if not ok:
                self._reject(handler, 400, "Failed to parse body into Call protobuf", path=path)
                return
        elif ctype == JSON:
            try:
                doc = json.loads(body)
            except ValueError as e:
                self._reject(handler, 400, f"Failed to parse body into JSON: {e}", path=path)
                return
            try:
                json_format.ParseDict(doc, call, ignore_unknown_fields=True)
                missing = call.FindInitializationErrors()
            except (json_format.ParseError, TypeError, ValueError, AttributeError) as e:
                missing = [str(e)]
            if missing:
                self._reject(handler, 400, f"Failed to convert JSON into Call protobuf: {', '.join(missing)}",
                             path=path)
                return
        else:
            self._reject(handler, 415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}", path=path)
            return

        name = Call.Type.Name(call.type) if call.HasField("type") else "?"
        error = validate_call(call)
        if error is not None:
            self._reject(handler, 400, f"Failed to validate scheduler::Call: {error}", call, name, path)
            return

        stream_id = handler.headers.get("Mesos-Stream-Id")
        if call.type == Call.SUBSCRIBE:
            accept = handler.headers.get("Accept")
            if accepts(accept, JSON):
                media = JSON
            elif accepts(accept, PROTOBUF):
                media = PROTOBUF
            else:
                self._reject(handler, 406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'", call, name, path)
                return
            if stream_id is not None:
                self._reject(handler, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header", call,
                             name, path)
                return
            self._subscribe(handler, call, media, path)
            return

        fid = call.framework_id.value
        with self._cond:
            fw = self._frameworks.get(fid)
            if fw is None:
                verdict = (400, "Framework cannot be found")
            elif not fw.connected:
                verdict = (403, "Framework is not subscribed")
            elif stream_id is None:
                verdict = (400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
            elif stream_id != fw.stream.sub.stream_id:
                verdict = (400, f"The stream ID '{stream_id}' included in this request didn't match the stream ID "
                                f"currently associated with framework ID {fid}")
            elif call.type == Call.UNKNOWN:
                verdict = (501, "")
            else:
                verdict = None
                self._apply_locked(handler, fw, call, name, path)
        if verdict is not None:
            self._reject(handler, verdict[0], verdict[1], call, name, path)
        else:
            self._reply(handler, 202)

    def _discard_body(self, handler):
        try:
            self._read_body(handler)
        except ValueError:
            handler.close_connection = True

    def _apply_locked(self, handler, fw, call, name, path):
        """Records the call and applies it; the caller answers 202. The call is
        recorded before the answer (a test that got its 202 sees it) and the
        events it causes are queued before the 202 is written."""
        self.timeline.record("master", f"call.{name}", _call_detail(call))
        self._record_call_locked(handler, name, 202, "", call, path)
        t = call.type
        if t == Call.TEARDOWN:
            if fw.stream is not None:
                self._end_stream_locked(fw.stream, "end", "framework torn down")
            self._remove_framework_locked(fw, "teardown")
        elif t == Call.ACCEPT:
            self._accept_locked(fw, call.accept)
        elif t == Call.DECLINE:
            self._decline_locked(fw, call.decline)
        elif t == Call.REVIVE:
            fw.filters.clear()
            fw.suppressed = False
            self.timeline.record("master", "filter", f"framework={fw.id} cleared=revive")
        elif t == Call.SUPPRESS:
            fw.suppressed = True
        elif t == Call.KILL:
            self._kill_locked(fw, call.kill)
        elif t == Call.ACKNOWLEDGE:
            self._acknowledge_locked(fw, call.acknowledge)
        elif t == Call.RECONCILE:
            if self._held_reconciles is not None:
                self._held_reconciles.append((fw, call.reconcile))
            else:
                self._reconcile_locked(fw, call.reconcile)
        # SHUTDOWN, MESSAGE, REQUEST: recorded only (no executors to reach).
        self._cond.notify_all()

    # ------------------------------------------------------------------
    # subscription

    def _new_framework_id_locked(self):
        fid = f"{self._master_id}-{self._next_framework:04d}"
        self._next_framework += 1
        return fid

    def _master_info_locked(self):
        info = mesos_pb2.MasterInfo(id=self._master_id, port=self.port, hostname="127.0.0.1",
                                    pid=f"master@127.0.0.1:{self.port}", version=MESOS_VERSION)
        # Network byte order read as a host integer, as the master fills it.
        info.ip = struct.unpack("=I", socket.inet_aton("127.0.0.1"))[0]
        info.address.hostname = "127.0.0.1"
        info.address.ip = "127.0.0.1"
        info.address.port = self.port
        return info

    def _subscribe(self, handler, call, media, path):
        sock = handler.connection
        stream_id = str(uuidlib.uuid4())
        given = call.framework_id.value if call.HasField("framework_id") else ""
        info = mesos_pb2.FrameworkInfo.FromString(call.subscribe.framework_info.SerializeToString())
        self.timeline.record("master", "call.SUBSCRIBE", _call_detail(call))
        with self._cond:
            removed = given and given in self._completed
            fid = given or self._new_framework_id_locked()
            sub = Subscription(len(self._subscriptions) + 1, fid, stream_id, call, time.monotonic(), media,
                               bool(given))
            self._subscriptions.append(sub)
            self._record_call_locked(handler, "SUBSCRIBE", 200, "", call, path)
            if removed:
                fw = None
                stream = _Stream(None, sub, sock)
                ev = Event(type=Event.ERROR)
                ev.error.message = sub.refused = "Framework has been removed"
                self._enqueue_locked(stream, "event", ev)
                stream.closing, stream.reason = "end", "framework has been removed"
            else:
                fw = self._frameworks.get(fid)
                if fw is None:
                    fw = _Framework(fid, info)
                    self._frameworks[fid] = fw
                else:
                    # As the master: user and checkpoint cannot change on re-subscription.
                    info.user, info.checkpoint = fw.info.user, fw.info.checkpoint
                    if fw.stream is not None:
                        old = fw.stream
                        if old.live:
                            ev = Event(type=Event.ERROR)
                            ev.error.message = "Framework failed over"
                            self._enqueue_locked(old, "event", ev)
                        self._end_stream_locked(old, "end", f"replaced by subscription {sub.number}")
                info.id.value = fid
                fw.info = info
                self._current = fid
                if fw.failover_timer is not None:
                    fw.failover_timer.cancel()
                    fw.failover_timer = None
                fw.disconnected_at = None
                self._invalidate_offers_locked(fw, "re-subscription")
                fw.suppressed = bool(call.subscribe.suppressed_roles)
                stream = _Stream(fw, sub, sock)
                fw.stream = stream
                ev = Event(type=Event.SUBSCRIBED)
                ev.subscribed.framework_id.value = fid
                ev.subscribed.heartbeat_interval_seconds = self._heartbeat_interval
                ev.subscribed.master_info.CopyFrom(self._master_info_locked())
                self._enqueue_locked(stream, "event", ev)
                self._heartbeat_locked(stream)
            self._cond.notify_all()

        handler.send_response(200)
        handler.send_header("Content-Type", media)
        handler.send_header("Mesos-Stream-Id", stream_id)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.close_connection = True
        self.timeline.record("master", "stream.open", f"framework={fid} subscription={sub.number} media={media} "
                                                      f"stream_id={stream_id}")
        watcher = threading.Thread(target=self._watch_client, args=(stream,), daemon=True,
                                   name=f"master-stream-watch-{sub.number}")
        watcher.start()
        with self._cond:
            self._streams.add(stream)
        try:
            sock.settimeout(SEND_TIMEOUT)
            self._write_stream(handler, stream)
        finally:
            try:
                sock.shutdown(socket.SHUT_RD)  # wakes the watcher
            except OSError:
                pass
            with self._cond:
                self._streams.discard(stream)
                if stream.closing is None:
                    stream.closing = "close"
                sub.ended, sub.end_reason = time.monotonic(), stream.reason
                if fw is not None and fw.stream is stream:
                    self._disconnect_locked(fw, stream.reason or "stream closed")
                self._cond.notify_all()
            self.timeline.record("master", "stream.closed",
                                 f"framework={fid} subscription={sub.number} reason={stream.reason}")

    def _heartbeat_locked(self, stream):
        """Sends a HEARTBEAT (unless disabled or paused) and schedules the next."""
        if not stream.live:
            return
        if self._heartbeats and not self._heartbeats_paused:
            self._enqueue_locked(stream, "event", Event(type=Event.HEARTBEAT))
        self._schedule_locked(self._heartbeat_interval, lambda: self._heartbeat_locked(stream))

    def _watch_client(self, stream):
        """Notices the scheduler closing its end of the stream."""
        while True:
            try:
                data = stream.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
        with self._cond:
            self._end_stream_locked(stream, "close", stream.reason or "scheduler closed the connection")
            fw = stream.framework
            if fw is not None and fw.stream is stream:
                self._disconnect_locked(fw, stream.reason)

    def _write_stream(self, handler, stream):
        """Writes what is queued, a batch at a time (one HTTP chunk per event
        or raw piece, one socket write per batch), until the stream ends."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: stream.queue or stream.closing)
                if stream.closing in ("close", "reset"):
                    how, batch = stream.closing, None
                elif stream.queue:
                    how = None
                    batch = [stream.queue.popleft() for _ in range(min(len(stream.queue), WRITE_BATCH_MAX))]
                else:
                    how, batch = "end", None
            if how is not None:
                self._finish_stream(handler, stream, how)
                return
            out = bytearray()
            for kind, payload in batch:
                # Recorded before the write: the scheduler may react (and its
                # next call be recorded) before a record made after it.
                if kind == "event":
                    out += self._chunks(recordio.encode(encode_event(payload, stream.sub.media_type)))
                    self.timeline.record("master", f"event.{Event.Type.Name(payload.type)}", _event_detail(payload))
                else:
                    out += self._chunks(payload)
                    self.timeline.record("master", "event.raw", f"bytes={len(payload)}")
            try:
                handler.wfile.write(out)
            except OSError as e:
                self.timeline.record("master", "stream.write_failed", f"subscription={stream.sub.number} error={e}")
                with self._cond:
                    self._end_stream_locked(stream, "close", stream.reason or "write failed: scheduler gone")
                return
            with self._cond:
                now = time.monotonic()
                for kind, payload in batch:
                    if kind == "event":
                        self._events.append(EventRecord(now, stream.sub.framework_id, stream.sub.number, payload))
                if stream.sub.answered is None:
                    stream.sub.answered = now
                self._cond.notify_all()

    def _chunks(self, data):
        """data as HTTP chunks of at most chunk_size bytes."""
        step = self.chunk_size or len(data)
        return b"".join(b"%x\r\n" % len(data[i : i + step]) + data[i : i + step] + b"\r\n"
                        for i in range(0, len(data), step))

    def _finish_stream(self, handler, stream, how):
        if how == "end":
            try:
                handler.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif how == "reset":
            self._mark_reset(stream.sock)

    def _enqueue_locked(self, stream, kind, payload):
        stream.queue.append((kind, payload))
        self._cond.notify_all()

    def _end_stream_locked(self, stream, how, reason):
        if stream.closing is None:
            stream.closing, stream.reason = how, reason
        self._cond.notify_all()

    def _emit_locked(self, fw, event):
        """Queues an event for the framework; False (and nothing sent) when it
        is disconnected, as the master drops messages to such frameworks."""
        if not fw.connected:
            return False
        self._enqueue_locked(fw.stream, "event", event)
        return True

    def _disconnect_locked(self, fw, reason, failover=True):
        """The framework lost its stream: offers die, and (failover=True) the
        failover timer starts."""
        if fw.stream is not None:
            self._end_stream_locked(fw.stream, "close", reason)
            fw.stream = None
        fw.disconnected_at = time.monotonic()
        self._invalidate_offers_locked(fw, "disconnection")
        timeout = fw.info.failover_timeout
        self.timeline.record("master", "framework.disconnected",
                             f"framework={fw.id} reason={reason} failover_timeout={timeout:g}")
        if failover:
            if fw.failover_timer is not None:
                fw.failover_timer.cancel()
            fw.failover_timer = self._schedule_locked(max(0.0, timeout),
                                                      lambda: self._failover_expired_locked(fw))
        self._cond.notify_all()

    def _failover_expired_locked(self, fw):
        if self._frameworks.get(fw.id) is fw and not fw.connected:
            self._remove_framework_locked(fw, "failover timeout")

    def _remove_framework_locked(self, fw, why):
        """The framework is gone for good: its tasks are killed and forgotten."""
        if fw.failover_timer is not None:
            fw.failover_timer.cancel()
            fw.failover_timer = None
        self._invalidate_offers_locked(fw, why)
        killed = sorted(t for t, task in fw.tasks.items() if not is_terminal(task.state))
        for tid in list(fw.tasks):
            self._remove_task_locked(fw, tid)
        for q in fw.updates.values():
            for p in q:
                if p.timer is not None:
                    p.timer.cancel()
        fw.updates.clear()
        if fw.stream is not None:
            self._end_stream_locked(fw.stream, "end", why)
            fw.stream = None
        self._frameworks.pop(fw.id, None)
        self._completed[fw.id] = fw
        self.timeline.record("master", "framework.removed",
                             f"framework={fw.id} why={why} killed={','.join(killed) or '-'}")
        self._cond.notify_all()

    # ------------------------------------------------------------------
    # offers

    def _agent_locked(self, agent_id, hostname=None):
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = _Agent(agent_id, hostname or agent_id)
        elif hostname:
            agent.hostname = hostname
        return agent

    def _format_resource(self, fw, res, alloc_role):
        """res in the format fw's capabilities ask for (reservation refinement,
        allocation info), as the master converts offers."""
        out = mesos_pb2.Resource()
        out.CopyFrom(res)
        stack = _reservation_stack(res)
        out.ClearField("role")
        out.ClearField("reservation")
        del out.reservations[:]
        caps = fw.capabilities
        if "RESERVATION_REFINEMENT" in caps:
            for rtype, role, principal, labels in stack:
                ri = out.reservations.add(type=rtype, role=role)
                if principal:
                    ri.principal = principal
                if labels:
                    ri.labels.ParseFromString(labels)
        elif stack:
            rtype, role, principal, labels = stack[-1]
            out.role = role
            if rtype == ReservationInfo.DYNAMIC:
                out.reservation.SetInParent()
                if principal:
                    out.reservation.principal = principal
                if labels:
                    out.reservation.labels.ParseFromString(labels)
        if "MULTI_ROLE" in caps:
            out.allocation_info.role = stack[-1][1] if stack else alloc_role
        else:
            out.ClearField("allocation_info")
        return out

    def _send_offers_locked(self, fw, offers):
        ev = Event(type=Event.OFFERS)
        sent = []
        alloc_role = fw.roles()[0]
        for spec in offers:
            offer = mesos_pb2.Offer()
            offer.CopyFrom(spec)
            if not offer.id.value:
                offer.id.value = f"{self._master_id}-O{self._next_offer}"
                self._next_offer += 1
            offer.framework_id.value = fw.id
            agent = self._agent_locked(offer.agent_id.value, offer.hostname)
            resources = [self._format_resource(fw, r, alloc_role) for r in spec.resources]
            del offer.resources[:]
            offer.resources.extend(resources)
            if "MULTI_ROLE" in fw.capabilities:
                roles = {r.allocation_info.role for r in resources}
                offer.allocation_info.role = roles.pop() if len(roles) == 1 else alloc_role
            else:
                offer.ClearField("allocation_info")
            if not offer.HasField("url"):
                offer.url.scheme = "http"
                offer.url.address.hostname = agent.hostname
                offer.url.address.ip = "127.0.0.1"
                offer.url.address.port = AGENT_PORT
                offer.url.path = "/slave(1)"
            del offer.executor_ids[:]
            for (f, eid) in sorted(agent.executors):
                if f == fw.id:
                    offer.executor_ids.add(value=eid)
            self._offers[offer.id.value] = (fw.id, offer)
            ev.offers.offers.append(offer)
            sent.append(offer)
        if sent:
            self._emit_locked(fw, ev)
        return sent

    def _invalidate_offers_locked(self, fw, why):
        gone = [oid for oid, (f, _) in self._offers.items() if f == fw.id]
        for oid in gone:
            del self._offers[oid]
        if gone:
            self.timeline.record("master", "offers.invalidated",
                                 f"framework={fw.id} why={why} offers={','.join(gone)}")

    def _used_on_agent_locked(self, agent):
        used = _Bag()
        for fw in self._frameworks.values():
            for task in fw.tasks.values():
                if task.agent_id == agent.id and task.info is not None and not is_terminal(task.state):
                    used.add_bag(_Bag(task.info.resources))
        for info, tasks in agent.executors.values():
            if tasks:
                used.add_bag(_Bag(info.resources))
        for _, offer in self._offers.values():
            if offer.agent_id.value == agent.id:
                used.add_bag(_Bag(offer.resources))
        return used

    def _offer_cycle_locked(self, framework_id=None):
        now = time.monotonic()
        sent = []
        targets = [self._frameworks[framework_id]] if framework_id else list(self._frameworks.values())
        for fw in targets:
            if not fw.connected or fw.suppressed:
                continue
            roles = set(fw.roles())
            batch = []
            for agent in self._agents.values():
                if agent.template is None or agent.state != "registered":
                    continue
                if any(f == fw.id and o.agent_id.value == agent.id for f, o in self._offers.values()):
                    continue
                flt = fw.filters.get(agent.id)
                if flt is not None and flt.expires > now:
                    continue
                free = _Bag(r for r in agent.template.resources
                            if not _reservation_stack(r) or _reservation_stack(r)[-1][1] in roles)
                free.subtract_clamped(self._used_on_agent_locked(agent))
                if free.empty():
                    continue
                offer = mesos_pb2.Offer()
                offer.CopyFrom(agent.template)
                offer.ClearField("id")
                del offer.resources[:]
                offer.resources.extend(free.resources())
                batch.append(offer)
            sent.extend(self._send_offers_locked(fw, batch))
        return sent

    def _auto_offer_tick(self):
        if self._auto_offer is None:
            return
        self._offer_cycle_locked()
        interval = self._auto_offer[0]
        self._auto_offer = (interval, self._schedule_locked(interval, self._auto_offer_tick))

    def _add_filter_locked(self, fw, agent_id, filters, has_filters, via):
        seconds = filters.refuse_seconds if has_filters else DEFAULT_REFUSE_SECONDS
        if not math.isfinite(seconds) or seconds < 0:
            seconds = DEFAULT_REFUSE_SECONDS
        seconds = min(seconds, REFUSE_SECONDS_MAX)
        if seconds == 0:
            return
        now = time.monotonic()
        fw.filters[agent_id] = Filter(fw.id, agent_id, seconds, now, now + seconds, via)
        self.timeline.record("master", "filter", f"framework={fw.id} agent={agent_id} refuse={seconds:g} via={via}")

    def _decline_locked(self, fw, decline):
        for oid in decline.offer_ids:
            entry = self._offers.get(oid.value)
            if entry is None or entry[0] != fw.id:
                continue  # as the master: a decline of an invalid offer is ignored
            del self._offers[oid.value]
            self._add_filter_locked(fw, entry[1].agent_id.value, decline.filters, decline.HasField("filters"),
                                    "DECLINE")

    def _validate_offers_locked(self, fw, offer_ids):
        seen = set()
        for oid in offer_ids:
            if oid in seen:
                return f"Duplicate offer {oid} in offer list"
            seen.add(oid)
        for oid in offer_ids:
            if oid not in self._offers:
                return f"Offer {oid} is no longer valid"
        for oid in offer_ids:
            owner = self._offers[oid][0]
            if owner != fw.id:
                return f"Offer {oid} has invalid framework {owner} while framework {fw.id} is expected"
        first = None
        for oid in offer_ids:
            agent = self._offers[oid][1].agent_id.value
            first = first or agent
            if agent != first:
                return f"Aggregated offers must belong to one single agent. Offer {oid} uses agent {agent} and " \
                       f"agent {first}"
        return None

    def _accept_locked(self, fw, accept):
        offer_ids = [o.value for o in accept.offer_ids]
        error = "No offers specified" if not offer_ids else self._validate_offers_locked(fw, offer_ids)
        offered, agent_id = _Bag(), None
        for oid in offer_ids:
            entry = self._offers.get(oid)
            if entry is not None and entry[0] == fw.id:
                del self._offers[oid]
                agent_id = entry[1].agent_id.value
                offered.add_bag(_Bag(entry[1].resources))
        Op = mesos_pb2.Offer.Operation
        launches = [ti for op in accept.operations if op.type == Op.LAUNCH for ti in op.launch.task_infos]
        launches += [ti for op in accept.operations if op.type == Op.LAUNCH_GROUP
                     for ti in op.launch_group.task_group.tasks]
        if error is not None:
            self.timeline.record("master", "accept.invalid", f"framework={fw.id} error={error}")
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for ti in launches:
                st = self._master_status(ti.task_id.value, state, ti.agent_id.value,
                                         f"Task launched with invalid offers: {error}", "REASON_INVALID_OFFERS")
                self._deliver_locked(fw, st)
            return
        for op in accept.operations:
            if op.type != mesos_pb2.Offer.Operation.LAUNCH:
                kind = mesos_pb2.Offer.Operation.Type.Name(op.type) if op.HasField("type") else "UNKNOWN"
                self.timeline.record("master", "operation.unsupported", f"framework={fw.id} type={kind}")
                continue
            for ti in op.launch.task_infos:
                self._launch_locked(fw, agent_id, offer_ids, ti, offered)
        if not offered.empty():
            self._add_filter_locked(fw, agent_id, accept.filters, accept.HasField("filters"), "ACCEPT")

    def _validate_task_locked(self, fw, agent_id, task, offered):
        """validation::task::validate: (error, total resources)."""
        tid = task.task_id.value
        err = _validate_id(tid)
        if err:
            return f"'TaskID.value' is invalid: {err}", None
        if tid in fw.tasks:
            return f"Task has duplicate ID: {tid}", None
        if task.agent_id.value != agent_id:
            return f"Task uses invalid agent {task.agent_id.value} while agent {agent_id} is expected", None
        if task.kill_policy.grace_period.nanoseconds < 0:
            return "Task's 'kill_policy.grace_period' must be non-negative", None
        if task.HasField("health_check"):
            err = _validate_health_check(task.health_check)
            if err:
                return f"Task uses invalid health check: {err}", None
        if not task.resources:
            return "Task uses no resources", None
        for res in task.resources:
            err = _validate_resource(res)
            if err:
                return f"Task uses invalid resources: Invalid resources: {err}", None
        if task.HasField("executor") == task.HasField("command"):
            return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present", None
        total = _Bag(task.resources)
        if task.HasField("executor"):
            ex = task.executor
            ET = mesos_pb2.ExecutorInfo
            if ex.type == ET.DEFAULT and ex.HasField("command"):
                return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor", None
            if ex.type == ET.CUSTOM and not ex.HasField("command"):
                return "'ExecutorInfo.command' must be set for 'CUSTOM' executor", None
            err = _validate_id(ex.executor_id.value)
            if err:
                return f"'ExecutorID.value' is invalid: {err}", None
            if ex.shutdown_grace_period.nanoseconds < 0:
                return "ExecutorInfo's 'shutdown_grace_period' must be non-negative", None
            if ex.framework_id.value != fw.id:
                return (f"ExecutorInfo has an invalid FrameworkID (Actual: {ex.framework_id.value} vs Expected: "
                        f"{fw.id})"), None
            for res in ex.resources:
                err = _validate_resource(res)
                if err:
                    return f"Executor uses invalid resources: Invalid resources: {err}", None
            existing = self._agents[agent_id].executors.get((fw.id, ex.executor_id.value))
            if existing is not None and existing[1] and existing[0] != ex:
                return "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID).", None
            if ex.HasField("type") and ex.type != ET.CUSTOM:
                return "'ExecutorInfo.type' must be 'CUSTOM'", None
            if not ex.HasField("command"):
                return "'ExecutorInfo.command' must be set", None
            if existing is None or not existing[1]:
                total.add_bag(_Bag(ex.resources))
        if not offered.contains(total):
            return f"Total resources {total} required by task and its executor is more than available {offered}", None
        return None, total

    def _launch_locked(self, fw, agent_id, offer_ids, ti, offered):
        task = mesos_pb2.TaskInfo()
        task.CopyFrom(ti)
        if task.HasField("executor") and not task.executor.HasField("framework_id"):
            task.executor.framework_id.value = fw.id  # the master fills it in
        error, total = self._validate_task_locked(fw, agent_id, task, offered)
        tid = task.task_id.value
        if error is not None:
            self.timeline.record("master", "task.invalid", f"task={tid} error={error}")
            self._deliver_locked(fw, self._master_status(tid, "TASK_ERROR", task.agent_id.value, error,
                                                         "REASON_TASK_INVALID"))
            return
        offered.subtract(total)
        # A command task runs under the command executor, whose id is the task's.
        eid = task.executor.executor_id.value if task.HasField("executor") else tid
        if task.HasField("executor"):
            slot = self._agents[agent_id].executors.setdefault((fw.id, eid), [task.executor, set()])
            slot[0] = task.executor
            slot[1].add(tid)
        mt = MasterTask(tid, fw.id, agent_id, "TASK_STAGING", executor_id=eid, info=task, origin="launch")
        fw.tasks[tid] = mt
        self._launches.append(LaunchRecord(time.monotonic(), fw.id, agent_id, list(offer_ids), task))
        self.timeline.record("master", "launch", f"framework={fw.id} task={tid} agent={agent_id} executor={eid}")
        if self._auto_run.enabled:
            fid, cfg = fw.id, self._auto_run
            self._schedule_locked(cfg.delay, lambda: self._auto_run_locked(fid, tid, cfg))

    def _auto_run_locked(self, fid, tid, cfg):
        fw = self._frameworks.get(fid)
        task = fw.tasks.get(tid) if fw is not None else None
        if task is None or task.kill_requested or task.state != "TASK_STAGING":
            return
        has_check = task.info is not None and task.info.HasField("health_check")
        rec = {"healthy": True if has_check else None, "registered": True, "registration": "registered",
               "service_id": tid, "registered_at_ms": int(time.time() * 1000)}
        given = cfg.record(task.info) if callable(cfg.record) else cfg.record
        if isinstance(given, (bytes, bytearray)):
            data = bytes(given)
        else:
            rec.update(given or {})
            data = status_record(**rec)
        healthy = cfg.healthy if cfg.healthy is not None else (rec.get("healthy") if has_check else None)
        if cfg.starting:
            self._submit_update_locked(fw, self._build_status_locked(fw, tid, "TASK_STARTING"))
        self._submit_update_locked(fw, self._build_status_locked(fw, tid, "TASK_RUNNING", data=data,
                                                                 healthy=healthy))

    # ------------------------------------------------------------------
    # status updates

    def _framework_locked(self, framework_id):
        fid = framework_id or self._current
        fw = self._frameworks.get(fid) if fid is not None else None
        if fw is None:
            raise NotSubscribed(f"no framework {fid!r} known to the master")
        return fw

    def _master_status(self, task_id, state, agent_id, message, reason):
        st = TaskStatus(state=_state_value(state), source=TaskStatus.SOURCE_MASTER, message=message,
                        reason=_reason_value(reason), timestamp=time.time())
        st.task_id.value = task_id
        if agent_id:
            st.agent_id.value = agent_id
        return st

    def _build_status_locked(self, fw, task_id, state, agent_id=None, healthy=None, data=None, uuid=True,
                             reason=None, message=None, source="SOURCE_EXECUTOR", executor_id=None, labels=None,
                             timestamp=None):
        task = fw.tasks.get(task_id)
        st = TaskStatus(state=_state_value(state), source=_source_value(source))
        st.task_id.value = task_id
        st.timestamp = time.time() if timestamp is None else timestamp
        agent = agent_id or (task.agent_id if task is not None else None)
        if agent:
            st.agent_id.value = agent
            self._agent_locked(agent)  # an agent that sends updates is registered
        eid = executor_id or (task.executor_id if task is not None else None)
        if eid and st.source != TaskStatus.SOURCE_MASTER:
            st.executor_id.value = eid
        if healthy is not None:
            st.healthy = healthy
        if data is not None:
            st.data = status_record(**data) if isinstance(data, dict) else bytes(data)
        if reason is not None:
            st.reason = _reason_value(reason)
        if message is not None:
            st.message = message
        if labels:
            st.labels.CopyFrom(_labels(labels))
        if uuid is True:
            st.uuid = uuidlib.uuid4().bytes
        elif uuid:
            st.uuid = bytes(uuid)
        return st

    def _submit_update_locked(self, fw, status):
        """Into the status-update manager: without uuid straight out; with one
        queued per task, sent when first in line (or at once without hold-back)."""
        if not status.HasField("uuid"):
            self._deliver_locked(fw, status)
            return
        tid = status.task_id.value
        queue = fw.updates.setdefault(tid, collections.deque())
        pending = _PendingUpdate(status, self._retry_interval)
        queue.append(pending)
        if self._hold_back and len(queue) > 1:
            self.timeline.record("master", "update.held", f"{_status_detail(status)} behind={len(queue) - 1}")
            return
        self._attempt_locked(fw, pending)

    def _attempt_locked(self, fw, pending):
        pending.attempts += 1
        if pending.attempts > 1:
            self.timeline.record("master", "update.retry",
                                 f"{_status_detail(pending.status)} attempt={pending.attempts}")
        self._deliver_locked(fw, pending.status)
        delay = pending.interval
        pending.interval = min(pending.interval * 2, self._retry_max)
        pending.timer = self._schedule_locked(delay, lambda: self._retry_locked(fw, pending))

    def _retry_locked(self, fw, pending):
        queue = fw.updates.get(pending.status.task_id.value)
        if queue is not None and pending in queue and self._frameworks.get(fw.id) is fw:
            self._attempt_locked(fw, pending)

    def _deliver_locked(self, fw, status):
        """An update reaches the master: the task's state follows it, and it is
        forwarded to the framework (dropped when disconnected)."""
        tid = status.task_id.value
        task = fw.tasks.get(tid)
        if task is not None:
            task.state = state_name(status.state)
            task.statuses.append(status)
            if status.HasField("healthy"):
                task.healthy = status.healthy
        ev = Event(type=Event.UPDATE)
        ev.update.status.CopyFrom(status)
        if not self._emit_locked(fw, ev):
            self.timeline.record("master", "update.dropped", f"framework={fw.id} {_status_detail(status)}")
        if task is not None and is_terminal(status.state) and not status.HasField("uuid"):
            self._remove_task_locked(fw, tid)

    def _remove_task_locked(self, fw, tid):
        task = fw.tasks.pop(tid, None)
        if task is None:
            return
        agent = self._agents.get(task.agent_id)
        if agent is not None and task.executor_id is not None:
            slot = agent.executors.get((fw.id, task.executor_id))
            if slot is not None:
                slot[1].discard(tid)
                if not slot[1]:
                    del agent.executors[(fw.id, task.executor_id)]

    def _acknowledge_locked(self, fw, ack):
        tid, aid, u = ack.task_id.value, ack.agent_id.value, bytes(ack.uuid)
        queue = fw.updates.get(tid) or collections.deque()
        match = next((p for p in queue if p.status.uuid == u), None)
        reason = ""
        if aid not in self._agents:
            reason = f"agent {aid} is not registered"
        elif match is None:
            reason = "no unacknowledged update with this uuid"
        elif match.status.agent_id.value != aid:
            reason = f"the update is of agent {match.status.agent_id.value}, not {aid}"
        elif self._hold_back and queue[0] is not match:
            reason = f"unexpected acknowledgement: expecting uuid {queue[0].status.uuid.hex()}"
        accepted = not reason
        self._acks.append(AckRecord(time.monotonic(), fw.id, aid, tid, u, accepted, reason))
        if not accepted:
            self.timeline.record("master", "ack.ignored", f"task={tid} uuid={u.hex()} reason={reason}")
            return
        self.timeline.record("master", "ack", f"task={tid} uuid={u.hex()}")
        queue.remove(match)
        if match.timer is not None:
            match.timer.cancel()
        if not queue:
            fw.updates.pop(tid, None)
        task = fw.tasks.get(tid)
        if task is not None and is_terminal(match.status.state) and task.statuses and \
                task.statuses[-1].uuid == u:
            self._remove_task_locked(fw, tid)
        if self._hold_back and queue:
            self._attempt_locked(fw, queue[0])

    # ------------------------------------------------------------------
    # kill and reconciliation

    def _kill_locked(self, fw, kill):
        tid = kill.task_id.value
        task = fw.tasks.get(tid)
        if task is None:
            aid = kill.agent_id.value if kill.HasField("agent_id") else None
            self.timeline.record("master", "kill", f"task={tid} known=False")
            st = self._reconcile_one_locked(fw, tid, aid)
            if st is not None:
                self._deliver_locked(fw, st)
            return
        task.kill_requested = True
        self.timeline.record("master", "kill", f"task={tid} known=True state={task.state}")
        if not self._auto_kill or is_terminal(task.state):
            return
        if self._kill_via_killing and "TASK_KILLING_STATE" in fw.capabilities:
            self._submit_update_locked(fw, self._build_status_locked(fw, tid, "TASK_KILLING"))
        self._submit_update_locked(fw, self._build_status_locked(fw, tid, "TASK_KILLED",
                                                                 message="Task killed by the fake agent"))

    def _reconcile_one_locked(self, fw, tid, aid):
        """The explicit-reconciliation answer for one task, or None (no answer)."""
        task = fw.tasks.get(tid)
        if task is not None:
            st = self._master_status(tid, task.state, task.agent_id, "Reconciliation: Latest task state",
                                     "REASON_RECONCILIATION")
            if task.executor_id:
                st.executor_id.value = task.executor_id
            if task.healthy is not None:
                st.healthy = task.healthy
            return st
        agent = self._agents.get(aid) if aid else None
        pa = fw.partition_aware
        if agent is not None and agent.state == "recovering":
            return None
        if agent is not None and agent.state == "registered":
            state, msg = ("TASK_GONE" if pa else "TASK_LOST"), "Reconciliation: Task is unknown to the agent"
        elif agent is not None and agent.state == "unreachable":
            state, msg = ("TASK_UNREACHABLE" if pa else "TASK_LOST"), "Reconciliation: Task is unreachable"
        elif agent is not None and agent.state == "gone":
            state, msg = ("TASK_GONE_BY_OPERATOR" if pa else "TASK_LOST"), "Reconciliation: Task is gone"
        else:
            state, msg = ("TASK_UNKNOWN" if pa else "TASK_LOST"), "Reconciliation: Task is unknown"
        st = self._master_status(tid, state, aid, msg, "REASON_RECONCILIATION")
        if state == "TASK_UNREACHABLE":
            st.unreachable_time.nanoseconds = int(time.time() * 1e9)
        return st

    def _reconcile_locked(self, fw, reconcile):
        if not reconcile.tasks:
            for tid in sorted(fw.tasks):
                self._deliver_locked(fw, self._reconcile_one_locked(fw, tid, None))
            return
        for rt in reconcile.tasks:
            aid = rt.agent_id.value if rt.HasField("agent_id") else None
            st = self._reconcile_one_locked(fw, rt.task_id.value, aid)
            if st is not None:
                self._deliver_locked(fw, st)

    # ------------------------------------------------------------------
    # timers (one thread; callbacks run with self._cond held)

    def _schedule_locked(self, delay, fn):
        timer = _Timer(time.monotonic() + delay, fn)
        self._timer_seq += 1
        heapq.heappush(self._timers, (timer.deadline, self._timer_seq, timer))
        self._cond.notify_all()
        return timer

    def _tick_loop(self):
        with self._cond:
            while not self._ticker_stop:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, timer = heapq.heappop(self._timers)
                    if timer.cancelled:
                        continue
                    timer.cancelled = True
                    try:
                        timer.fn()
                    except Exception as e:  # a bug in the fake: make it visible
                        import traceback
                        self._errors.append(traceback.format_exc())
                        self.timeline.record("master", "internal.error", f"error={e!r}")
                while self._timers and self._timers[0][2].cancelled:
                    heapq.heappop(self._timers)
                timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                if timeout is None or timeout > 0:
                    self._cond.wait(timeout)
