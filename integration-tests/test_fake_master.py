"""Tests of the Mesos master double (fakes/mesos_master.py), driven by a
plain Python scheduler client over http.client: the scheduler API's
transport rules and status codes, subscription and failover, offers and
launches, the status-update manager, reconciliation, kills, heartbeats and
the scenario controls the scheduler's tests rely on."""

import http.client
import json
import os
import socket
import threading
import time
import uuid as uuidlib

import pytest
from google.protobuf import json_format

from fakes import recordio
from fakes.mesos_master import (JSON, PROTOBUF, Call, Event, FakeMaster, NotSubscribed, TaskStatus, WaitTimeout,
                                make_offer, mesos_pb2, parse_status_record, state_name, status_record)
from harness import wait_condition, wait_for

HTTP_TIMEOUT = 10.0
PATH = "/api/v1/scheduler"
Cap = mesos_pb2.FrameworkInfo.Capability


# --------------------------------------------------------------------------
# A minimal scheduler-side client


def framework_info(fid=None, name="pacer-test", user="root", failover_timeout=3600.0,
                   caps=("TASK_KILLING_STATE",), roles=None, role=None):
    info = mesos_pb2.FrameworkInfo(user=user, name=name, failover_timeout=failover_timeout, checkpoint=True)
    if fid is not None:
        info.id.value = fid
    for c in caps:
        info.capabilities.add(type=Cap.Type.Value(c))
    if roles:
        info.roles.extend(roles)
    if role is not None:
        info.role = role
    return info


def subscribe_call(fid=None, suppressed_roles=(), **kw):
    call = Call(type=Call.SUBSCRIBE)
    if fid is not None:
        call.framework_id.value = fid
    call.subscribe.framework_info.CopyFrom(framework_info(fid, **kw))
    call.subscribe.suppressed_roles.extend(suppressed_roles)
    return call


def make_call(call_type, fid):
    call = Call(type=call_type)
    call.framework_id.value = fid
    return call


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self):
        return self.body.decode()

    def __repr__(self):
        return f"<Resp {self.status} {self.body[:200]!r}>"


def post(master, body, content_type=PROTOBUF, accept=None, stream_id=None, path=PATH, method="POST", port=None):
    """One request on a fresh connection."""
    if isinstance(body, Call):
        body = body.SerializeToString() if content_type != JSON else \
            json_format.MessageToJson(body, preserving_proto_field_name=True).encode()
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    if stream_id is not None:
        headers["Mesos-Stream-Id"] = stream_id
    conn = http.client.HTTPConnection("127.0.0.1", port or master.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


class Sched:
    """A SUBSCRIBE connection whose events a reader thread decodes into
    `events`, plus calls carrying its stream id."""

    def __init__(self, master, call, accept=PROTOBUF, content_type=PROTOBUF, path=PATH, port=None):
        self.master = master
        self.conn = http.client.HTTPConnection("127.0.0.1", port or master.port, timeout=HTTP_TIMEOUT)
        headers = {"Content-Type": content_type}
        if accept is not None:
            headers["Accept"] = accept
        body = call.SerializeToString() if content_type == PROTOBUF else \
            json_format.MessageToJson(call, preserving_proto_field_name=True).encode()
        self.conn.request("POST", path, body=body, headers=headers)
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.media = self.resp.getheader("Content-Type")
        self.stream_id = self.resp.getheader("Mesos-Stream-Id")
        self.events = []
        self.ended = None  # "end" (final chunk), "broken"
        self.cond = threading.Condition()
        self.sock.settimeout(None)  # the reader blocks; close() wakes it
        if self.status == 200:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.body = self.resp.read()
            self.ended = "end"

    def _read(self):
        decoder = recordio.Decoder()
        how = "end"
        try:
            while True:
                data = self.resp.read1(65536)
                if not data:
                    break
                for rec in decoder.feed(data):
                    if self.media == PROTOBUF:
                        ev = Event.FromString(rec)
                    else:
                        ev = json_format.Parse(rec, Event(), ignore_unknown_fields=True)
                    with self.cond:
                        self.events.append(ev)
                        self.cond.notify_all()
        except (http.client.HTTPException, OSError, ValueError):
            how = "broken"
        with self.cond:
            self.ended = how
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.events)

    def of_type(self, name):
        with self.cond:
            return [e for e in self.events if Event.Type.Name(e.type) == name]

    def wait_event(self, name, predicate=None, timeout=10.0, after=0):
        def find():
            for e in self.events[after:]:
                if Event.Type.Name(e.type) == name and (predicate is None or predicate(e)):
                    return e
            return None

        return wait_condition(self.cond, find, timeout, f"a {name} event on the scheduler's stream")

    def wait_update(self, task_id, state=None, timeout=10.0, after=0):
        def match(e):
            st = e.update.status
            return st.task_id.value == task_id and (state is None or state_name(st.state) == state)

        return self.wait_event("UPDATE", match, timeout, after).update.status

    def no_event(self, name, within, after=0, predicate=None):
        """Asserts no such event arrives within `within` seconds."""
        with pytest.raises(WaitTimeout):
            self.wait_event(name, predicate, within, after)

    def wait_ended(self, timeout=10.0):
        return wait_condition(self.cond, lambda: self.ended, timeout, "the stream to end")

    @property
    def framework_id(self):
        return self.wait_event("SUBSCRIBED").subscribed.framework_id.value

    def call(self, call, stream_id=None, content_type=PROTOBUF):
        return post(self.master, call, content_type=content_type,
                    stream_id=self.stream_id if stream_id is None else stream_id, port=self.conn.port)

    def close(self):
        """Closes the connection (the master sees the scheduler go) and
        waits for the reader to finish."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.status == 200:
            self.reader.join(HTTP_TIMEOUT)
        self.conn.close()


@pytest.fixture
def clients():
    opened = []
    yield opened
    for c in opened:
        c.close()


@pytest.fixture
def master(fake_master):
    return fake_master


def subscribe(master, clients, fid=None, port=None, **kw):
    s = Sched(master, subscribe_call(fid, **kw), port=port)
    clients.append(s)
    assert s.status == 200, s.body
    s.wait_event("SUBSCRIBED")
    return s


def executor_info(eid, offer, cpus=0.01, mem=16.0):
    """A custom executor whose resources are copied from the offer's."""
    ex = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.CUSTOM, name=f"pacer-executor {eid}")
    ex.executor_id.value = eid
    ex.command.value = "/usr/bin/pacer-executor"
    ex.command.shell = False
    offered = {r.name: r for r in offer.resources}
    for name, amount in (("cpus", cpus), ("mem", mem)):
        r = ex.resources.add()
        r.CopyFrom(offered[name])
        r.scalar.value = amount
    return ex


def task_info(task_id, offer, cpus=0.1, mem=32.0, ports=(), executor=True, command=False, health_check=None):
    """A TaskInfo using resources copied from the offer's (changing only the
    amounts), with a per-task executor by default."""
    task = mesos_pb2.TaskInfo(name=task_id)
    task.task_id.value = task_id
    task.agent_id.value = offer.agent_id.value
    offered = {r.name: r for r in offer.resources}
    for name, amount in (("cpus", cpus), ("mem", mem)):
        r = task.resources.add()
        r.CopyFrom(offered[name])
        r.scalar.value = amount
    if ports:
        r = task.resources.add()
        r.CopyFrom(offered["ports"])
        del r.ranges.range[:]
        for p in ports:
            r.ranges.range.add(begin=p, end=p)
    if executor:
        task.executor.CopyFrom(executor_info(f"E-{task_id}", offer))
    if command:
        task.command.value = "sleep 100"
    if health_check is not None:
        task.health_check.CopyFrom(health_check)
    return task


def accept_call(fid, offers, tasks, refuse=None):
    call = make_call(Call.ACCEPT, fid)
    for o in offers:
        call.accept.offer_ids.add(value=o.id.value if hasattr(o, "id") else o)
    op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    op.launch.task_infos.extend(tasks)
    if refuse is not None:
        call.accept.filters.refuse_seconds = refuse
    return call


def decline_call(fid, offer_ids, refuse=None):
    call = make_call(Call.DECLINE, fid)
    for oid in offer_ids:
        call.decline.offer_ids.add(value=oid)
    if refuse is not None:
        call.decline.filters.refuse_seconds = refuse
    return call


def ack_call(fid, status):
    call = make_call(Call.ACKNOWLEDGE, fid)
    call.acknowledge.agent_id.CopyFrom(status.agent_id)
    call.acknowledge.task_id.CopyFrom(status.task_id)
    call.acknowledge.uuid = status.uuid
    return call


def reconcile_call(fid, tasks=()):
    call = make_call(Call.RECONCILE, fid)
    call.reconcile.SetInParent()
    for tid, aid in tasks:
        t = call.reconcile.tasks.add()
        t.task_id.value = tid
        if aid is not None:
            t.agent_id.value = aid
    return call


def kill_call(fid, task_id, agent_id=None):
    call = make_call(Call.KILL, fid)
    call.kill.task_id.value = task_id
    if agent_id is not None:
        call.kill.agent_id.value = agent_id
    return call


def http_check():
    hc = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.HTTP)
    hc.http.port = 31000
    hc.http.path = "/health"
    return hc


def offered(master, s, spec):
    """Sends one offer and returns it as the scheduler received it."""
    mark = s.mark()
    oid = master.send_offers([spec])[0].id.value
    ev = s.wait_event("OFFERS", after=mark)
    return next(o for o in ev.offers.offers if o.id.value == oid)


def launch(master, s, task_ids=("T1",), **task_kw):
    """Offers agent A1 and launches the tasks on it; returns the offer."""
    offer = offered(master, s, make_offer("A1", cpus=4, mem=4096, ports=[(31000, 31009)]))
    tasks = [task_info(t, offer, **task_kw) for t in task_ids]
    assert s.call(accept_call(s.framework_id, [offer], tasks)).status == 202
    return offer


def assert_master_update(st, state, reason, message_part=None):
    assert state_name(st.state) == state
    assert st.source == TaskStatus.SOURCE_MASTER
    assert TaskStatus.Reason.Name(st.reason) == reason
    assert not st.HasField("uuid"), "master-generated updates carry no uuid"
    if message_part is not None:
        assert message_part in st.message, st.message


# --------------------------------------------------------------------------
# Subscription


def test_first_subscribe_gets_id_stream_id_subscribed_and_heartbeat(master, clients, timeline):
    s = Sched(master, subscribe_call())
    clients.append(s)
    assert s.status == 200
    assert s.media == PROTOBUF
    assert uuidlib.UUID(s.stream_id)
    first = s.wait_event("SUBSCRIBED")
    s.wait_event("HEARTBEAT")  # the master's heartbeater fires at once
    assert s.events[0] is first and Event.Type.Name(s.events[1].type) == "HEARTBEAT"
    sub = first.subscribed
    fid = sub.framework_id.value
    assert fid.startswith(master.master_id + "-")
    assert sub.heartbeat_interval_seconds == 15.0
    assert sub.master_info.id == master.master_id
    assert sub.master_info.port == master.port
    assert sub.master_info.address.ip == "127.0.0.1"
    assert sub.master_info.version
    rec = master.wait_subscribed()
    assert (rec.framework_id, rec.stream_id, rec.resubscribe) == (fid, s.stream_id, False)
    assert master.framework_id == fid and master.connected()
    assert master.stream_id() == s.stream_id
    timeline.assert_order(("master", "call.SUBSCRIBE"), ("master", "event.SUBSCRIBED"),
                          ("master", "event.HEARTBEAT"))


def test_resubscribe_keeps_the_id_and_fails_over_the_old_stream(master, clients):
    s1 = subscribe(master, clients)
    fid = s1.framework_id
    s2 = subscribe(master, clients, fid=fid)
    assert s2.framework_id == fid
    assert s2.stream_id != s1.stream_id
    err = s1.wait_event("ERROR")
    assert err.error.message == "Framework failed over"
    assert s1.wait_ended() == "end"
    assert master.wait_subscribed(2).resubscribe
    stale = s1.call(make_call(Call.REVIVE, fid))
    assert stale.status == 400
    assert stale.text == (f"The stream ID '{s1.stream_id}' included in this request didn't match the stream ID "
                          f"currently associated with framework ID {fid}")
    assert s2.call(make_call(Call.REVIVE, fid)).status == 202


def test_user_and_checkpoint_cannot_change_on_resubscribe(master, clients):
    s1 = subscribe(master, clients, user="alice")
    s2 = Sched(master, subscribe_call(s1.framework_id, user="mallory", failover_timeout=7.0))
    clients.append(s2)
    s2.wait_event("SUBSCRIBED")
    info = master.framework_info()
    assert (info.user, info.failover_timeout) == ("alice", 7.0)


def _without_user(call):
    call.subscribe.framework_info.ClearField("user")
    return call.SerializePartialToString()


def _mismatch(call):
    call.framework_id.value = "F-other"
    return call.SerializeToString()


def _id_only_in_info(call):
    call.subscribe.framework_info.id.value = "F-1"
    return call.SerializeToString()


def _no_subscribe(call):
    call.ClearField("subscribe")
    return call.SerializeToString()


def _no_type(call):
    call.ClearField("type")
    return call.SerializeToString()


@pytest.mark.parametrize("mutate, message", [
    (_mismatch, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"),
    (_id_only_in_info, "Failed to validate scheduler::Call: 'framework_id' differs from "
                       "'subscribe.framework_info.id'"),
    (_no_subscribe, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"),
    (_no_type, "Failed to validate scheduler::Call: Expecting 'type' to be present"),
    (_without_user, "Failed to parse body into Call protobuf"),
])
def test_invalid_subscribe_is_400(master, mutate, message):
    r = post(master, mutate(subscribe_call()), accept=PROTOBUF)
    assert (r.status, r.text) == (400, message)
    assert r.headers["content-type"].startswith("text/plain")
    assert master.subscriptions == []


def test_subscribe_with_stream_id_is_400(master):
    r = post(master, subscribe_call(), accept=PROTOBUF, stream_id=str(uuidlib.uuid4()))
    assert (r.status, r.text) == (400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")


@pytest.mark.parametrize("ctype, status", [(None, 400), ("text/plain", 415),
                                           ("application/x-protobuf; charset=utf-8", 415),
                                           ("application/JSON", 415)])
def test_content_type_rules(master, ctype, status):
    r = post(master, subscribe_call().SerializeToString(), content_type=ctype)
    assert r.status == status
    want = "Expecting 'Content-Type' to be present" if status == 400 else \
        "Expecting 'Content-Type' of application/json or application/x-protobuf"
    assert r.text == want


def test_accept_negotiation(master, clients):
    assert post(master, subscribe_call(), accept="text/html").status == 406
    for accept, media in ((None, JSON), ("*/*", JSON), (PROTOBUF, PROTOBUF), (f"{JSON};q=0, {PROTOBUF}", PROTOBUF),
                          (f"{PROTOBUF}, {JSON}", JSON)):
        s = Sched(master, subscribe_call(), accept=accept)
        clients.append(s)
        assert (s.status, s.media) == (200, media), accept
        assert s.wait_event("SUBSCRIBED").subscribed.framework_id.value


def test_json_calls_and_json_stream(master, clients):
    s = Sched(master, subscribe_call(), accept=JSON, content_type=JSON)
    clients.append(s)
    assert s.media == JSON
    fid = s.framework_id
    master.add_task("T1", "A1", framework_id=fid)
    st = master.send_update("T1", "TASK_RUNNING", data={"healthy": True})
    got = s.wait_update("T1", "TASK_RUNNING")
    assert got.uuid == st.uuid and got.data == st.data  # base64 both ways
    assert s.call(ack_call(fid, got), content_type=JSON).status == 202
    assert master.wait_ack(st.uuid).accepted
    bad = post(master, b"{not json", content_type=JSON, stream_id=s.stream_id)
    assert bad.status == 400 and bad.text.startswith("Failed to parse body into JSON")
    missing = post(master, json.dumps({"type": "KILL", "framework_id": {"value": fid}, "kill": {}}).encode(),
                   content_type=JSON, stream_id=s.stream_id)
    assert missing.status == 400 and missing.text.startswith("Failed to convert JSON into Call protobuf")


def test_methods_paths_and_garbage(master):
    r = post(master, b"", method="GET")
    assert (r.status, r.headers["allow"]) == (405, "POST")
    assert r.text == "Expecting one of { 'POST' }, but received 'GET'"
    assert post(master, subscribe_call(), path="/api/v1/executor").status == 404
    garbage = post(master, b"\xff\xff\xff\xff")
    assert (garbage.status, garbage.text) == (400, "Failed to parse body into Call protobuf")
    alt = post(master, subscribe_call(), accept=PROTOBUF, stream_id="x", path="/master/api/v1/scheduler")
    assert alt.status == 400, "the /master/ path is the same handler"


# --------------------------------------------------------------------------
# Calls after SUBSCRIBE


def test_stream_id_is_required_on_every_other_call(master, clients):
    s = subscribe(master, clients)
    fid = s.framework_id
    missing = post(master, make_call(Call.REVIVE, fid))
    assert (missing.status, missing.text) == (400, "All non-subscribe calls should include the 'Mesos-Stream-Id' "
                                                   "header")
    stale = s.call(make_call(Call.REVIVE, fid), stream_id="not-it")
    assert stale.status == 400 and "didn't match the stream ID" in stale.text
    ok = s.call(make_call(Call.REVIVE, fid))
    assert (ok.status, ok.body) == (202, b"")
    assert "content-type" not in ok.headers
    rec = master.wait_call("REVIVE", status=202)
    assert rec.stream_id == s.stream_id
    assert [c.status for c in master.calls if c.type == "REVIVE"] == [400, 400, 202]


def test_unknown_framework_is_400_known_but_unsubscribed_is_403(master, clients):
    r = post(master, make_call(Call.REVIVE, "F-nobody"), stream_id="x")
    assert (r.status, r.text) == (400, "Framework cannot be found")
    master.add_task("stray", "A1", framework_id="F-old")  # as recovered from a re-registered agent
    r = post(master, make_call(Call.REVIVE, "F-old"), stream_id="x")
    assert (r.status, r.text) == (403, "Framework is not subscribed")
    s = subscribe(master, clients, fid="F-old")
    assert s.framework_id == "F-old"
    assert s.call(make_call(Call.REVIVE, "F-old")).status == 202
    master.drop_stream()
    r = s.call(make_call(Call.REVIVE, "F-old"))
    assert (r.status, r.text) == (403, "Framework is not subscribed")


def test_call_validation(master, clients):
    s = subscribe(master, clients)
    fid = s.framework_id
    no_fid = Call(type=Call.REVIVE)
    r = s.call(no_fid)
    assert (r.status, r.text) == (400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
    for call_type, field in ((Call.ACCEPT, "accept"), (Call.DECLINE, "decline"), (Call.KILL, "kill"),
                             (Call.ACKNOWLEDGE, "acknowledge"), (Call.RECONCILE, "reconcile"),
                             (Call.MESSAGE, "message"), (Call.SHUTDOWN, "shutdown")):
        r = s.call(make_call(call_type, fid))
        assert (r.status, r.text) == (400, f"Failed to validate scheduler::Call: Expecting '{field}' to be present")
    master.add_task("T1", "A1")
    st = master.send_update("T1", "TASK_RUNNING")
    short = ack_call(fid, st)
    short.acknowledge.uuid = st.uuid[:15]
    r = s.call(short)
    assert (r.status, r.text) == (400, "Failed to validate scheduler::Call: Not a valid UUID: expected 16 bytes, "
                                       "got 15")
    assert s.call(make_call(Call.UNKNOWN, fid)).status == 501


# --------------------------------------------------------------------------
# Leadership


@pytest.fixture
def other_master(timeline):
    m = FakeMaster(timeline=timeline).start()
    yield m
    m.stop()
    m.check()


def test_redirect_to_the_leader(master, other_master, clients):
    s = subscribe(master, clients)
    master.redirect_to(other_master)
    assert s.wait_ended() == "broken", "a master losing leadership drops its streams"
    for path in ("/api/v1/scheduler", "/master/api/v1/scheduler"):
        r = post(master, subscribe_call(), accept=PROTOBUF, path=path)
        assert (r.status, r.body) == (307, b"")
        assert r.headers["location"] == f"//127.0.0.1:{other_master.port}{path}"
    assert post(master, b"", method="GET").status == 307, "the redirect comes before the method check"
    assert post(master, b"garbage", content_type=None).status == 307
    location = post(master, subscribe_call(s.framework_id), accept=PROTOBUF).headers["location"]
    url = http.client.urlsplit("http:" + location)
    s2 = Sched(master, subscribe_call(s.framework_id), port=url.port, path=url.path)
    clients.append(s2)
    assert s2.framework_id == s.framework_id
    assert other_master.framework_id == s.framework_id
    master.lead()
    assert post(master, subscribe_call(), accept=PROTOBUF, content_type=None).status == 400


def test_no_leader_is_503(master, clients):
    master.no_leader()
    r = post(master, subscribe_call(), accept=PROTOBUF)
    assert (r.status, r.text) == (503, "No leader elected")
    master.set_recovering(True)
    master.lead()
    r = post(master, subscribe_call(), accept=PROTOBUF)
    assert (r.status, r.text) == (503, "Master has not finished recovery")
    master.set_recovering(False)
    subscribe(master, clients)


# --------------------------------------------------------------------------
# Offers, launches, updates and acknowledgements


def test_offer_accept_launch_run_and_ack(master, clients, timeline):
    master.auto_run(True)
    s = subscribe(master, clients)
    fid = s.framework_id
    offer = offered(master, s, make_offer("A1", hostname="host-1", cpus=2, mem=1024, attributes={"rack": "r2"}))
    assert offer.framework_id.value == fid and offer.hostname == "host-1"
    assert offer.attributes[0].text.value == "r2"
    assert offer.id.value in master.outstanding_offers
    task = task_info("T1", offer, ports=[31005], health_check=http_check())
    assert s.call(accept_call(fid, [offer], [task])).status == 202
    (launch_rec,) = master.wait_launch(1)
    assert (launch_rec.task_id, launch_rec.agent_id, launch_rec.offer_ids) == ("T1", "A1", [offer.id.value])
    assert launch_rec.task.executor.framework_id.value == fid, "the master fills in ExecutorInfo.framework_id"
    st = s.wait_update("T1", "TASK_RUNNING")
    assert st.source == TaskStatus.SOURCE_EXECUTOR and len(st.uuid) == 16
    assert st.agent_id.value == "A1" and st.executor_id.value == "E-T1"
    assert st.healthy is True
    rec = parse_status_record(st.data)
    assert rec["healthy"] is True and rec["registered"] is True
    assert (rec["registration"], rec["service_id"], rec["version"]) == ("registered", "T1", 1)
    assert master.known_tasks["T1"].state == "TASK_RUNNING"
    assert s.call(ack_call(fid, st)).status == 202
    assert master.wait_ack(st.uuid).accepted
    assert master.pending_updates() == []
    assert offer.id.value not in master.outstanding_offers
    (flt,) = master.filters()
    assert (flt.agent_id, flt.refuse_seconds, flt.via) == ("A1", 5.0, "ACCEPT"), "left-overs declined, default 5 s"
    timeline.assert_order(("master", "call.ACCEPT"), ("master", "launch", "task=T1"),
                          ("master", "event.UPDATE", "state=TASK_RUNNING"), ("master", "ack", "task=T1"))


def test_auto_run_options(master, clients):
    master.auto_run(True, starting=True, record={"registered": False, "registration": "pending"}, healthy=False)
    s = subscribe(master, clients)
    launch(master, s, ("T1",))
    starting = s.wait_update("T1", "TASK_STARTING")
    assert not starting.data
    s.call(ack_call(s.framework_id, starting))
    running = s.wait_update("T1", "TASK_RUNNING")
    rec = parse_status_record(running.data)
    assert (rec["registered"], rec["registration"], rec["healthy"]) == (False, "pending", None)
    assert running.healthy is False


def test_unacknowledged_update_is_resent_with_the_same_uuid_and_backoff(master, clients, timeline):
    master.set_update_policy(retry_interval=0.1, retry_max=0.4)
    s = subscribe(master, clients)
    master.add_task("T1", "A1")
    st = master.send_update("T1", "TASK_RUNNING")
    for n in range(1, 5):
        wait_condition(s.cond, lambda: len(s.of_type("UPDATE")) >= n, 10, f"attempt {n}")
    t = [r.t for r in timeline.records("master", "event.UPDATE")]
    assert all(ev.update.status.uuid == st.uuid for ev in s.of_type("UPDATE"))
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18 and gaps[2] >= 0.36, f"backoff doubles: {gaps}"
    assert timeline.first("master", "update.retry", "attempt=2")
    s.call(ack_call(s.framework_id, st))
    master.wait_ack(st.uuid)
    mark = s.mark()
    s.no_event("UPDATE", 0.6, after=mark)


@pytest.mark.parametrize("hold_back", [True, False])
def test_later_updates_wait_for_the_ack_of_the_current_one(master, clients, hold_back):
    master.set_update_policy(hold_back=hold_back)
    s = subscribe(master, clients)
    fid = s.framework_id
    master.add_task("T1", "A1")
    running = master.send_update("T1", "TASK_RUNNING")
    finished = master.send_update("T1", "TASK_FINISHED")
    s.wait_update("T1", "TASK_RUNNING")
    assert [p.uuid for p in master.pending_updates("T1")] == [running.uuid, finished.uuid]
    if hold_back:
        s.no_event("UPDATE", 0.3, predicate=lambda e: e.update.status.state == mesos_pb2.TASK_FINISHED)
        # an acknowledgement of the held update is not the one expected
        s.call(ack_call(fid, finished))
        master.wait_call("ACKNOWLEDGE")
        (ack,) = master.acks
        assert not ack.accepted and ack.reason.startswith("unexpected acknowledgement")
    else:
        s.wait_update("T1", "TASK_FINISHED", timeout=1.0)
    s.call(ack_call(fid, running))
    master.wait_ack(running.uuid)
    s.wait_update("T1", "TASK_FINISHED")
    assert "T1" in master.known_tasks, "a terminal task stays until its update is acknowledged"
    s.call(ack_call(fid, finished))
    master.wait_ack(finished.uuid)
    assert "T1" not in master.known_tasks


def test_acknowledgement_of_an_unknown_uuid_or_agent_is_ignored(master, clients):
    s = subscribe(master, clients)
    fid = s.framework_id
    master.add_task("T1", "A1")
    st = master.send_update("T1", "TASK_RUNNING")
    wrong = TaskStatus()
    wrong.CopyFrom(st)
    wrong.uuid = os.urandom(16)
    assert s.call(ack_call(fid, wrong)).status == 202, "the master answers 202 and drops it"
    wrong.uuid = st.uuid
    wrong.agent_id.value = "A-nowhere"
    assert s.call(ack_call(fid, wrong)).status == 202
    master.wait_call("ACKNOWLEDGE", after=0, status=202)
    wait_condition(master._cond, lambda: len(master._acks) == 2, 5, "two acks")
    assert [(a.accepted, a.reason) for a in master.acks] == [
        (False, "no unacknowledged update with this uuid"), (False, "agent A-nowhere is not registered")]
    assert master.pending_updates() and master.pending_updates()[0].uuid == st.uuid


def test_updates_without_uuid_are_sent_once(master, clients):
    s = subscribe(master, clients)
    master.add_task("T1", "A1")
    master.send_update("T1", "TASK_FAILED", uuid=False, reason="REASON_AGENT_REMOVED", message="gone",
                       source="SOURCE_MASTER")
    st = s.wait_update("T1", "TASK_FAILED")
    assert not st.HasField("uuid") and st.message == "gone"
    assert "T1" not in master.known_tasks, "a terminal update without uuid removes the task at once"
    assert master.pending_updates() == []


def test_updates_for_a_disconnected_framework_are_dropped_then_retried(master, clients, timeline):
    master.set_update_policy(retry_interval=0.2, retry_max=0.2)
    s = subscribe(master, clients)
    fid = s.framework_id
    master.add_task("T1", "A1")
    master.drop_stream()
    st = master.send_update("T1", "TASK_RUNNING")
    timeline.wait("master", "update.dropped", "task=T1")
    s2 = subscribe(master, clients, fid=fid)
    got = s2.wait_update("T1", "TASK_RUNNING")
    assert got.uuid == st.uuid


# --------------------------------------------------------------------------
# Declines, filters, revive, suppress and the offer cycle


def test_decline_filters_keep_the_agent_out_of_the_offer_cycle(master, clients):
    for a in ("A1", "A2"):
        master.add_agent(make_offer(a, cpus=2, mem=2048))
    s = subscribe(master, clients)
    fid = s.framework_id
    offers = {o.agent_id.value: o.id.value for o in master.offer_cycle()}
    assert set(offers) == {"A1", "A2"}
    assert master.offer_cycle() == [], "no second offer while one is outstanding"
    declined_at = time.monotonic()
    assert s.call(decline_call(fid, [offers["A1"]], refuse=0.5)).status == 202
    assert s.call(decline_call(fid, [offers["A2"]], refuse=0)).status == 202
    assert master.wait_decline(offers["A1"]).call.decline.filters.refuse_seconds == 0.5
    assert [f.agent_id for f in master.filters()] == ["A1"], "refuse_seconds=0 sets no filter"
    assert [o.agent_id.value for o in master.offer_cycle()] == ["A2"]
    again = wait_for(lambda: master.offer_cycle(), 5, "A1 to be offered after its filter expired")
    assert [o.agent_id.value for o in again] == ["A1"]
    assert time.monotonic() - declined_at >= 0.5
    assert sorted(o.agent_id.value for o in master.outstanding_offers.values()) == ["A1", "A2"]


def test_decline_without_filters_refuses_for_five_seconds(master, clients):
    master.add_agent(make_offer("A1"))
    s = subscribe(master, clients)
    (offer,) = master.offer_cycle()
    s.call(decline_call(s.framework_id, [offer.id.value]))
    master.wait_decline()
    (flt,) = master.filters()
    assert (flt.refuse_seconds, flt.via) == (5.0, "DECLINE")
    assert 4.9 < flt.expires - flt.created <= 5.0


def test_revive_clears_filters_and_suppress_stops_offers(master, clients):
    master.add_agent(make_offer("A1"))
    s = subscribe(master, clients)
    fid = s.framework_id
    (offer,) = master.offer_cycle()
    s.call(decline_call(fid, [offer.id.value], refuse=3600))
    master.wait_decline()
    assert master.offer_cycle() == []
    s.call(make_call(Call.REVIVE, fid))
    master.wait_call("REVIVE", status=202)
    (offer,) = master.offer_cycle()
    s.call(decline_call(fid, [offer.id.value], refuse=0))
    s.call(make_call(Call.SUPPRESS, fid))
    master.wait_call("SUPPRESS", status=202)
    assert master.suppressed() and master.offer_cycle() == []
    s.call(make_call(Call.REVIVE, fid))
    master.wait_call("REVIVE", status=202, after=len(master.calls) - 1)
    assert not master.suppressed() and len(master.offer_cycle()) == 1


def test_subscribe_with_suppressed_roles_is_suppressed(master, clients):
    master.add_agent(make_offer("A1"))
    subscribe(master, clients, suppressed_roles=["*"])
    assert master.suppressed() and master.offer_cycle() == []


def test_offer_cycle_offers_what_is_free(master, clients):
    master.add_agent(make_offer("A1", cpus=4, mem=4096, disk=100, ports=[(31000, 31009)]))
    s = subscribe(master, clients)
    fid = s.framework_id
    (offer,) = master.offer_cycle()
    s.call(accept_call(fid, [offer], [task_info("T1", offer, cpus=1, mem=128, ports=[31005])], refuse=0))
    master.wait_launch(1)
    (offer2,) = master.offer_cycle()
    res = {r.name: r for r in offer2.resources}
    assert res["cpus"].scalar.value == pytest.approx(2.99)  # 4 - 1 - 0.01 executor
    assert res["mem"].scalar.value == pytest.approx(4096 - 128 - 16)
    assert [(r.begin, r.end) for r in res["ports"].ranges.range] == [(31000, 31004), (31006, 31009)]
    assert [e.value for e in offer2.executor_ids] == ["E-T1"]


def test_auto_offer_runs_the_cycle(master, clients):
    master.add_agent(make_offer("A1"))
    s = subscribe(master, clients)
    master.auto_offer(0.05)
    ev = s.wait_event("OFFERS")
    s.call(decline_call(s.framework_id, [ev.offers.offers[0].id.value], refuse=0))
    s.wait_event("OFFERS", after=s.mark())
    master.auto_offer(None)


def test_rescind(master, clients):
    s = subscribe(master, clients)
    offer = offered(master, s, make_offer("A1"))
    assert master.rescind(offer.id.value) and not master.rescind(offer.id.value)
    assert s.wait_event("RESCIND").rescind.offer_id.value == offer.id.value
    s.call(accept_call(s.framework_id, [offer], [task_info("T1", offer)]))
    st = s.wait_update("T1")
    assert_master_update(st, "TASK_LOST", "REASON_INVALID_OFFERS",
                         f"Task launched with invalid offers: Offer {offer.id.value} is no longer valid")


def test_offers_die_with_the_subscription(master, clients, timeline):
    s = subscribe(master, clients)
    fid = s.framework_id
    offer = offered(master, s, make_offer("A1"))
    s2 = subscribe(master, clients, fid=fid)
    assert master.outstanding_offers == {}
    timeline.wait("master", "offers.invalidated", "why=re-subscription")
    s2.call(accept_call(fid, [offer], [task_info("T1", offer)]))
    assert state_name(s2.wait_update("T1").state) == "TASK_LOST"


# --------------------------------------------------------------------------
# Invalid ACCEPTs


@pytest.mark.parametrize("caps, state", [(("TASK_KILLING_STATE",), "TASK_LOST"),
                                         (("PARTITION_AWARE",), "TASK_DROPPED")])
def test_accept_on_invalid_offers_loses_or_drops_the_tasks(master, clients, caps, state):
    s = subscribe(master, clients, caps=caps)
    fid = s.framework_id
    offer = offered(master, s, make_offer("A1"))
    t1, t2 = task_info("T1", offer), task_info("T2", offer)
    s.call(accept_call(fid, [offer.id.value, "O-bogus"], [t1, t2]))
    for tid in ("T1", "T2"):
        assert_master_update(s.wait_update(tid), state, "REASON_INVALID_OFFERS",
                             "Task launched with invalid offers: Offer O-bogus is no longer valid")
    assert master.outstanding_offers == {}, "the valid offer listed is used up too"
    assert master.launches == []
    s.call(accept_call(fid, [], [task_info("T3", offer)]))
    assert "No offers specified" in s.wait_update("T3").message
    offer2 = offered(master, s, make_offer("A1"))
    s.call(accept_call(fid, [offer2, offer2], [task_info("T4", offer2)]))
    assert f"Duplicate offer {offer2.id.value} in offer list" in s.wait_update("T4").message


def test_accept_across_agents_is_invalid(master, clients):
    s = subscribe(master, clients)
    o1, o2 = offered(master, s, make_offer("A1")), offered(master, s, make_offer("A2"))
    s.call(accept_call(s.framework_id, [o1, o2], [task_info("T1", o1)]))
    assert "Aggregated offers must belong to one single agent" in s.wait_update("T1").message


def _both(t, o):
    t.command.value = "true"


def _neither(t, o):
    t.ClearField("executor")


def _too_big(t, o):
    t.resources[0].scalar.value = 64


def _wrong_agent(t, o):
    t.agent_id.value = "A-other"


def _bad_id(t, o):
    t.task_id.value = "a/b"


def _no_resources(t, o):
    del t.resources[:]


def _negative(t, o):
    t.resources[1].scalar.value = -1


def _bad_health(t, o):
    t.health_check.type = mesos_pb2.HealthCheck.HTTP


def _port_outside(t, o):
    r = t.resources.add()
    r.CopyFrom(next(x for x in o.resources if x.name == "ports"))
    del r.ranges.range[:]
    r.ranges.range.add(begin=40000, end=40000)


def _reserved_role(t, o):
    t.resources[0].role = "pacer"


def _custom_without_command(t, o):
    t.executor.ClearField("command")


def _foreign_framework(t, o):
    t.executor.framework_id.value = "F-other"


@pytest.mark.parametrize("mutate, message", [
    (_both, "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"),
    (_neither, "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"),
    (_too_big, "required by task and its executor is more than available"),
    (_wrong_agent, "Task uses invalid agent A-other while agent A1 is expected"),
    (_bad_id, "'TaskID.value' is invalid: 'a/b' contains invalid characters"),
    (_no_resources, "Task uses no resources"),
    (_negative, "Task uses invalid resources: Invalid resources: Invalid scalar resource"),
    (_bad_health, "Task uses invalid health check: Expecting 'http' to be set for HTTP health check"),
    (_port_outside, "more than available"),
    (_reserved_role, "more than available"),
    (_custom_without_command, "'ExecutorInfo.command' must be set for 'CUSTOM' executor"),
    (_foreign_framework, "ExecutorInfo has an invalid FrameworkID (Actual: F-other vs Expected: "),
])
def test_invalid_task_gets_task_error_and_the_others_launch(master, clients, mutate, message):
    s = subscribe(master, clients)
    offer = offered(master, s, make_offer("A1", cpus=4, mem=4096))
    bad, good = task_info("T-bad", offer), task_info("T-good", offer)
    mutate(bad, offer)
    s.call(accept_call(s.framework_id, [offer], [bad, good]))
    st = s.wait_update(bad.task_id.value)
    assert_master_update(st, "TASK_ERROR", "REASON_TASK_INVALID", message)
    assert [rec.task_id for rec in master.wait_launch(1)] == ["T-good"]
    assert set(master.known_tasks) == {"T-good"}


def test_duplicate_task_ids_and_exhausted_offer(master, clients):
    s = subscribe(master, clients)
    offer = offered(master, s, make_offer("A1", cpus=1, mem=1024))
    tasks = [task_info("T1", offer, cpus=0.5), task_info("T1", offer, cpus=0.1), task_info("T2", offer, cpus=0.5)]
    s.call(accept_call(s.framework_id, [offer], tasks))
    assert "Task has duplicate ID: T1" in s.wait_update("T1", "TASK_ERROR").message
    assert "more than available" in s.wait_update("T2", "TASK_ERROR").message, "T1 took 0.51 of 1 cpu"
    assert [r.task_id for r in master.launches] == ["T1"]


def test_executor_resources_count_once_per_executor(master, clients):
    s = subscribe(master, clients)
    offer = offered(master, s, make_offer("A1", cpus=0.21, mem=1024))
    t1, t2 = task_info("T1", offer), task_info("T2", offer)
    t2.executor.CopyFrom(t1.executor)  # one executor, two tasks: 0.1 + 0.1 + 0.01
    s.call(accept_call(s.framework_id, [offer], [t1, t2]))
    assert [r.task_id for r in master.wait_launch(2)] == ["T1", "T2"]
    offer2 = offered(master, s, make_offer("A1"))
    t3 = task_info("T3", offer2)
    t3.executor.CopyFrom(t1.executor)
    t3.executor.name = "changed"
    s.call(accept_call(s.framework_id, [offer2], [t3]))
    assert "not compatible with existing ExecutorInfo" in s.wait_update("T3").message


def test_reservations_follow_the_framework_capabilities(master, clients):
    spec = make_offer("A1", role="pacer", reserved={"principal": "ops", "labels": {"k": "v"}}, ports=None)
    s = subscribe(master, clients, role="pacer", caps=())
    old = offered(master, s, spec)
    cpus = next(r for r in old.resources if r.name == "cpus")
    assert cpus.role == "pacer" and cpus.reservation.principal == "ops" and not cpus.reservations
    s.call(accept_call(s.framework_id, [old], [task_info("T1", old)]))
    master.wait_launch(1)

    s2 = subscribe(master, clients, roles=["pacer"], caps=("MULTI_ROLE", "RESERVATION_REFINEMENT"))
    new = offered(master, s2, spec)
    cpus = next(r for r in new.resources if r.name == "cpus")
    assert not cpus.HasField("role") and not cpus.HasField("reservation")
    (rsv,) = cpus.reservations
    assert (rsv.type, rsv.role, rsv.principal) == (mesos_pb2.Resource.ReservationInfo.DYNAMIC, "pacer", "ops")
    assert cpus.allocation_info.role == "pacer" and new.allocation_info.role == "pacer"
    s2.call(accept_call(s2.framework_id, [new], [task_info("T2", new)]))
    assert [r.task_id for r in master.wait_launch(2)] == ["T1", "T2"]
    unreserved = offered(master, s2, make_offer("A2"))
    t3 = task_info("T3", unreserved)
    t3.resources[0].CopyFrom(cpus)  # reserved cpus asked of an unreserved offer
    s2.call(accept_call(s2.framework_id, [unreserved], [t3]))
    assert "more than available" in s2.wait_update("T3", "TASK_ERROR").message


# --------------------------------------------------------------------------
# Reconciliation and kills


@pytest.mark.parametrize("pa", [False, True])
def test_explicit_reconciliation(master, clients, pa):
    s = subscribe(master, clients, caps=("PARTITION_AWARE",) if pa else ())
    fid = s.framework_id
    master.add_task("T1", "A1", healthy=True, executor_id="E1")
    master.add_task("T7", "A1", state="TASK_STAGING")
    for agent, state in (("A2", "unreachable"), ("A3", "gone"), ("A4", "recovering")):
        master.set_agent_state(agent, state)
    s.call(reconcile_call(fid, [("T1", "A1"), ("T7", None), ("T2", "A1"), ("T3", None), ("T4", "A2"),
                                ("T5", "A3"), ("T6", "A4")]))
    expect = {"T1": ("TASK_RUNNING", "Reconciliation: Latest task state"),
              "T7": ("TASK_STAGING", "Reconciliation: Latest task state"),
              "T2": ("TASK_GONE" if pa else "TASK_LOST", "Reconciliation: Task is unknown to the agent"),
              "T3": ("TASK_UNKNOWN" if pa else "TASK_LOST", "Reconciliation: Task is unknown"),
              "T4": ("TASK_UNREACHABLE" if pa else "TASK_LOST", "Reconciliation: Task is unreachable"),
              "T5": ("TASK_GONE_BY_OPERATOR" if pa else "TASK_LOST", "Reconciliation: Task is gone")}
    for tid, (state, msg) in expect.items():
        st = s.wait_update(tid)
        assert_master_update(st, state, "REASON_RECONCILIATION")
        assert st.message == msg and not st.data
    t1 = s.wait_update("T1")
    assert t1.healthy is True and t1.executor_id.value == "E1" and t1.agent_id.value == "A1"
    if pa:
        assert s.wait_update("T4").unreachable_time.nanoseconds > 0
    s.no_event("UPDATE", 0.3, predicate=lambda e: e.update.status.task_id.value == "T6")  # agent recovering
    assert set(master.known_tasks) == {"T1", "T7"}, "reconciliation answers change nothing"


def test_implicit_reconciliation_reports_every_known_task(master, clients):
    s = subscribe(master, clients)
    master.add_task("T1", "A1")
    master.add_task("T2", "A2", state="TASK_KILLING")
    s.call(reconcile_call(s.framework_id))
    got = {}
    wait_condition(s.cond, lambda: len(s.of_type("UPDATE")) >= 2, 10, "two updates")
    mark = s.mark()
    for ev in s.of_type("UPDATE"):
        got[ev.update.status.task_id.value] = state_name(ev.update.status.state)
        assert_master_update(ev.update.status, state_name(ev.update.status.state), "REASON_RECONCILIATION")
    assert got == {"T1": "TASK_RUNNING", "T2": "TASK_KILLING"}
    s.no_event("UPDATE", 0.2, after=mark)


def test_reconciliation_reports_the_state_last_sent(master, clients):
    s = subscribe(master, clients)
    master.add_task("T1", "A1", state="TASK_STAGING")
    st = master.send_update("T1", "TASK_RUNNING", healthy=False)
    s.wait_update("T1", "TASK_RUNNING")
    s.call(ack_call(s.framework_id, st))
    master.wait_ack(st.uuid)
    mark = s.mark()
    s.call(reconcile_call(s.framework_id, [("T1", "A1")]))
    rec = s.wait_update("T1", after=mark)
    assert state_name(rec.state) == "TASK_RUNNING" and rec.healthy is False


def test_kill_of_a_running_task(master, clients, timeline):
    master.auto_run(True)
    s = subscribe(master, clients)
    fid = s.framework_id
    launch(master, s)
    running = s.wait_update("T1", "TASK_RUNNING")
    s.call(ack_call(fid, running))
    s.call(kill_call(fid, "T1", "A1"))
    killed = s.wait_update("T1", "TASK_KILLED")
    assert killed.source == TaskStatus.SOURCE_EXECUTOR and len(killed.uuid) == 16
    assert master.wait_call("KILL").call.kill.task_id.value == "T1"
    s.call(ack_call(fid, killed))
    master.wait_ack(killed.uuid)
    assert master.known_tasks == {}
    timeline.assert_order(("master", "call.KILL"), ("master", "kill", "known=True"),
                          ("master", "event.UPDATE", "state=TASK_KILLED"))


def test_kill_goes_through_killing_when_asked_and_capable(master, clients):
    master.set_auto_kill(True, killing=True)
    s = subscribe(master, clients, caps=("TASK_KILLING_STATE",))
    master.add_task("T1", "A1")
    s.call(kill_call(s.framework_id, "T1"))
    killing = s.wait_update("T1", "TASK_KILLING")
    s.no_event("UPDATE", 0.3, predicate=lambda e: e.update.status.state == mesos_pb2.TASK_KILLED)
    s.call(ack_call(s.framework_id, killing))
    s.wait_update("T1", "TASK_KILLED")


def test_kill_without_auto_kill_is_only_recorded(master, clients):
    master.set_auto_kill(False)
    s = subscribe(master, clients)
    master.add_task("T1", "A1")
    s.call(kill_call(s.framework_id, "T1"))
    assert master.wait_call("KILL").status == 202
    s.no_event("UPDATE", 0.3)
    assert master.known_tasks["T1"].kill_requested


@pytest.mark.parametrize("pa, agent, state", [(False, None, "TASK_LOST"), (True, None, "TASK_UNKNOWN"),
                                              (True, "A1", "TASK_GONE"), (False, "A1", "TASK_LOST")])
def test_kill_of_an_unknown_task_answers_as_reconciliation(master, clients, pa, agent, state):
    s = subscribe(master, clients, caps=("PARTITION_AWARE",) if pa else ())
    master.add_agent(make_offer("A1"))
    s.call(kill_call(s.framework_id, "T-unknown", agent))
    st = s.wait_update("T-unknown")
    assert_master_update(st, state, "REASON_RECONCILIATION", "Reconciliation: Task is unknown")


# --------------------------------------------------------------------------
# Disconnection, failover timeout, master failover, restarts


def test_failover_timeout_keeps_then_kills_the_tasks(master, clients, timeline):
    master.auto_run(True)
    s = subscribe(master, clients, failover_timeout=60)
    fid = s.framework_id
    launch(master, s)
    s.wait_update("T1", "TASK_RUNNING")
    s.close()
    master.wait_disconnected()
    # Back within the timeout; the new FrameworkInfo shortens it.
    s2 = subscribe(master, clients, fid=fid, failover_timeout=0.5)
    assert "T1" in master.known_tasks
    s2.wait_update("T1", "TASK_RUNNING")  # the unacknowledged update comes again
    dropped_at = time.monotonic()
    master.drop_stream()
    master.wait_removed(timeout=5)
    assert time.monotonic() - dropped_at >= 0.45
    assert master.known_tasks == {}
    assert timeline.first("master", "framework.removed", f"framework={fid} why=failover timeout killed=T1")
    late = Sched(master, subscribe_call(fid))
    clients.append(late)
    assert late.status == 200
    assert late.wait_event("ERROR").error.message == "Framework has been removed"
    assert late.wait_ended() == "end"
    assert master.subscriptions[-1].refused == "Framework has been removed"
    with pytest.raises(WaitTimeout):
        master.wait_subscribed(3, timeout=0.05)
    r = post(master, make_call(Call.REVIVE, fid), stream_id=late.stream_id)
    assert (r.status, r.text) == (400, "Framework cannot be found")


def test_zero_failover_timeout_removes_the_framework_at_once(master, clients):
    s = subscribe(master, clients, failover_timeout=0)
    master.add_task("T1", "A1")
    s.close()
    master.wait_removed()
    assert master.removed_frameworks == [s.framework_id]


def test_teardown_removes_the_framework(master, clients):
    s = subscribe(master, clients)
    master.add_task("T1", "A1")
    assert s.call(make_call(Call.TEARDOWN, s.framework_id)).status == 202
    assert s.wait_ended() == "end"
    master.wait_removed()
    assert master.known_tasks == {}


def test_master_failover_needs_a_resubscription(master, clients):
    s = subscribe(master, clients)
    fid, old_master = s.framework_id, master.master_id
    master.add_task("T1", "A1")
    master.fail_over()
    assert s.wait_ended() == "broken"
    assert master.master_id != old_master
    r = s.call(make_call(Call.REVIVE, fid))
    assert (r.status, r.text) == (403, "Framework is not subscribed")
    s2 = subscribe(master, clients, fid=fid)
    assert s2.wait_event("SUBSCRIBED").subscribed.master_info.id == master.master_id
    assert "T1" in master.known_tasks


def test_go_down_and_come_back_on_the_same_port(master, clients, timeline):
    s = subscribe(master, clients, failover_timeout=0)
    fid, port = s.framework_id, master.port
    master.add_task("T1", "A1")
    master.go_down()
    assert s.wait_ended() == "broken"
    with pytest.raises(ConnectionRefusedError):
        post(master, subscribe_call())
    master.come_back()
    assert master.port == port
    r = s.call(make_call(Call.REVIVE, fid))
    assert (r.status, r.text) == (403, "Framework is not subscribed"), "recovered, not yet re-subscribed"
    subscribe(master, clients, fid=fid)
    assert "T1" in master.known_tasks
    timeline.assert_order(("master", "down"), ("master", "up"))


@pytest.mark.parametrize("how, ended", [("end", "end"), ("close", "broken"), ("reset", "broken")])
def test_drop_stream(master, clients, how, ended):
    s = subscribe(master, clients)
    master.drop_stream(how)
    assert s.wait_ended() == ended
    assert not master.connected()
    with pytest.raises(NotSubscribed):
        master.send_heartbeat()


# --------------------------------------------------------------------------
# Heartbeats and other events


def test_heartbeats_every_interval_and_pausing_them(master, clients, timeline):
    master.set_heartbeats(interval=0.1)
    s = subscribe(master, clients)
    assert s.wait_event("SUBSCRIBED").subscribed.heartbeat_interval_seconds == 0.1
    wait_condition(s.cond, lambda: len(s.of_type("HEARTBEAT")) >= 5, 10, "five heartbeats")
    t = [r.t for r in timeline.records("master", "event.HEARTBEAT")][:5]
    gaps = [b - a for a, b in zip(t[1:], t[2:])]
    assert all(0.08 <= g <= 0.5 for g in gaps), gaps
    master.pause_heartbeats()
    mark = s.mark()
    timeline.wait("master", "heartbeats", "paused")
    s.no_event("HEARTBEAT", 0.5, after=mark + 1)  # one may have been in flight
    master.resume_heartbeats()
    s.wait_event("HEARTBEAT", after=s.mark(), timeout=1.0)


def test_disabled_heartbeats_are_still_advertised(clients, timeline):
    master = FakeMaster(timeline=timeline, heartbeat_interval=0.1, heartbeats=False).start()
    try:
        s = subscribe(master, clients)
        assert s.wait_event("SUBSCRIBED").subscribed.heartbeat_interval_seconds == 0.1
        s.no_event("HEARTBEAT", 0.5)
    finally:
        master.stop()
    master.check()


def test_message_failure_error_and_recorded_calls(master, clients):
    s = subscribe(master, clients)
    fid = s.framework_id
    master.send_message("A1", "E1", b"\x00hello")
    assert s.wait_event("MESSAGE").message.data == b"\x00hello"
    master.send_failure("A1", "E1", status=256)
    fail = s.wait_event("FAILURE").failure
    assert (fail.executor_id.value, fail.status) == ("E1", 256)
    master.send_error("nope")
    assert s.wait_event("ERROR").error.message == "nope"
    msg = make_call(Call.MESSAGE, fid)
    msg.message.agent_id.value, msg.message.executor_id.value, msg.message.data = "A1", "E1", b"hi"
    shutdown = make_call(Call.SHUTDOWN, fid)
    shutdown.shutdown.agent_id.value, shutdown.shutdown.executor_id.value = "A1", "E1"
    assert s.call(msg).status == 202 and s.call(shutdown).status == 202
    assert master.wait_call("MESSAGE", lambda c: c.message.data == b"hi")
    assert master.wait_call("SHUTDOWN").call.shutdown.executor_id.value == "E1"


def test_small_chunks_and_raw_bytes(clients, timeline):
    master = FakeMaster(timeline=timeline, chunk_size=3).start()
    try:
        s = subscribe(master, clients)  # SUBSCRIBED arrived in 3-byte chunks
        ev = Event(type=Event.ERROR)
        ev.error.message = "sent raw"
        master.send_raw(recordio.encode(ev.SerializeToString()))
        assert s.wait_event("ERROR").error.message == "sent raw"
        assert timeline.first("master", "event.raw")
    finally:
        master.stop()
    master.check()


def test_status_record_matches_the_c_schema():
    data = status_record(healthy=True, registered=True, registration="registered", service_id="svc", failures=2,
                         latency_us=1500, error="", registered_at_ms=1700000000000)
    import msgpack
    raw = msgpack.unpackb(data, raw=False)
    assert list(raw) == ["v", "h", "r", "rs", "s", "f", "l", "e", "t"]
    assert raw["v"] == 1 and raw["rs"] == "registered"
    assert parse_status_record(data)["latency_us"] == 1500
    assert parse_status_record(status_record())["healthy"] is None
    with pytest.raises(ValueError):
        status_record(registration="bogus")


def test_waits_name_what_they_waited_for(master):
    with pytest.raises(WaitTimeout, match="subscription #1"):
        master.wait_subscribed(timeout=0.05)
    with pytest.raises(WaitTimeout, match="2 task launch"):
        master.wait_launch(2, timeout=0.05)
    with pytest.raises(NotSubscribed):
        master.send_offers([make_offer("A1")])
