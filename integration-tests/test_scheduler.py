"""pacer-scheduler against the fake Mesos master (issue: scheduler core).

Every test starts the real binary, drives it through its REST API and asserts
what the fake master saw (subscriptions, calls, launches, acknowledgements)
and what the API answers. Waits are on the fake master's Conditions and on the
scheduler's /v2/events stream (recorded into the Timeline), never on sleeps.
"""

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from fakes.mesos_master import FakeMaster, make_offer
from harness import find_binary, wait_for
from scheduler_support import (CRASH_MESSAGE, SIM_LABEL, Api, add_agents, app_spec, killed_since, launches_of,  # noqa: F401
                               MsgpackStream, make_scheduler, of_app, sim, task_ready)

DEFAULT_FAILOVER_TIMEOUT = 7 * 24 * 3600.0
IDLE_REFUSE_SECONDS = 120.0  # the scheduler's filter on offers declined while nothing waits
BUSY_REFUSE_SECONDS = 5.0  # ... and while work waits that the offers cannot take
TEN_MIB = 10 * 1024 * 1024


def decline_of_offers_after(master, t):
    """The DECLINE of the first offers written after time t (a time.monotonic()
    value): offers the scheduler read after everything it answered before t."""
    rec = master.timeline.wait("master", "event.OFFERS", after=t)
    offer_id = rec.text.split("offers=")[1].split("@")[0]
    return master.wait_decline(offer_id=offer_id)


def queue_entry(api, app_id):
    q = api.ok("GET", "/v2/queue")["queue"]
    return next((e for e in q if e["app"]["id"] == app_id), None)


def page_count(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()


def asan_build(binary):
    """True for a binary built with ASan (its own allocator)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def detail_errors(resp):
    """{path: [errors]} of a 422 answer."""
    body = resp.json
    return {d["path"]: d["errors"] for d in body.get("details", [])}


# --------------------------------------------------------------------------
# Master link


def test_subscribe_persists_framework_id_across_restart(make_scheduler, fake_master):
    s = make_scheduler().start()
    first = fake_master.wait_subscribed(1)
    assert not first.resubscribe and not first.call.HasField("framework_id")
    info = first.framework_info
    assert info.name == "pacer" and info.checkpoint
    assert info.failover_timeout == DEFAULT_FAILOVER_TIMEOUT
    assert list(info.roles) == ["*"]
    caps = {c.type for c in info.capabilities}
    assert {info.Capability.MULTI_ROLE, info.Capability.PARTITION_AWARE, info.Capability.TASK_KILLING_STATE} <= caps
    fid = first.framework_id
    assert s.api.ok("GET", "/v2/info")["frameworkId"] == fid
    fake_master.wait_call("RECONCILE")

    assert s.kill(signal.SIGTERM) == 0
    n_calls = len(fake_master.calls)
    s.start()
    second = fake_master.wait_subscribed(2)
    assert second.resubscribe and second.framework_id == fid
    assert second.call.framework_id.value == fid and second.framework_info.id.value == fid
    assert s.api.ok("GET", "/v2/info")["frameworkId"] == fid
    fake_master.wait_call("RECONCILE", after=n_calls)
    # every call but SUBSCRIBE carried the Mesos-Stream-Id of the stream live at the time
    others = [c for c in fake_master.calls if c.type != "SUBSCRIBE"]
    assert others
    for c in others:
        assert c.status == 202, f"{c.type} answered {c.status}: {c.reason}"
        assert c.stream_id in (first.stream_id, second.stream_id)


def test_removed_framework_stops_and_is_forgotten(make_scheduler, fake_master):
    s = make_scheduler("--failover-timeout=1secs").start()
    fid = fake_master.wait_subscribed(1).framework_id
    fake_master.wait_call("RECONCILE")  # sent once the framework id is stored
    s.kill()
    fake_master.wait_removed(fid, timeout=15)

    # its old id is refused for good: it says so and stops, instead of retrying forever
    rc, err = s.run_to_exit()
    assert rc == 1
    assert "Framework has been removed" in err
    assert "next start registers a new framework" in err
    refused = [sub for sub in fake_master.subscriptions if sub.refused]
    assert [(sub.framework_id, sub.refused) for sub in refused] == [(fid, "Framework has been removed")]

    s.start()
    third = fake_master.wait_subscribed(2)
    assert not third.call.HasField("framework_id"), "a forgotten id is not sent again"
    assert third.framework_id != fid
    assert s.api.ok("GET", "/v2/info")["frameworkId"] == third.framework_id


def test_follows_redirect_to_the_leading_master(make_scheduler, fake_master, timeline):
    leader = FakeMaster(timeline=timeline, update_retry_interval=0.5, update_retry_max=2.0).start()
    try:
        fake_master.redirect_to(leader)
        s = make_scheduler().start(subscribe_to=leader)
        redirected = [c for c in fake_master.calls if c.status == 307]
        assert redirected, "the configured master answered 307 first"
        assert not fake_master.subscriptions, "nothing subscribed at the master that does not lead"
        sub = leader.wait_subscribed(1)
        assert s.api.ok("GET", "/v2/info")["frameworkId"] == sub.framework_id
        assert s.api.ok("GET", "/v2/leader") == {"leader": leader.endpoint}
        s.kill()
    finally:
        leader.stop()
        leader.check()


def test_heartbeat_loss_resubscribes_with_same_framework_id(make_scheduler, fake_master):
    interval = 0.3
    fake_master.set_heartbeats(interval=interval)
    s = make_scheduler().start()
    first = fake_master.wait_subscribed(1)
    fake_master.pause_heartbeats()
    paused = time.monotonic()
    second = fake_master.wait_subscribed(2, timeout=15)
    fake_master.resume_heartbeats()
    assert second.resubscribe and second.framework_id == first.framework_id
    assert second.time - paused > 2 * interval, "re-subscribed only after several missed heartbeats"
    s.proc.wait_output(r"no heartbeat from the master", stream="stderr")
    fake_master.timeline.wait("master", "stream.closed", f"subscription={first.number} ")


# --------------------------------------------------------------------------
# Offers and placement


def test_unique_hostname_spreads_and_waits_with_reasons(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    r = s.api.post("/v2/apps", app_spec("/uniq", 3, constraints=[["hostname", "UNIQUE"]]))
    assert r.status == 201, r
    tasks = s.wait_tasks("/uniq", 3)
    assert sorted(t["host"] for t in tasks) == ["host1", "host2", "host3"]
    launched = launches_of(fake_master, "/uniq")
    assert sorted(lr.agent_id for lr in launched) == ["agent1", "agent2", "agent3"]
    accepts = fake_master.calls_of("ACCEPT")
    assert accepts and all(c.call.accept.filters.refuse_seconds == BUSY_REFUSE_SECONDS for c in accepts)

    # a fourth instance has no host left: it waits in /v2/queue with the reason
    s.api.ok("PATCH", "/v2/apps/uniq", {"instances": 4})
    patched = time.monotonic()
    entry = s.wait_until(lambda: (e := queue_entry(s.api, "/uniq")) and e["lastUnusedOfferReasons"] and e,
                         "the queue to explain why /uniq waits")
    assert entry["count"] == 1
    assert any("constraint hostname:UNIQUE not satisfied" in why for why in entry["lastUnusedOfferReasons"]), entry
    rejects = {x["reason"]: x["declined"] for x in entry["processedOffersSummary"]["rejectSummaryLastOffers"]}
    assert rejects["UnfulfilledConstraint"] >= 1
    # the offers it could not use are declined with the short filter (work is waiting)
    decline = decline_of_offers_after(fake_master, patched)
    assert decline.call.decline.filters.refuse_seconds == BUSY_REFUSE_SECONDS
    assert len(launches_of(fake_master, "/uniq")) == 3


def test_attribute_constraints_are_honoured(make_scheduler, fake_master, sim):
    racks = {"agent1": "r1", "agent2": "r2", "agent3": "r3"}
    add_agents(fake_master, 3, attributes=lambda i: {"rack": f"r{i}"})
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    apps = [
        app_spec("/cluster", 2, constraints=[["rack", "CLUSTER", "r2"]]),
        app_spec("/like", 4, constraints=[["rack", "LIKE", "r[13]"]]),
        app_spec("/unlike", 3, constraints=[["rack", "UNLIKE", "r1"]]),
        app_spec("/groupby", 3, constraints=[["rack", "GROUP_BY"]]),
        app_spec("/is", 2, constraints=[["rack", "IS", "r3"]]),
        app_spec("/maxper", 4, constraints=[["rack", "MAX_PER", "1"]]),
    ]
    s.api.ok("PUT", "/v2/apps", apps)
    for spec in apps[:-1]:
        s.wait_tasks(spec["id"], spec["instances"])

    def rack_counts(app_id):
        counts = {}
        for lr in launches_of(fake_master, app_id):
            counts[racks[lr.agent_id]] = counts.get(racks[lr.agent_id], 0) + 1
        return counts

    assert rack_counts("/cluster") == {"r2": 2}
    assert set(rack_counts("/like")) <= {"r1", "r3"} and sum(rack_counts("/like").values()) == 4
    assert set(rack_counts("/unlike")) <= {"r2", "r3"}
    assert rack_counts("/groupby") == {"r1": 1, "r2": 1, "r3": 1}
    assert rack_counts("/is") == {"r3": 2}
    # MAX_PER 1 over three racks: three run, the fourth waits
    s.wait_tasks("/maxper", 3)
    entry = s.wait_until(lambda: (e := queue_entry(s.api, "/maxper")) and e["lastUnusedOfferReasons"] and e,
                         "the queue to explain why /maxper waits")
    assert entry["count"] == 1
    assert any("constraint rack:MAX_PER:1 not satisfied" in why for why in entry["lastUnusedOfferReasons"]), entry
    assert rack_counts("/maxper") == {"r1": 1, "r2": 1, "r3": 1}


def test_idle_offers_declined_then_suppressed_and_revived_for_work(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    decline = fake_master.wait_decline()
    assert decline.call.decline.filters.refuse_seconds == IDLE_REFUSE_SECONDS
    assert len(decline.call.decline.offer_ids) == 2, "both agents' offers declined in one call"
    fake_master.wait_call("SUPPRESS")
    assert fake_master.suppressed()
    n_calls = len(fake_master.calls)
    r = s.api.post("/v2/apps", app_spec("/web", 2))
    assert r.status == 201, r
    revive = fake_master.wait_call("REVIVE", after=n_calls)
    launched = fake_master.wait_launch(2)
    assert revive.time < launched[0].time
    assert not fake_master.suppressed()
    s.wait_tasks("/web", 2)


# --------------------------------------------------------------------------
# Status updates, the store, reconciliation, recovery


def test_updates_acknowledged_only_once_stored(make_scheduler, fake_master, sim, workdir):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 2), status=201)
    tasks = s.wait_tasks("/web", 2)
    known = fake_master.known_tasks
    for t in tasks:
        statuses = [st for st in known[t["id"]].statuses if st.HasField("uuid")]
        assert statuses
        for st in statuses:
            assert fake_master.wait_ack(st.uuid).task_id == t["id"]
    acked = {t["id"] for t in tasks}
    assert s.kill(signal.SIGTERM) == 0

    # A full disk: the store is capped just above what it holds. The scale-up itself fits (the
    # API answers 200 only once it is stored); the records of its 100 new tasks do not, so none
    # of them is launched: the master never runs a task the store does not know.
    pages = page_count(workdir / "data" / "pacer.db")
    n_launches = len(fake_master.launches)
    s.start([f"--store-max-pages={pages + 2}"])
    r = s.api.patch("/v2/apps/web", {"instances": 102})
    assert r.status == 200, r
    not_sent = r"store commit failed: .*full.*the 100 launches of this offer round are not sent"
    s.proc.wait_output(not_sent, stream="stderr")
    s.proc.wait_output(not_sent, stream="stderr", after=len(s.proc.lines("stderr")))  # and at the next round
    assert len(fake_master.launches) == n_launches, "launched although its records could not be stored"
    assert s.metrics()["pacer_store_commit_failures_total"] >= 2

    # A store another process holds locked: an update cannot be stored, so it is not
    # acknowledged, and the master resends it until it is.
    s.restart(sig=signal.SIGTERM)
    s.wait_tasks("/web", 102)
    n_acks = len(fake_master.acks)
    lock = sqlite3.connect(workdir / "data" / "pacer.db", isolation_level=None, timeout=0)
    try:
        lock.execute("BEGIN IMMEDIATE")
        tid = sorted(acked)[0]
        update = fake_master.send_update(tid, "TASK_RUNNING", healthy=False)
        fake_master.timeline.wait("master", "update.retry", match=lambda rec: f"task={tid} " in rec.text and
                                  "attempt=3" in rec.text, timeout=15)
        assert not [a for a in fake_master.acks[n_acks:] if a.accepted and a.uuid == update.uuid]
        s.proc.wait_output(r"store commit failed: .*locked.*status updates stay unacknowledged", stream="stderr")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert fake_master.wait_ack(update.uuid).task_id == tid

    # After a crash, what was acknowledged is all there.
    s.restart()
    tasks = {t["id"]: t for t in s.api.tasks("/web")}
    assert s.api.app("/web")["instances"] == 102
    assert acked <= set(tasks)
    assert all(tasks[t]["state"] == "TASK_RUNNING" for t in acked)


def test_restart_recovers_state_reconciles_and_kills_strays(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fid = fake_master.wait_subscribed(1).framework_id
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 3), status=201)
    before = {t["id"]: t for t in s.wait_tasks("/web", 3)}
    version = s.api.app("/web")["version"]

    s.kill()
    fake_master.add_task("ghost.0b6e1c57-5f0e-4c1e-9d7e-3a4b5c6d7e8f", "agent1", framework_id=fid)
    n_calls, n_launches = len(fake_master.calls), len(fake_master.launches)
    s.start()
    sub = fake_master.wait_subscribed(2)
    assert sub.resubscribe and sub.framework_id == fid
    explicit = fake_master.wait_call("RECONCILE", lambda c: len(c.reconcile.tasks) > 0, after=n_calls)
    asked = {t.task_id.value: t.agent_id.value for t in explicit.call.reconcile.tasks}
    assert asked == {tid: t["slaveId"] for tid, t in before.items()}
    fake_master.wait_call("RECONCILE", lambda c: len(c.reconcile.tasks) == 0, after=n_calls)
    fake_master.wait_call("KILL", lambda c: c.kill.task_id.value.startswith("ghost."), after=n_calls)
    assert s.metrics()["pacer_stray_tasks_killed_total"] == 1

    app = s.api.app("/web")
    assert app["version"] == version and app["instances"] == 3 and app["tasksRunning"] == 3
    after = {t["id"]: t for t in s.api.tasks("/web")}
    assert set(after) == set(before)
    for tid, t in after.items():
        assert (t["host"], t["slaveId"], t["version"], t["stagedAt"]) == \
               (before[tid]["host"], before[tid]["slaveId"], before[tid]["version"], before[tid]["stagedAt"])
    # nothing relaunched: fresh offers of every agent are declined, no launch
    offers = fake_master.send_offers([make_offer(f"agent{i}", f"host{i}", cpus=8, mem=1e6) for i in (1, 2, 3)])
    for offer in offers:
        fake_master.wait_decline(offer_id=offer.id.value)
    assert len(fake_master.launches) == n_launches
    assert not [t for t in killed_since(fake_master, 0) if of_app(t, "/web")]


@pytest.mark.parametrize("state", ["TASK_UNREACHABLE", "TASK_UNKNOWN"])
def test_unreachable_or_unknown_instance_is_replaced_and_killed_if_back(make_scheduler, fake_master, sim, state):
    """Marathon's default unreachableStrategy: an instance whose agent is partitioned (or that
    the master does not know) is given up at once and replaced, not counted forever; if it
    reports in again it is a stray and killed."""
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 1), status=201)
    old = s.wait_tasks("/web", 1)[0]["id"]
    n_launches, n_calls = len(fake_master.launches), len(fake_master.calls)
    fake_master.send_update(old, state, uuid=False, source="SOURCE_MASTER", reason="REASON_AGENT_REMOVED"
                            if state == "TASK_UNREACHABLE" else "REASON_RECONCILIATION")
    s.wait_event("instance_expunged_event", {"taskId": old, "taskStatus": state})
    new = fake_master.wait_launch(1, after=n_launches, timeout=15)[0].task_id
    assert new != old
    assert [t["id"] for t in s.wait_tasks("/web", 1)] == [new]
    if state == "TASK_UNREACHABLE":
        fake_master.wait_call("KILL", lambda c: c.kill.task_id.value == old, after=n_calls)
    # the partition heals and the old task reports in: not ours anymore
    n_calls = len(fake_master.calls)
    fake_master.send_update(old, "TASK_RUNNING", healthy=True)
    fake_master.wait_call("KILL", lambda c: c.kill.task_id.value == old, after=n_calls)
    assert [t["id"] for t in s.api.tasks("/web")] == [new]


def test_unreachable_instance_waits_for_the_expunge_delay(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start(["--unreachable-expunge-after=2secs"])
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 1), status=201)
    old = s.wait_tasks("/web", 1)[0]["id"]
    n_launches = len(fake_master.launches)
    fake_master.send_update(old, "TASK_UNREACHABLE", uuid=False, source="SOURCE_MASTER")
    # back within the delay: kept, nothing replaced
    fake_master.wait_ack(fake_master.send_update(old, "TASK_RUNNING", healthy=True).uuid)
    assert len(fake_master.launches) == n_launches
    assert s.api.tasks("/web")[0]["id"] == old
    # unreachable past the delay: replaced
    n_events = len(fake_master.events)
    fake_master.send_update(old, "TASK_UNREACHABLE", uuid=False, source="SOURCE_MASTER")
    again = fake_master.wait_update_sent(old, "TASK_UNREACHABLE", after=n_events).time
    launch = fake_master.wait_launch(1, after=n_launches, timeout=10)[0]
    assert launch.time - again >= 1.9, f"replaced {launch.time - again:.2f}s after going unreachable"
    assert [t["id"] for t in s.wait_tasks("/web", 1)] == [launch.task_id]


def test_health_and_registration_changes_are_events(make_scheduler, fake_master, sim):
    add_agents(fake_master, 1)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 1), status=201)
    tid = s.wait_tasks("/web", 1)[0]["id"]
    fake_master.send_update(tid, "TASK_RUNNING", data={"healthy": True, "registered": True,
                                                       "registration": "registered"})
    t0 = s.wait_event("instance_health_changed_event", {"instanceId": tid, "appId": "/web", "healthy": True})
    fake_master.send_update(tid, "TASK_RUNNING", data={"healthy": False, "registered": False,
                                                       "registration": "failed"})
    s.wait_event("instance_health_changed_event", {"instanceId": tid, "healthy": False}, after=t0)
    s.wait_event("pacer_registration_event", {"taskId": tid, "registration": "failed",
                                              "previous": "registered"}, after=t0)


def test_v1_stream_is_the_event_stream_in_msgpack(make_scheduler, fake_master, sim, timeline):
    """GET /v1/stream carries the same events as /v2/events, each one msgpack map with its id;
    filters work the same; a late subscriber replays from the ring with ?last_event_id= or the
    Last-Event-ID header."""
    add_agents(fake_master, 1)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    packed = MsgpackStream(s.api.port, timeline).start()
    only_posts = MsgpackStream(s.api.port, timeline, query="?event_type=api_post_event", source="filtered").start()
    try:
        s.api.ok("POST", "/v2/apps", app_spec("/web", 1), status=201)
        s.wait_tasks("/web", 1)
        last_sse = s.wait_event("deployment_success")
        s.wait_until(lambda: any(e.get("eventType") == "deployment_success" for e in packed.events),
                     "the deployment's end on /v1/stream")
        sse = [(int(i), t, p) for i, t, p in s.events.events]
        by_id = {e["id"]: e for e in packed.events}
        assert by_id and min(by_id) <= next(i for i, t, _ in sse if t == "api_post_event")
        for ev_id, ev_type, payload in sse:
            if ev_id < min(by_id):
                continue  # published before /v1/stream was subscribed
            assert by_id.get(ev_id) == dict(payload, id=ev_id), (ev_type, by_id.get(ev_id), payload)
        assert [e["id"] for e in packed.events] == sorted(by_id), "in order, each once"
        assert isinstance(packed.events[0]["timestamp"], str)
        assert {e["eventType"] for e in only_posts.events} == {"api_post_event"}
        assert len(only_posts.events) == 1 and only_posts.events[0]["appId"] == "/web"

        # a late subscriber: the whole ring, replayed. Event 1 (subscribe_event) was published before
        # anyone was on /v1/stream, so it is packed on demand from its stored SSE text
        packed.close()
        only_posts.close()
        assert min(by_id) > 1
        last = max(i for i, _, _ in sse)
        replay = MsgpackStream(s.api.port, timeline, query="?last_event_id=0", source="replay").start()
        header = MsgpackStream(s.api.port, timeline, headers={"Last-Event-ID": str(min(by_id))},
                               source="hdr").start()
        for r, since in ((replay, 0), (header, min(by_id))):
            s.wait_until(lambda r=r: any(e["id"] == last for e in r.events), "the replay")
            got = {e["id"]: e for e in r.events}
            assert [e["id"] for e in r.events][:last - since] == list(range(since + 1, last + 1))
            for i, _, p in sse:
                if i > since:
                    assert got[i] == dict(p, id=i)
        first = replay.events[0]
        assert first["id"] == 1 and first["eventType"] == "subscribe_event" and first["frameworkId"]
        assert isinstance(first["timestamp"], str)
        replay.close()
        header.close()
        assert last_sse is not None
    finally:
        packed.close()
        only_posts.close()


def test_launch_shape_and_the_apps_own_executor(make_scheduler, fake_master, sim):
    """Each instance is a TaskInfo with its own ExecutorInfo running pacer-executor (the app's
    `executor` path when it names one), small executor resources, the command after `--`,
    the app's environment, labels and kill policy."""
    add_agents(fake_master, 1)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 1, cmd="echo hi", env={"A": "1"}, labels={"team": "x"},
                                          taskKillGracePeriodSeconds=7), status=201)
    s.api.ok("POST", "/v2/apps", app_spec("/own", 1, executor="/opt/pacer/pacer-executor-next"), status=201)
    launches = {launch.task.task_id.value.split(".")[0]: launch.task for launch in fake_master.wait_launch(2)}
    web, own = launches["web"], launches["own"]
    assert web.executor.type == web.executor.CUSTOM and not web.HasField("command")
    assert web.executor.executor_id.value == "pacer." + web.task_id.value
    cmd = web.executor.command
    assert list(cmd.arguments)[-3:] == ["/bin/sh", "-c", "echo hi"] and "--" in cmd.arguments
    assert {r.name for r in web.executor.resources} >= {"cpus", "mem"}
    assert {v.name: v.value for v in cmd.environment.variables}["A"] == "1"
    assert {lb.key: lb.value for lb in web.labels.labels}["team"] == "x"
    assert web.kill_policy.grace_period.nanoseconds == 7 * 10**9
    assert own.executor.command.value == "/opt/pacer/pacer-executor-next"
    assert own.executor.command.arguments[0] == "/opt/pacer/pacer-executor-next"
    assert not own.executor.command.uris


def test_deployments_and_launches_wait_for_reconciliation_after_a_restart(make_scheduler, fake_master, sim):
    """After a restart nothing is placed or killed on stored state the master has not
    confirmed: a scale waits until reconciliation answered, then goes on."""
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    s.api.ok("POST", "/v2/apps", app_spec("/web", 2), status=201)
    before = {t["id"] for t in s.wait_tasks("/web", 2)}
    s.kill()
    fake_master.hold_reconciliation()
    n_launches, n_calls = len(fake_master.launches), len(fake_master.calls)
    s.start()
    fake_master.wait_call("RECONCILE", lambda c: len(c.reconcile.tasks) == 2, after=n_calls)
    r = s.api.put("/v2/apps/web", app_spec("/web", 3))
    assert r.status == 200, r
    dep = r.json["deploymentId"]
    n_declines = len(fake_master.calls_of("DECLINE"))
    s.wait_until(lambda: len(fake_master.calls_of("DECLINE")) >= n_declines + 3, "three offer rounds declined")
    assert len(fake_master.launches) == n_launches, "launched before the master confirmed what runs"
    assert {a["appId"]: a for a in s.api.deployment(dep)["apps"]}["/web"]["state"] == "waiting"
    fake_master.hold_reconciliation(False)
    fake_master.wait_launch(1, after=n_launches, timeout=10)
    assert s.wait_deployment_done(dep) == "deployment_success"
    assert before < {t["id"] for t in s.wait_tasks("/web", 3)}


def test_periodic_implicit_reconciliation(make_scheduler, fake_master):
    s = make_scheduler().start(["--reconcile-interval=1secs"])
    sub = fake_master.wait_subscribed(1)
    n = len(fake_master.calls)
    first = fake_master.wait_call("RECONCILE", lambda c: not c.reconcile.tasks, after=n, timeout=5)
    after_first = next(k for k, c in enumerate(fake_master.calls) if c is first) + 1
    nxt = fake_master.wait_call("RECONCILE", lambda c: not c.reconcile.tasks, after=after_first, timeout=5)
    assert 0.8 <= nxt.time - first.time <= 3, "every --reconcile-interval"
    assert sub is not None and s.metrics()["pacer_stray_tasks_killed_total"] == 0


def test_pacerctl_against_the_real_scheduler(make_scheduler, fake_master, sim, tmp_path):
    """pacerctl's commands on pacer-scheduler itself (its own tests use an API double): deploy,
    scale, restart, a held deployment rolled back per app and whole, delete; exit codes say how
    each deployment ended."""
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACER_")}
    env.update(PACER_URL=f"http://127.0.0.1:{s.api.port}", NO_COLOR="1")

    def ctl(*args, ok=True):
        p = subprocess.run([str(find_binary("pacerctl")), *args], env=env, capture_output=True, text=True,
                           timeout=60)
        assert (p.returncode == 0) == ok, (args, p.returncode, p.stdout, p.stderr)
        return p

    spec = tmp_path / "web.json"
    spec.write_text(json.dumps(app_spec("/web", 2)))
    ctl("deploy", str(spec))
    assert len(s.wait_tasks("/web", 2)) == 2
    ctl("scale", "/web", "3")
    first = {t["id"] for t in s.wait_tasks("/web", 3)}
    ctl("restart", "/web")
    assert not first & {t["id"] for t in s.wait_tasks("/web", 3)}, "restart replaced every instance"
    assert "/web" in ctl("apps").stdout and len(json.loads(ctl("tasks", "/web", "--json").stdout)["tasks"]) == 3

    # a held update: rolled back for that app, then the whole deployment of another one
    spec.write_text(json.dumps(app_spec("/web", 3, cmd="sleep 2000", labels={SIM_LABEL: "unready"})))
    dep = json.loads(ctl("deploy", str(spec), "--no-wait", "--json").stdout)["deploymentId"]
    assert dep in ctl("deployments").stdout
    ctl("deployment", "rollback", dep, "/web")
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.api.app("/web")["cmd"] == "sleep 1000"
    spec.write_text(json.dumps(app_spec("/web", 3, cmd="sleep 3000", labels={SIM_LABEL: "unready"})))
    dep = json.loads(ctl("deploy", str(spec), "--no-wait", "--json").stdout)["deploymentId"]
    assert "in place" in ctl("deployment", "rollback", dep).stdout
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.api.app("/web")["cmd"] == "sleep 1000"

    ctl("delete", "/web")
    assert s.api.get("/v2/apps/web").status == 404
    assert ctl("scale", "/web", "1", ok=False).returncode == 1


ADMIN_TOKEN = "admin-0123456789abcdef0123"
VIEWER_TOKEN = "viewer-0123456789abcdef012"


def test_rest_api_authentication(make_scheduler, fake_master, sim, workdir):
    """With --http-token-file and --http-credentials every route but /ping asks for them, before the
    body is read: nothing is created without them; read-only tokens read and may not write; a 401
    carries the challenge; pacerctl's --token works against the scheduler."""
    tokens = workdir / "tokens"
    tokens.write_text(f"# operators\n{ADMIN_TOKEN}\n{VIEWER_TOKEN} read\n")
    add_agents(fake_master, 1)
    s = make_scheduler(f"--http-token-file={tokens}", "--http-credentials=ops:s3cret-pass",
                       auth_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).start()
    fake_master.auto_offer(0.1)
    anonymous = Api(s.api.port)
    viewer = Api(s.api.port, {"Authorization": f"Bearer {VIEWER_TOKEN}"})
    basic = Api(s.api.port, {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret-pass").decode()})
    wrong = Api(s.api.port, {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()})

    assert anonymous.get("/ping").status == 200, "/ping stays open for load balancers"
    for path in ("/v2/apps", "/v2/info", "/metrics", "/v2/events", "/v1/stream"):
        r = anonymous.get(path)
        assert r.status == 401, (path, r)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="pacer"'
        assert "authentication required" in r.json["message"]
    r = anonymous.post("/v2/apps", app_spec("/web", 1))
    assert r.status == 401
    assert wrong.post("/v2/apps", app_spec("/web", 1)).status == 401
    r = viewer.post("/v2/apps", app_spec("/web", 1))
    assert r.status == 403
    assert r.json["message"] == "token at line 3 may only read: POST /v2/apps changes state"
    assert s.api.get("/v2/apps/web").status == 404, "refused requests changed nothing"

    assert basic.post("/v2/apps", app_spec("/web", 1)).status == 201
    s.wait_tasks("/web", 1)
    assert [a["id"] for a in viewer.get("/v2/apps").json["apps"]] == ["/web"]
    assert viewer.delete("/v2/apps/web").status == 403

    env = {k: v for k, v in os.environ.items() if not k.startswith("PACER_")}
    env.update(PACER_URL=f"http://127.0.0.1:{s.api.port}", NO_COLOR="1")

    def ctl(*args, token=None):
        return subprocess.run([str(find_binary("pacerctl")), *args], capture_output=True, text=True, timeout=60,
                              env=dict(env, PACER_TOKEN=token) if token else env)

    p = ctl("apps")
    assert p.returncode == 1 and "wants a token (401" in p.stderr and "--token" in p.stderr, p.stderr
    assert ctl("apps", token=VIEWER_TOKEN).returncode == 0
    p = ctl("scale", "/web", "2", token=VIEWER_TOKEN)
    assert p.returncode == 1 and "not allowed to PATCH /v2/apps/web (403" in p.stderr, p.stderr
    assert ctl("scale", "/web", "2", token=ADMIN_TOKEN).returncode == 0
    assert len(s.wait_tasks("/web", 2)) == 2


def test_failed_task_relaunched_after_backoff(make_scheduler, fake_master, sim):
    add_agents(fake_master, 1)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    spec = app_spec("/flaky", 1, backoffSeconds=1, backoffFactor=2, maxLaunchDelaySeconds=60)
    s.api.ok("POST", "/v2/apps", spec, status=201)
    task = s.wait_tasks("/flaky", 1)[0]
    for backoff in (1.0, 2.0):
        n = len(fake_master.launches)
        st = fake_master.send_update(task["id"], "TASK_FAILED", message=CRASH_MESSAGE)
        failed_at = fake_master.wait_update_sent(task["id"], "TASK_FAILED").time
        fake_master.wait_ack(st.uuid)
        entry = queue_entry(s.api, "/flaky")
        assert entry and entry["count"] == 1 and 0 < entry["delay"]["timeLeftSeconds"] <= backoff, entry
        relaunch = fake_master.wait_launch(1, after=n, timeout=backoff + 5)[0]
        gap = relaunch.time - failed_at
        assert backoff - 0.05 <= gap < backoff + 3, f"relaunched {gap:.3f}s after the failure"
        task = s.wait_tasks("/flaky", 1)[0]
        assert task["id"] == relaunch.task_id
    app = s.api.app("/flaky")
    assert CRASH_MESSAGE in app["pacer"]["lastFailure"] and "TASK_FAILED" in app["pacer"]["lastFailure"]
    assert app["pacer"]["crashLoop"] is False


def test_backoff_starts_over_after_a_quiet_spell(make_scheduler, fake_master, sim):
    """Failures are consecutive only when close together: once the last delay is
    maxLaunchDelaySeconds overdue, the next failure waits backoffSeconds again (Marathon forgets
    such delays), not the grown delay."""
    add_agents(fake_master, 1)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    spec = app_spec("/flaky", 1, backoffSeconds=0.5, backoffFactor=4, maxLaunchDelaySeconds=1.5)
    s.api.ok("POST", "/v2/apps", spec, status=201)
    task = s.wait_tasks("/flaky", 1)[0]

    def fail(task):
        """The delay the failure set lies in [left, left + slack]: the queue shows the time left when it
        is read, the scheduler handled the failure between its sending and that read."""
        n, events = len(fake_master.launches), len(fake_master.events)
        st = fake_master.send_update(task["id"], "TASK_FAILED", message=CRASH_MESSAGE)
        sent = fake_master.wait_update_sent(task["id"], "TASK_FAILED", after=events).time
        fake_master.wait_ack(st.uuid)
        left = queue_entry(s.api, "/flaky")["delay"]["timeLeftSeconds"]
        slack = time.monotonic() - sent
        relaunch = fake_master.wait_launch(1, after=n, timeout=10)[0]
        return left, slack, relaunch, next(t for t in s.wait_tasks("/flaky", 1) if t["id"] == relaunch.task_id)

    left, _, _, task = fail(task)
    assert left <= 0.5
    left, slack, relaunch, task = fail(task)
    assert left <= 1.5 and left + slack >= 1.45, \
        f"the second failure in a row waits the grown delay (0.5 x 4, capped at 1.5): {left} + {slack}"
    # quiet: the last delay ran out at the relaunch; 1.5 s (maxLaunchDelaySeconds) more and it is forgotten
    time.sleep(max(0.0, relaunch.time + 1.5 + 0.3 - time.monotonic()))  # the quiet spell is the test
    left, _, _, task = fail(task)
    assert left <= 0.5, f"a failure after a quiet spell waits backoffSeconds again, not {left}"


# --------------------------------------------------------------------------
# REST


def test_rest_apps_shapes_and_codes(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    api = s.api
    assert api.ok("GET", "/v2/apps") == {"apps": []}

    r = api.post("/v2/apps", app_spec("/prod/web", 2, env={"MODE": "test"}, labels={"team": "core"}))
    assert r.status == 201, r
    assert r.headers["Location"] == "/v2/apps/prod/web"
    dep = r.headers["Marathon-Deployment-Id"]
    created = r.json
    assert created["id"] == "/prod/web" and created["instances"] == 2 and created["env"] == {"MODE": "test"}
    assert created["upgradeStrategy"] == {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}
    assert created["killSelection"] == "YOUNGEST_FIRST" and created["backoffFactor"] == 1.15
    assert created["deployments"] == [{"id": dep}]
    dup = api.post("/v2/apps", app_spec("/prod/web", 1))
    assert dup.status == 409 and "already exists" in dup.json["message"]
    assert s.wait_deployment_done(dep) == "deployment_success"

    tasks = s.wait_tasks("/prod/web", 2)
    for t in tasks:
        assert t["id"].startswith("prod_web.") and t["appId"] == "/prod/web"
        assert t["host"] in ("host1", "host2", "host3") and t["slaveId"].startswith("agent")
        assert t["state"] == "TASK_RUNNING" and t["version"] == created["version"]
        assert t["stagedAt"].endswith("Z") and t["startedAt"].endswith("Z")
        assert t["ports"] == [] and t["healthCheckResults"] == []
        assert t["registration"]["state"] == "registered"
    got = api.app("/prod/web")
    assert (got["tasksRunning"], got["tasksStaged"], got["tasksRegistered"]) == (2, 0, 2)
    assert got["deployments"] == [] and got["pacer"]["crashLoop"] is False
    assert [a["id"] for a in api.ok("GET", "/v2/apps?id=/prod")["apps"]] == ["/prod/web"]
    assert api.ok("GET", "/v2/apps?id=/other")["apps"] == []
    assert len(api.ok("GET", "/v2/apps?label=team==core")["apps"]) == 1
    assert api.ok("GET", "/v2/apps?label=team!=core")["apps"] == []
    missing = api.get("/v2/apps/nope")
    assert missing.status == 404 and missing.json["message"] == "App '/nope' does not exist"

    # PUT: partial update by default, a new version rolled out
    r = api.put("/v2/apps/prod/web", {"cmd": "sleep 2000"})
    assert r.status == 200 and set(r.json) == {"version", "deploymentId"}, r
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    v2 = api.app("/prod/web")
    assert v2["cmd"] == "sleep 2000" and v2["env"] == {"MODE": "test"} and v2["version"] == r.json["version"]
    v2_tasks = {t["id"] for t in s.wait_tasks("/prod/web", 2, version=v2["version"])}
    assert not v2_tasks & {t["id"] for t in tasks}

    # PATCH instances: a scale, the running instances stay
    r = api.patch("/v2/apps/prod/web", {"instances": 3})
    assert r.status == 200, r
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    scaled = {t["id"] for t in s.wait_tasks("/prod/web", 3)}
    assert v2_tasks <= scaled, "scaling up replaced running instances"
    assert api.patch("/v2/apps/nope", {"instances": 1}).status == 404

    # PUT of an unknown app creates it
    r = api.put("/v2/apps/prod/api", app_spec("/prod/api", 1))
    assert r.status == 201 and r.json["deploymentId"], r
    s.wait_tasks("/prod/api", 1)

    # restart: every instance replaced
    r = api.post("/v2/apps/prod/web/restart")
    assert r.status == 200, r
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    restarted = {t["id"] for t in s.wait_tasks("/prod/web", 3)}
    assert not restarted & scaled

    # /v2/tasks
    all_tasks = api.ok("GET", "/v2/tasks")["tasks"]
    assert {t["id"] for t in all_tasks} == restarted | {t["id"] for t in api.tasks("/prod/api")}
    assert len(api.ok("GET", "/v2/tasks?status=running")["tasks"]) == 4
    assert api.ok("GET", "/v2/tasks?status=staging")["tasks"] == []

    # DELETE
    r = api.delete("/v2/apps/prod/api")
    assert r.status == 200 and r.json["deploymentId"], r
    s.wait_event("app_terminated_event", {"appId": "/prod/api"})
    assert api.get("/v2/apps/prod/api").status == 404
    assert api.delete("/v2/apps/prod/api").status == 404
    assert [a["id"] for a in api.ok("GET", "/v2/apps")["apps"]] == ["/prod/web"]


def test_rest_tasks_delete_with_and_without_scale(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    api = s.api
    api.ok("POST", "/v2/apps", app_spec("/web", 3), status=201)
    first = {t["id"] for t in s.wait_tasks("/web", 3)}

    victim = sorted(first)[0]
    n_calls = len(fake_master.calls)
    r = api.post("/v2/tasks/delete", {"ids": [victim]})
    assert r.status == 200 and [t["id"] for t in r.json["tasks"]] == [victim], r
    fake_master.wait_call("KILL", lambda c: c.kill.task_id.value == victim, after=n_calls)

    def replaced_set():
        ts = s.api.tasks("/web")
        ids = {t["id"] for t in ts}
        return len(ts) == 3 and victim not in ids and all(task_ready(t) for t in ts) and ids

    replaced = s.wait_until(replaced_set, "the killed task to be replaced")
    app = api.app("/web")
    assert first - {victim} <= replaced and app["instances"] == 3
    assert "lastFailure" not in app["pacer"], "a task killed on request is no failure"
    assert queue_entry(api, "/web") is None

    victim = sorted(first - {victim})[0]
    n_calls = len(fake_master.calls)
    r = api.post("/v2/tasks/delete?scale=true", {"ids": [victim]})
    assert r.status == 200 and r.json["deploymentId"], r
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    left = {t["id"] for t in s.wait_tasks("/web", 2)}
    assert left == replaced - {victim}, "scale=true kills that task only and replaces none"
    assert api.app("/web")["instances"] == 2
    assert victim in killed_since(fake_master, n_calls)

    # tasks of two apps in one request: both apps lowered, in one deployment
    api.ok("POST", "/v2/apps", app_spec("/api", 2), status=201)
    apis = {t["id"] for t in s.wait_tasks("/api", 2)}
    victims = [sorted(left)[0], sorted(apis)[0]]
    n_calls = len(fake_master.calls)
    r = api.post("/v2/tasks/delete?scale=true", {"ids": victims + victims[:1]})  # one named twice
    assert r.status == 200 and r.json["deploymentId"], r
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    assert (api.app("/web")["instances"], api.app("/api")["instances"]) == (1, 1)
    assert {t["id"] for t in s.wait_tasks("/web", 1)} == left - {victims[0]}
    assert {t["id"] for t in s.wait_tasks("/api", 1)} == apis - {victims[1]}
    assert set(victims) <= set(killed_since(fake_master, n_calls))

    # an app locked by a deployment: 409 and nothing killed, unless force
    held = app_spec("/held", 2, labels={SIM_LABEL: "unready"})
    api.ok("POST", "/v2/apps", held, status=201)
    s.wait_until(lambda: len(sim.held_of("/held")) == 2, "the held app's instances to run, not ready")
    target = sorted(sim.held_of("/held"))[0]
    n_calls = len(fake_master.calls)
    r = api.post("/v2/tasks/delete?scale=true", {"ids": [target]})
    assert r.status == 409 and r.json["deployments"], r
    assert api.app("/held")["instances"] == 2 and target not in killed_since(fake_master, n_calls)
    r = api.post("/v2/tasks/delete?scale=true&force=true", {"ids": [target]})
    assert r.status == 200 and api.app("/held")["instances"] == 1
    fake_master.wait_call("KILL", lambda c: c.kill.task_id.value == target, after=n_calls)

    assert api.post("/v2/tasks/delete", {"ids": ["web.nope"]}).status == 404
    assert api.post("/v2/tasks/delete", {"ids": []}).status == 422
    assert api.post("/v2/tasks/delete", raw=b"{nope").status == 400


def test_queue_info_leader_ping_metrics(make_scheduler, fake_master, sim, workdir):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    api = s.api
    info = api.ok("GET", "/v2/info")
    assert info["name"] == "pacer" and info["version"]
    assert info["frameworkId"] == fake_master.framework_id
    assert info["leader"] == fake_master.endpoint
    mc = info["marathon_config"]
    assert mc["master"] == fake_master.endpoint and mc["mesos_role"] == "*"
    assert mc["failover_timeout"] == DEFAULT_FAILOVER_TIMEOUT
    assert info["pacer"]["mode"] == "mesos" and str(workdir / "data") in info["pacer"]["store"]
    assert "DISABLED" in info["pacer"]["consul"]
    assert api.ok("GET", "/v2/leader") == {"leader": fake_master.endpoint}
    ping = api.get("/ping")
    assert ping.status == 200 and ping.headers["Content-Type"].startswith("text/plain") and ping.text == "pong\n"

    api.ok("POST", "/v2/apps", app_spec("/web", 2), status=201)
    s.wait_tasks("/web", 2)
    assert api.ok("GET", "/v2/queue") == {"queue": []}
    r = api.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # the gauges follow the state once a second (a timer, no event to wait on)
    m = wait_for(lambda: (m := s.metrics())["pacer_instances"] == 2 and m, 3.0, "pacer_instances to be 2")
    assert m["pacer_apps"] == 1
    assert m["pacer_tasks_launched_total"] == 2
    assert m["pacer_acknowledgements_total"] >= 2 and m["pacer_status_updates_total"] >= 2
    assert m["pacer_offers_total"] >= 1
    assert m['pacer_store_commit_seconds_bucket{le="+Inf"}'] == m["pacer_store_commit_seconds_count"] > 0
    # glibc's malloc accounting; an ASan build has its own allocator, which glibc sees nothing of
    assert m["pacer_heap_free_bytes"] >= 0 and (m["pacer_heap_used_bytes"] > 1e6 or asan_build(s.binary))


def test_locked_app_conflicts_unless_forced(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    api = s.api
    api.ok("POST", "/v2/apps", app_spec("/web", 2), status=201)
    s.wait_tasks("/web", 2)
    r = api.put("/v2/apps/web", {"cmd": "sleep 2001", "labels": {SIM_LABEL: "unready"}})
    assert r.status == 200, r
    held = r.json
    s.wait_until(lambda: len(sim.held_of("/web")) == 2, "the new instances to run (not ready)")

    for method, path, body in (("PUT", "/v2/apps/web", {"cmd": "sleep 2002"}),
                               ("PATCH", "/v2/apps/web", {"instances": 3}),
                               ("DELETE", "/v2/apps/web", None),
                               ("POST", "/v2/apps/web/restart", None),
                               ("PUT", "/v2/apps", [app_spec("/web", 2)])):
        c = api.request(method, path, body)
        assert c.status == 409, (method, path, c)
        assert "locked" in c.json["message"] and "force=true" in c.json["message"]
        assert c.json["deployments"] == [{"id": held["deploymentId"]}]
    assert api.app("/web")["version"] == held["version"], "a refused change changes nothing"

    r = api.put("/v2/apps/web?force=true", {"cmd": "sleep 2003", "labels": {}})
    assert r.status == 200 and r.json["deploymentId"] != held["deploymentId"], r
    stopped = s.wait_event("deployment_step_failure", {"deploymentId": held["deploymentId"], "appId": "/web"})
    assert stopped.detail["state"] == "stopped" and "forced" in stopped.detail["reason"]
    assert s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success"
    s.wait_tasks("/web", 2, version=r.json["version"])
    assert api.app("/web")["cmd"] == "sleep 2003"


# --------------------------------------------------------------------------
# Bad input


def test_malformed_json_is_400_with_a_message(make_scheduler, fake_master):
    s = make_scheduler().start()
    for body in (b'{"id": "/web", "cmd": ', b'{"id": "/web"} trailing', b'\xff\xfe', b''):
        r = s.api.post("/v2/apps", raw=body)
        assert r.status == 400, (body, r)
        assert r.json["message"]
    r = s.api.post("/v2/apps", raw=b'{"id": "/web", "cmd": "x", "cmd": "y"}')
    assert r.status == 400 and "cmd" in r.text
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}


def test_oversized_body_refused_before_it_is_read(make_scheduler, fake_master):
    s = make_scheduler().start()
    with socket.create_connection(("127.0.0.1", s.api.port), timeout=5) as sock:
        t0 = time.monotonic()
        sock.sendall(f"POST /v2/apps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {TEN_MIB}\r\n\r\n".encode() + b"[" * 65536)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {answer!r}"
            answer += chunk
        elapsed = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert elapsed < 2.0, f"answered after {elapsed:.2f}s"
        # the rest of the 10 MiB is never read: the server closes the connection
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
    assert b"over the limit" in answer
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}
    assert s.api.get("/ping").status == 200


@pytest.mark.parametrize("app_id, error", [
    ("/../x", "above the root"),
    ("/my app", "space"),
    ("/Web", "upper-case"),
    ("/a//b", "empty path segment"),
])
def test_bad_ids_are_422_at_path_id(make_scheduler, fake_master, app_id, error):
    s = make_scheduler().start()
    r = s.api.post("/v2/apps", app_spec(app_id))
    assert r.status == 422, r
    errors = detail_errors(r)
    assert list(errors) == ["/id"] and error in " ".join(errors["/id"]), errors
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}


def test_bad_resources_and_constraints_are_422_with_every_path(make_scheduler, fake_master):
    s = make_scheduler().start()
    spec = app_spec("/web", 1, cpus=-1, mem=-5, constraints=[["hostname", "SOMETIMES"], ["rack", "LIKE", "r(1"],
                                                            ["rack", "LIKE", "\\d+"]])
    r = s.api.post("/v2/apps", spec)
    assert r.status == 422, r
    assert r.json["message"] == "Object is not valid"
    errors = detail_errors(r)
    assert set(errors) == {"/cpus", "/mem", "/constraints(0)", "/constraints(1)", "/constraints(2)"}, errors
    assert "unknown operator \"SOMETIMES\"" in errors["/constraints(0)"][0]
    assert errors["/constraints(1)"] and errors["/constraints(2)"]
    unknown = s.api.post("/v2/apps", dict(app_spec("/web"), instance=3))
    assert unknown.status == 422 and "unknown field" in " ".join(detail_errors(unknown)["/instance"])
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}


def test_constraint_on_missing_attribute_waits_in_queue(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2, attributes=lambda i: {"rack": f"r{i}"})
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    r = s.api.post("/v2/apps", app_spec("/gpu", 1, constraints=[["gpu_type", "IS", "a100"]]))
    assert r.status == 201, r
    created = time.monotonic()
    entry = s.wait_until(lambda: (e := queue_entry(s.api, "/gpu")) and e["lastUnusedOfferReasons"] and e,
                         "the queue to explain why /gpu waits")
    assert entry["count"] == 1
    assert any("no attribute gpu_type" in why for why in entry["lastUnusedOfferReasons"]), entry
    decline = decline_of_offers_after(fake_master, created)
    assert decline.call.decline.filters.refuse_seconds == BUSY_REFUSE_SECONDS
    assert not fake_master.launches
    assert s.api.app("/gpu")["deployments"], "its deployment waits"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_store_refused_at_start(make_scheduler, fake_master, workdir, damage):
    s = make_scheduler()
    s.start()
    s.api.ok("POST", "/v2/apps", app_spec("/web", 0), status=201)
    assert s.kill(signal.SIGTERM) == 0
    db = workdir / "data" / "pacer.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database, just junk\n" * 200)
    else:
        data = db.read_bytes()
        db.write_bytes(data[:4096 + 100])
    rc, err = s.run_to_exit()
    assert rc != 0
    assert "cannot open the state" in err and str(db) in err
    assert "corrupt" in err or "not a" in err or "damaged" in err, err


def test_store_of_another_framework_refused(make_scheduler, fake_master, workdir):
    s = make_scheduler().start()
    assert s.kill(signal.SIGTERM) == 0
    rc, err = s.run_to_exit(["--framework-name=other"])
    assert rc != 0
    assert "belongs to framework 'pacer', not 'other'" in err, err


def test_batch_with_one_invalid_app_changes_nothing(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    api = s.api
    api.ok("POST", "/v2/apps", app_spec("/keep", 1), status=201)
    s.wait_tasks("/keep", 1)
    before = api.app("/keep")
    n_launches = len(fake_master.launches)
    r = api.put("/v2/apps", [app_spec("/keep", 2, cmd="sleep 3000"), app_spec("/new", 1),
                             app_spec("/broken", 1, mem=-1)])
    assert r.status == 422, r
    assert set(detail_errors(r)) == {"/(2)/mem"}, r.json
    after = api.app("/keep")
    assert (after["version"], after["cmd"], after["instances"]) == (before["version"], before["cmd"], 1)
    assert api.get("/v2/apps/new").status == 404
    assert api.ok("GET", "/v2/deployments") == []
    assert len(fake_master.launches) == n_launches
