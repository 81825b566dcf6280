"""Tests of the harness itself: the fake Mesos agent speaks the executor API
the way the real agent does (checked with raw HTTP from the test and with the
pacer-probe C client), RecordIO framing, the Timeline, and the process
registry's leak check."""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import harness
from fakes import recordio
from fakes.mesos_agent import (JSON, PROTOBUF, Call, Event, FakeAgent, TaskStatus, make_task, mesos_pb2,
                               parse_duration)


# --------------------------------------------------------------------------
# A minimal executor-side client in Python, to poke the fake directly.


def make_call(call_type, framework_id="F1", executor_id="E1"):
    call = Call(type=call_type)
    call.framework_id.value = framework_id
    call.executor_id.value = executor_id
    if call_type == Call.SUBSCRIBE:
        call.subscribe.SetInParent()
    return call


def make_update(task_id="T1", state=mesos_pb2.TASK_RUNNING, uuid=None, source=TaskStatus.SOURCE_EXECUTOR,
                executor_id="E1"):
    call = make_call(Call.UPDATE, executor_id=executor_id)
    st = call.update.status
    st.task_id.value = task_id
    st.state = state
    st.uuid = os.urandom(16) if uuid is None else uuid
    if source is not None:
        st.source = source
    st.executor_id.value = executor_id
    st.timestamp = time.time()
    return call


def post(agent, body, content_type=PROTOBUF, accept=None, path="/api/v1/executor"):
    """One request on a fresh connection; returns (status, body text, headers)."""
    if not isinstance(body, (bytes, bytearray)):
        body = body.SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    try:
        conn.request("POST", path, body=bytes(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()


class Stream:
    """A SUBSCRIBE connection reading decoded events."""

    def __init__(self, agent, call=None, accept=PROTOBUF):
        call = call or make_call(Call.SUBSCRIBE)
        self.conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
        headers = {"Content-Type": PROTOBUF}
        if accept is not None:
            headers["Accept"] = accept
        self.conn.request("POST", "/api/v1/executor", body=call.SerializeToString(), headers=headers)
        self.resp = self.conn.getresponse()
        self.media = self.resp.getheader("Content-Type")
        self.decoder = recordio.Decoder()
        self.pending = []

    def next_record(self, timeout=10.0):
        """The next RecordIO record; None at EOF."""
        self.conn.sock.settimeout(timeout)
        while not self.pending:
            data = self.resp.read1(65536)
            if not data:
                return None
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    def next_event(self, timeout=10.0):
        rec = self.next_record(timeout)
        assert rec is not None, "stream ended"
        assert self.media == PROTOBUF
        return Event.FromString(rec)

    def close(self):
        self.conn.close()


@pytest.fixture
def agent(fake_agent):
    return fake_agent


@pytest.fixture
def stream(agent):
    s = Stream(agent)
    yield s
    s.close()


# --------------------------------------------------------------------------
# The probe drives the fake through a whole executor life.


@pytest.fixture(scope="session")
def probe_binary():
    return harness.find_binary("pacer-probe")


def test_probe_subscribe_launch_update_ack_shutdown(agent, probe_binary, timeline):
    probe = agent.launch_executor(probe_binary)
    sub = agent.wait_subscribed()
    assert sub.media_type == PROTOBUF
    assert sub.unacknowledged_tasks == [] and sub.unacknowledged_updates == []
    probe.wait_output(r"^event SUBSCRIBED$")

    agent.send_launch(make_task("T1", cmd="sleep 100"))
    update = agent.wait_state("T1", "TASK_RUNNING")
    assert len(update.uuid) == 16
    assert update.source == "SOURCE_EXECUTOR"
    assert update.status.executor_id.value == "E1"
    assert abs(update.status.timestamp - time.time()) < 60
    probe.wait_output(r"^event LAUNCH task=T1$")
    probe.wait_output(r"^ack T1$")
    assert agent.acknowledged(update.uuid)

    agent.send_shutdown()
    assert probe.wait_exit(10) == 0
    assert probe.lines() == ["event SUBSCRIBED", "event LAUNCH task=T1", "event ACKNOWLEDGED task=T1", "ack T1",
                             "event SHUTDOWN"]
    timeline.assert_order(("agent", "call.SUBSCRIBE"), ("agent", "event.SUBSCRIBED"), ("agent", "event.LAUNCH"),
                          ("agent", "call.UPDATE", "state=TASK_RUNNING"), ("agent", "event.ACKNOWLEDGED"),
                          ("agent", "event.SHUTDOWN"))


def test_probe_receives_queued_launch_after_subscribed_in_small_chunks(procs, workdir, timeline, probe_binary):
    # Every framed event split into 3-byte HTTP chunks: the probe's decoder
    # must not take a chunk for a record.
    agent = FakeAgent(procs=procs, workdir=workdir, timeline=timeline, chunk_size=3).start()
    try:
        assert agent.send_launch(make_task("T1", cmd="true")) is False  # queued: nobody subscribed
        probe = agent.launch_executor(probe_binary)
        agent.wait_state("T1", "TASK_RUNNING")
        probe.wait_output(r"^ack T1$")
        agent.send_shutdown()
        assert probe.wait_exit(10) == 0
        assert probe.lines()[:2] == ["event SUBSCRIBED", "event LAUNCH task=T1"]
    finally:
        agent.stop_executors()
        agent.stop()


def test_probe_exits_nonzero_on_malformed_stream(agent, probe_binary):
    probe = agent.launch_executor(probe_binary)
    agent.wait_subscribed()
    probe.wait_output(r"^event SUBSCRIBED$")
    agent.send_raw(b"12x\n")
    assert probe.wait_exit(10) != 0
    assert "recordio" in probe.stderr.lower() or "malformed" in probe.stderr.lower()


def test_launch_executor_environment_is_exactly_the_agents(agent, workdir):
    proc = agent.launch_executor("/usr/bin/env", checkpoint=True, env={"EXTRA": "x"})
    assert proc.wait_exit(10) == 0
    env = dict(line.split("=", 1) for line in proc.lines())
    sandbox = str(agent.sandbox())
    for k in harness.SANITIZER_ENV:
        env.pop(k, None)
    assert env == {
        "MESOS_FRAMEWORK_ID": "F1",
        "MESOS_EXECUTOR_ID": "E1",
        "MESOS_DIRECTORY": sandbox,
        "MESOS_SANDBOX": sandbox,
        "MESOS_AGENT_ENDPOINT": f"127.0.0.1:{agent.port}",
        "MESOS_SLAVE_ID": agent.agent_id,
        "MESOS_SLAVE_PID": f"slave(1)@127.0.0.1:{agent.port}",
        "MESOS_CHECKPOINT": "1",
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
        "MESOS_RECOVERY_TIMEOUT": "15mins",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
        "LIBPROCESS_PORT": "0",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "EXTRA": "x",
    }
    assert os.path.isdir(sandbox) and str(workdir) in sandbox


def test_launch_executor_without_checkpointing_and_removed_variable(agent):
    proc = agent.launch_executor("/bin/sh", executor_id="E2", argv=["-c", "env; pwd"], checkpoint=False,
                                 env={"MESOS_AGENT_ENDPOINT": None})
    assert proc.wait_exit(10) == 0
    lines = proc.lines()
    assert "MESOS_CHECKPOINT=0" in lines and "MESOS_EXECUTOR_ID=E2" in lines
    names = {line.split("=", 1)[0] for line in lines if "=" in line}
    assert not names & {"MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX", "MESOS_AGENT_ENDPOINT"}
    assert lines[-1] == str(agent.sandbox("E2"))


# --------------------------------------------------------------------------
# Media types and validation, as the agent answers them


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-protobuf; charset=utf-8", "application/octet-stream"])
def test_wrong_content_type_is_415(agent, ctype):
    status, body, _ = post(agent, make_call(Call.SUBSCRIBE), content_type=ctype)
    assert status == 415
    assert "application/x-protobuf" in body


def test_missing_content_type_is_400(agent):
    status, body, _ = post(agent, make_call(Call.SUBSCRIBE), content_type=None)
    assert status == 400 and "Content-Type" in body


def test_update_before_subscribe_is_403(agent):
    status, body, _ = post(agent, make_update())
    assert (status, body) == (403, "Executor is not subscribed")
    assert agent.updates == []


def test_uuid_of_15_bytes_is_400(agent, stream):
    agent.wait_subscribed()
    status, body, _ = post(agent, make_update(uuid=os.urandom(15)))
    assert status == 400 and "UUID" in body
    assert agent.updates == []
    # The same update with 16 bytes is fine.
    assert post(agent, make_update())[0] == 202


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x05ab", b""], ids=["garbage", "truncated", "empty"])
def test_malformed_protobuf_is_400(agent, body):
    status, text, _ = post(agent, body)
    assert (status, text) == (400, "Failed to parse body into Call protobuf")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update.status.ClearField("source"), "invalid source"),  # unset reads as SOURCE_MASTER
    (lambda c: setattr(c.update.status, "source", TaskStatus.SOURCE_AGENT), "invalid source"),
    (lambda c: setattr(c.update.status, "state", mesos_pb2.TASK_STAGING), "TASK_STAGING"),
    (lambda c: setattr(c.update.status.executor_id, "value", "other"), "does not match"),
    (lambda c: c.update.status.ClearField("uuid"), "'uuid'"),
    (lambda c: c.ClearField("update"), "'update'"),
    (lambda c: c.ClearField("type"), "'type'"),
], ids=["source-unset", "source-agent", "staging", "executor-mismatch", "no-uuid", "no-update", "no-type"])
def test_invalid_update_is_400(agent, stream, change, message):
    agent.wait_subscribed()
    call = make_update()
    change(call)
    status, body, _ = post(agent, call)
    assert status == 400
    assert body.startswith("Failed to validate Executor::Call: ") and message in body
    assert agent.updates == []


def test_subscribe_without_subscribe_message_is_400(agent):
    call = make_call(Call.SUBSCRIBE)
    call.ClearField("subscribe")
    status, body, _ = post(agent, call)
    assert status == 400 and "'subscribe'" in body


def test_unknown_executor_and_framework_are_400(agent):
    assert post(agent, make_call(Call.SUBSCRIBE, executor_id="nope"))[:2] == (400, "Executor cannot be found")
    assert post(agent, make_call(Call.SUBSCRIBE, framework_id="nope"))[:2] == (400, "Framework cannot be found")


def test_other_methods_and_paths(agent):
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    conn.request("GET", "/api/v1/executor")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405
    conn.request("POST", "/api/v1/scheduler", body=b"", headers={"Content-Type": PROTOBUF})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 404
    conn.close()
    # The libprocess-style path of the C++ executor library works too.
    assert post(agent, make_update(), path="/slave(1)/api/v1/executor")[0] == 403


def test_keep_alive_serves_many_calls_on_one_connection(agent, stream):
    agent.wait_subscribed()
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    for _ in range(5):
        conn.request("POST", "/api/v1/executor", body=make_update().SerializeToString(),
                     headers={"Content-Type": PROTOBUF})
        resp = conn.getresponse()
        assert resp.status == 202 and resp.read() == b""
    conn.request("POST", "/api/v1/executor", body=make_call(Call.HEARTBEAT).SerializeToString(),
                 headers={"Content-Type": PROTOBUF})
    assert conn.getresponse().status == 202
    conn.close()
    assert len(agent.updates) == 5
    assert agent.wait_call("HEARTBEAT").status == 202


# --------------------------------------------------------------------------
# The subscription stream


def test_subscribe_stream_headers_and_first_event(agent, stream):
    assert stream.resp.status == 200
    assert stream.resp.getheader("Content-Type") == PROTOBUF
    assert stream.resp.getheader("Transfer-Encoding") == "chunked"
    ev = stream.next_event()
    assert ev.type == Event.SUBSCRIBED
    sub = ev.subscribed
    assert sub.executor_info.executor_id.value == "E1"
    assert sub.framework_info.id.value == "F1"
    caps = [c.type for c in sub.framework_info.capabilities]
    assert caps == [mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE]
    assert sub.agent_info.id.value == agent.agent_id and sub.agent_info.port == agent.port
    assert sub.container_id.value


def test_capabilities_are_configurable(procs, workdir, timeline):
    agent = FakeAgent(procs=procs, workdir=workdir, timeline=timeline, capabilities=()).start()
    try:
        s = Stream(agent)
        assert list(s.next_event().subscribed.framework_info.capabilities) == []
        s.close()
    finally:
        agent.stop()


@pytest.mark.parametrize("accept, media", [(None, JSON), ("*/*", JSON), (PROTOBUF, PROTOBUF),
                                           (f"{JSON};q=0, {PROTOBUF}", PROTOBUF), ("application/*", JSON)])
def test_accept_negotiation_prefers_json(agent, accept, media):
    s = Stream(agent, accept=accept)
    try:
        assert s.resp.status == 200 and s.media == media
        rec = s.next_record()
        if media == JSON:
            assert rec.startswith(b'{"type":"SUBSCRIBED"')
        else:
            assert Event.FromString(rec).type == Event.SUBSCRIBED
    finally:
        s.close()


def test_unacceptable_accept_is_406(agent):
    status, _, _ = post(agent, make_call(Call.SUBSCRIBE), accept="text/html")
    assert status == 406


def test_json_calls_are_understood(agent, stream):
    agent.wait_subscribed()
    body = ('{"type":"UPDATE","framework_id":{"value":"F1"},"executor_id":{"value":"E1"},'
            '"update":{"status":{"task_id":{"value":"T9"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR",'
            '"uuid":"AAECAwQFBgcICQoLDA0ODw==","unknown_key":1}}}')
    status, text, _ = post(agent, body.encode(), content_type=JSON)
    assert (status, text) == (202, "")
    assert agent.wait_state("T9", "TASK_RUNNING").uuid == bytes(range(16))
    status, text, _ = post(agent, b'{"type":"UPDATE"', content_type=JSON)
    assert status == 400 and text.startswith("Failed to parse body into JSON")


def test_events_in_order_and_ack_follows_update(agent, stream):
    assert stream.next_event().type == Event.SUBSCRIBED
    agent.send_launch(make_task("T1", cmd="true"))
    ev = stream.next_event()
    assert ev.type == Event.LAUNCH and ev.launch.task.task_id.value == "T1"
    u = os.urandom(16)
    assert post(agent, make_update(uuid=u))[0] == 202
    ev = stream.next_event()
    assert ev.type == Event.ACKNOWLEDGED
    assert (ev.acknowledged.task_id.value, ev.acknowledged.uuid) == ("T1", u)
    agent.send_kill("T1", grace_seconds=1.5)
    ev = stream.next_event()
    assert ev.type == Event.KILL and ev.kill.kill_policy.grace_period.nanoseconds == 1_500_000_000
    agent.send_message(b"\x00hi")
    agent.send_error("boom")
    agent.send_heartbeat()
    assert [stream.next_event().type for _ in range(3)] == [Event.MESSAGE, Event.ERROR, Event.HEARTBEAT]
    agent.send_shutdown()
    assert stream.next_event().type == Event.SHUTDOWN
    assert agent.executor_state() == "TERMINATING"


def test_withheld_acks_are_released_on_demand(agent, stream):
    agent.set_ack_policy(auto=False)
    assert stream.next_event().type == Event.SUBSCRIBED
    u1, u2 = os.urandom(16), os.urandom(16)
    post(agent, make_update(uuid=u1))
    post(agent, make_update(uuid=u2, task_id="T2"))
    agent.wait_update(lambda u: u.uuid == u2)
    assert agent.withheld_acks() == [("T1", u1), ("T2", u2)]
    assert agent.ack(uuid=u2) == 1
    ev = stream.next_event()
    assert ev.acknowledged.uuid == u2
    assert agent.acknowledged(u2) and not agent.acknowledged(u1)


def test_delayed_ack(agent, stream):
    agent.set_ack_policy(delay=0.3)
    stream.next_event()
    post(agent, make_update())
    t0 = time.monotonic()
    assert stream.next_event().type == Event.ACKNOWLEDGED
    assert time.monotonic() - t0 >= 0.25


def test_resubscribe_ends_old_stream_reinjects_and_dedupes(agent, stream):
    agent.set_ack_policy(auto=False)
    stream.next_event()
    task = make_task("T1", cmd="true")
    agent.send_launch(task)
    stream.next_event()
    u1, u2 = os.urandom(16), os.urandom(16)
    first = make_update(uuid=u1)
    post(agent, first)

    call = make_call(Call.SUBSCRIBE)
    call.subscribe.unacknowledged_tasks.add().CopyFrom(task)
    call.subscribe.unacknowledged_updates.add().CopyFrom(first.update)  # a duplicate
    call.subscribe.unacknowledged_updates.add().CopyFrom(make_update(uuid=u2, state=mesos_pb2.TASK_FAILED).update)
    agent.set_ack_policy(auto=True)
    second = Stream(agent, call)
    try:
        assert stream.next_record() is None  # the old stream ended cleanly
        assert second.next_event().type == Event.SUBSCRIBED
        sub = agent.wait_subscribed(count=2)
        assert [t.task_id.value for t in sub.unacknowledged_tasks] == ["T1"]
        assert [s.uuid for s in sub.unacknowledged_updates] == [u1, u2]
        # Both carried updates are acknowledged, the duplicate too.
        acked = {second.next_event().acknowledged.uuid for _ in range(2)}
        assert acked == {u1, u2}
        assert [u.uuid for u in agent.updates] == [u1, u2]
        assert [(u.uuid, u.via) for u in agent.updates] == [(u1, "update"), (u2, "subscribe")]
        assert [d.uuid for d in agent.duplicates] == [u1]
    finally:
        second.close()


def test_stream_closed_by_executor_is_noticed(agent, timeline):
    s = Stream(agent)
    s.next_event()
    assert agent.connected()
    s.close()
    agent.wait_disconnected()
    timeline.wait("agent", "stream.closed")
    with pytest.raises(Exception):
        agent.send_heartbeat()


@pytest.mark.parametrize("how", ["close", "end", "reset"])
def test_drop_stream(agent, stream, how):
    stream.next_event()
    agent.drop_stream(how)
    if how == "reset":
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            stream.next_record()
    elif how == "end":
        assert stream.next_record() is None
    else:
        with pytest.raises(http.client.IncompleteRead):
            stream.next_record()
    assert not agent.connected()


def test_go_down_and_come_back_on_the_same_port(agent, stream):
    stream.next_event()
    port = agent.port
    agent.go_down()
    with pytest.raises(http.client.IncompleteRead):
        stream.next_record()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    agent.come_back()
    assert agent.port == port
    # The executor was subscribed before: the agent knows it, so an UPDATE on
    # the way back in is accepted, and a new SUBSCRIBE works.
    assert post(agent, make_update())[0] == 202
    s = Stream(agent)
    assert s.next_event().type == Event.SUBSCRIBED
    s.close()


def test_unavailable_like_a_recovering_agent(agent):
    agent.set_unavailable(503)
    assert post(agent, make_call(Call.SUBSCRIBE)) [:2] == (503, "Agent has not finished recovery")
    agent.set_unavailable(503, allow_subscribe=True)
    s = Stream(agent)
    try:
        assert s.next_event().type == Event.SUBSCRIBED
        assert post(agent, make_call(Call.HEARTBEAT))[0] == 202
        assert post(agent, make_update())[0] == 503
        agent.set_unavailable(None)
        assert post(agent, make_update())[0] == 202
    finally:
        s.close()


def test_terminating_executor_gets_shutdown_on_subscribe(agent):
    agent.send_shutdown()
    s = Stream(agent)
    try:
        assert s.next_event().type == Event.SHUTDOWN
        assert s.next_record() is None
    finally:
        s.close()


# --------------------------------------------------------------------------
# RecordIO, durations, timeline, process registry


def test_recordio_round_trip_split_anywhere():
    records = [b"", b"a", b"\n\n12\n", bytes(range(256)) * 4]
    stream = b"".join(recordio.encode(r) for r in records)
    assert recordio.encode(b"abc") == b"3\nabc"
    for step in (1, 2, 3, 7, len(stream)):
        d = recordio.Decoder()
        out = []
        for i in range(0, len(stream), step):
            out.extend(d.feed(stream[i:i + step]))
        assert out == records and d.at_boundary


@pytest.mark.parametrize("data, what", [(b"1x\n", "unexpected byte 0x78 in a length header at byte 1"),
                                        (b"9" * 21, "longer than 20 digits"),
                                        (b"99999999999\n", "over the"), (b"-1\n", "0x2d in a length header at byte 0")])
def test_recordio_rejects_bad_headers(data, what):
    d = recordio.Decoder(max_record=1024)
    with pytest.raises(recordio.RecordIOError, match=what):
        d.feed(data)
    with pytest.raises(recordio.RecordIOError):
        d.feed(b"1\na")  # stays failed


def test_parse_duration():
    assert parse_duration("5secs") == 5 * 10**9
    assert parse_duration("1.5mins") == 90 * 10**9
    for bad in ("5", "5s", "-1secs", "1h30m", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_timeline_order_and_wait():
    tl = harness.Timeline()
    detail = {"service": "web", "port": 1}
    tl.record("consul", "deregister", detail)
    detail["service"] = "changed"  # the record keeps a snapshot
    tl.record("agent", "event.KILL", "task=T1")
    tl.assert_order(("consul", "deregister", {"service": "web"}), ("agent", "event.KILL", "T1"))
    assert tl.first("consul", match="service=web port=1").detail == {"service": "web", "port": 1}
    assert tl.first(match={"service": "other"}) is None
    assert tl.first(match=lambda r: r.kind == "event.KILL").source == "agent"
    with pytest.raises(AssertionError, match="expected"):
        tl.assert_order(("agent", "event.KILL"), ("consul", "deregister"))
    with pytest.raises(AssertionError, match="no timeline record"):
        tl.assert_order(("agent", "event.LAUNCH"))
    with pytest.raises(harness.WaitTimeout, match="timed out after 0.05s"):
        tl.wait("agent", "event.LAUNCH", timeout=0.05)


def test_wait_for_names_what_it_waited_for():
    with pytest.raises(harness.WaitTimeout, match="timed out after 0.05s waiting for the moon"):
        harness.wait_for(lambda: False, 0.05, "the moon")
    assert harness.wait_for(lambda: 42, 1, "an answer") == 42


def test_registry_stops_processes_and_reports_leaks(workdir):
    reg = harness.ProcessRegistry(workdir / "reg", stop_timeout=1.0, orphan_grace=0.5)
    stubborn = reg.start(["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"], name="stubborn")
    stubborn.wait_output("^ready$")
    # A grandchild in a process group of its own, orphaned when its parent exits.
    leaker = reg.start([sys.executable, "-c", "import subprocess; p = subprocess.Popen(['sleep', '300'], "
                        "process_group=0, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"])
    leaked_pid = int(leaker.wait_output(r"^(\d+)$").group(1))
    assert leaker.wait_exit(10) == 0
    assert harness.pid_alive(leaked_pid)
    assert harness.proc_info(leaked_pid).ppid == os.getpid()  # we are the subreaper
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=f"pid {leaked_pid}"):
        reg.close()
    assert not harness.pid_alive(leaked_pid)
    assert stubborn.how_stopped == "killed" and not stubborn.alive()
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("strict", [False, True])
def test_registry_strict_mode_reports_what_is_left_in_the_group(workdir, strict):
    reg = harness.ProcessRegistry(workdir / "reg", orphan_grace=0.5)
    p = reg.start(["/bin/sh", "-c", "sleep 300 & echo $!; wait"], strict=strict)
    sleeper = int(p.wait_output(r"^(\d+)$").group(1))
    if strict:
        with pytest.raises(AssertionError, match=f"pid {sleeper} pgid {p.pid} .*sleep 300"):
            reg.close()
    else:
        reg.close()
    assert p.how_stopped == "terminated"
    assert not harness.pid_alive(sleeper)


def test_proc_helpers(procs):
    p = procs.start(["/bin/sh", "-c", "sleep 300 & sleep 300 & echo started; wait"])
    p.wait_output("^started$")
    kids = harness.wait_for(lambda: len(harness.descendants(p.pid)) == 2 and harness.descendants(p.pid), 5,
                            "two sleeps")
    assert sorted(harness.pids_in_group(p.pid)) == sorted([p.pid] + kids)
    assert all(harness.pid_alive(k) for k in kids)
    os.killpg(p.pid, 9)
    p.wait_exit()
    harness.wait_for(lambda: not any(harness.pid_alive(k) for k in kids), 5, "sleeps to die")


def test_real_marker_policy(monkeypatch):
    monkeypatch.delenv("PACER_EXT_DIR", raising=False)
    monkeypatch.setenv("PACER_REQUIRE_REAL", "1")
    with pytest.raises(pytest.fail.Exception, match="PACER_EXT_DIR is not set"):
        harness.require_ext_dir()
    monkeypatch.delenv("PACER_REQUIRE_REAL")
    with pytest.raises(pytest.skip.Exception):
        harness.require_ext_dir()


def test_subprocess_module_is_not_confused_by_the_subreaper():
    # Popen must still collect its own children's exit codes.
    assert subprocess.run(["/bin/sh", "-c", "exit 3"]).returncode == 3


def test_seccomp_complaints_found_in_any_log_under_the_root():
    # outside pytest's basetemp: the scan at the end of the session would count these
    with tempfile.TemporaryDirectory(prefix="pacer-seccomp-scan-") as d:
        _check_seccomp_complaints(Path(d))


def _check_seccomp_complaints(tmp_path):
    line = (b"pacer-executor: system call 59 is not in the executor's seccomp allow-list; it failed "
            b"with ENOSYS. This is a bug: please report it (--no-harden runs without the list).")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "pacer-executor.stderr").write_bytes(b"ok\n" + line + b"\nok\n")
    (tmp_path / "sandboxes" / "F1.E1").mkdir(parents=True)
    (tmp_path / "sandboxes" / "F1.E1" / "stderr.1").write_bytes(line + b"\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "executor.log").write_bytes(line)
    (tmp_path / "data" / "notes.txt").write_bytes(line)  # not a log
    (tmp_path / "clean.stderr").write_bytes(b"pacer-executor: all fine\n")
    found = sorted((p.relative_to(tmp_path).as_posix(), text) for p, text in harness.seccomp_complaints(tmp_path))
    assert [p for p, _ in found] == ["data/executor.log", "logs/pacer-executor.stderr",
                                     "sandboxes/F1.E1/stderr.1"]
    assert all(text == line.decode() for _, text in found)
    assert harness.seccomp_complaints(tmp_path / "logs" / "nothing-here") == []
