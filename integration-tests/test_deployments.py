"""pacer-scheduler's deployments against the fake Mesos master (issue:
deployments — rolling upgrades, batches with per-app control, deadlines and
crash loops).

Readiness is what the simulated executors report (scheduler_support.AgentSim,
by the app label pacer.test.sim): "ready", "unready" (running, registration in
progress, until the test releases it) or "crash" (then TASK_FAILED). Rolling
upgrades are judged on the timeline of instances the fake master saw
(launches, updates written, KILL calls), over the whole upgrade.
"""

import time

from fakes.mesos_master import make_offer
from scheduler_support import (CRASH_MESSAGE, SIM_LABEL, add_agents, app_spec, instance_timeline,  # noqa: F401
                               killed_since, launches_of, make_scheduler, of_app, sim)

CHECK = {"protocol": "COMMAND", "command": {"value": "true"}, "gracePeriodSeconds": 0, "intervalSeconds": 2,
         "timeoutSeconds": 1}


def steps_of(deployment):
    return {a["appId"]: a for a in deployment["apps"]}


def ids(tasks):
    return {t["id"] for t in tasks}


def fresh_offers_declined(master, n=3):
    """Sends every agent's offer again (whatever the filters) and waits until
    the scheduler has declined them all."""
    offers = master.send_offers([make_offer(f"agent{i}", f"host{i}", cpus=8, mem=1e6, attributes={})
                                 for i in range(1, n + 1)])
    for offer in offers:
        master.wait_decline(offer_id=offer.id.value)


def deploy(s, apps):
    """PUT /v2/apps (a batch); returns (deployment id, version)."""
    r = s.api.put("/v2/apps", apps)
    assert r.status == 200 and r.json["deploymentId"], r
    return r.json["deploymentId"], r.json["version"]


def start_apps(s, apps):
    dep, version = deploy(s, apps)
    assert s.wait_deployment_done(dep) == "deployment_success"
    return {a["id"]: ids(s.wait_tasks(a["id"], a["instances"], version=version)) for a in apps}


def step_command(s, dep, app_id, action):
    return s.api.post(f"/v2/deployments/{dep}/apps{app_id}", {"action": action})


# --------------------------------------------------------------------------
# Rolling upgrades


def test_rolling_upgrade_never_below_minimum_health_capacity(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    apps = [
        app_spec("/web", 4, healthChecks=[CHECK],
                 upgradeStrategy={"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.25}),
        app_spec("/api", 3, healthChecks=[CHECK]),  # Marathon's default: (1, 1)
        app_spec("/strict", 1, upgradeStrategy={"minimumHealthCapacity": 1, "maximumOverCapacity": 0},
                 killSelection="OLDEST_FIRST"),
    ]
    before = start_apps(s, apps)
    # /strict's second instance comes later (a scale keeps the first): OLDEST_FIRST has a choice
    apps[2]["instances"] = 2
    r = s.api.patch("/v2/apps/strict", {"instances": 2})
    assert r.status == 200 and s.wait_deployment_done(r.json["deploymentId"]) == "deployment_success", r
    before["/strict"] = ids(s.wait_tasks("/strict", 2))
    sim.set_delay(0.15)  # new instances take a moment to report running and healthy

    upgraded = time.monotonic()
    dep, version = deploy(s, [dict(a, cmd="sleep 2000") for a in apps])
    assert s.wait_deployment_done(dep) == "deployment_success"

    # (app, instances, ceil(n × minimumHealthCapacity), n + floor(n × maximumOverCapacity)); (1, 0)
    # would deadlock, so Marathon (and Pacer) allow one instance over capacity then
    for app_id, n, min_ready, max_live in (("/web", 4, 2, 5), ("/api", 3, 3, 6), ("/strict", 2, 2, 3)):
        points = instance_timeline(fake_master, app_id, since=upgraded)
        shown = "\n".join(f"  {p.t - upgraded:7.3f}s ready={p.ready} live={p.live} {p.cause}" for p in points)
        assert points[0].ready == n, f"{app_id} was not fully ready before the upgrade:\n{shown}"
        assert min(p.ready for p in points) >= min_ready, f"{app_id} went below {min_ready} ready:\n{shown}"
        assert max(p.live for p in points) <= max_live, f"{app_id} went over {max_live} instances:\n{shown}"
        kills = [p for p in points if p.cause.startswith("kill")]
        launches = [p for p in points if p.cause.startswith("launch")]
        assert len(kills) == n and len(launches) == n, f"{app_id}: every instance replaced once:\n{shown}"
        assert {p.cause.split()[1] for p in kills} == before[app_id]
        assert points[-1].ready == n
        now = ids(s.wait_tasks(app_id, n, version=version))
        assert not now & before[app_id]
    # OLDEST_FIRST: /strict's older instance went first
    strict_kills = [c.call.kill.task_id.value for c in fake_master.calls_of("KILL") if of_app(
        c.call.kill.task_id.value, "/strict")]
    staged = {lr.task_id: lr.time for lr in launches_of(fake_master, "/strict")}
    assert strict_kills == sorted(before["/strict"], key=staged.get)


# --------------------------------------------------------------------------
# Batches: crash loops and per-app control


def test_batch_with_a_crash_looping_app_fails_that_app_only(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler("--crash-loop-failures=3", "--crash-loop-window=60s").start()
    fake_master.auto_offer(0.1)
    v1 = [app_spec(f"/{n}", 2) for n in ("a", "b", "c")]
    before = start_apps(s, v1)
    dep, version = deploy(s, [dict(v1[0], cmd="sleep 2000"),
                              dict(v1[1], cmd="sleep 2000", labels={SIM_LABEL: "unready"}),
                              dict(v1[2], cmd="exit 1", labels={SIM_LABEL: "crash"}, backoffSeconds=0)])

    s.wait_event("deployment_step_success", {"deploymentId": dep, "appId": "/a"})
    failed = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/c"})
    assert failed.detail["state"] == "failed"
    assert "crash loop: 3 failures" in failed.detail["reason"] and CRASH_MESSAGE in failed.detail["reason"]
    # the deployment goes on for /b (not ready yet) and shows why /c stopped
    d = s.api.deployment(dep)
    assert d is not None, "still running: /b is not ready"
    steps = steps_of(d)
    assert steps["/a"]["state"] == "succeeded"
    assert steps["/b"]["state"] == "running"
    assert steps["/c"]["state"] == "failed" and steps["/c"]["reason"] == failed.detail["reason"]
    assert set(d["affectedApps"]) == {"/a", "/b", "/c"}
    c = s.api.app("/c")
    assert c["pacer"]["crashLoop"] is True and CRASH_MESSAGE in c["pacer"]["lastFailure"]
    # its old instances were never taken down for the failing version; the new ones all ended
    s.wait_until(lambda: ids(s.api.tasks("/c")) == before["/c"], "/c's failed instances to be gone")
    assert all(t["state"] == "TASK_RUNNING" for t in s.api.tasks("/c"))

    sim.release("/b")
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.api.deployments() == []
    for app_id in ("/a", "/b"):
        s.wait_tasks(app_id, 2, version=version)
    # a crash-looping app is not relaunched forever
    n = len(launches_of(fake_master, "/c"))
    assert n >= 3
    fresh_offers_declined(fake_master)
    assert len(launches_of(fake_master, "/c")) == n


def test_stop_retry_and_rollback_of_one_app_in_a_batch(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    v1 = [app_spec(f"/{n}", 2, cmd=f"sleep 100{i}") for i, n in enumerate(("x", "y", "z"))]
    before = start_apps(s, v1)
    dep, version = deploy(s, [dict(a, cmd="sleep 2000", labels={SIM_LABEL: "unready"}) for a in v1])
    s.wait_until(lambda: all(len(sim.held_of(a)) == 2 for a in ("/x", "/y", "/z")),
                 "the new instances to run, not ready")
    x_tasks = ids(s.api.tasks("/x"))
    n_calls, n_launches = len(fake_master.calls), len(fake_master.launches)

    r = step_command(s, dep, "/y", "stop")
    assert r.status == 200 and r.json == {"deploymentId": dep, "appId": "/y", "state": "stopped"}, r
    steps = steps_of(s.api.deployment(dep))
    assert (steps["/x"]["state"], steps["/y"]["state"], steps["/z"]["state"]) == ("running", "stopped", "running")
    assert steps["/y"]["reason"] == "stopped by an operator"
    y_tasks = ids(s.api.tasks("/y"))
    assert len(y_tasks) == 4, "a stopped step leaves the instances as they are"
    assert step_command(s, dep, "/y", "stop").status == 409, "already stopped"

    r = step_command(s, dep, "/y", "retry")
    assert r.status == 200 and r.json["state"] in ("waiting", "running"), r
    assert steps_of(s.api.deployment(dep))["/y"]["state"] == "running"
    assert step_command(s, dep, "/y", "retry").status == 409, "a running step cannot be retried"

    r = step_command(s, dep, "/z", "rollback")
    assert r.status == 200, r
    z = s.api.app("/z")
    assert z["cmd"] == v1[2]["cmd"] and z["labels"] == {} and z["version"] != version
    step = steps_of(s.api.deployment(dep))["/z"]
    assert step["rollback"] is True and step["toVersion"] == z["version"]
    s.wait_event("deployment_step_success", {"deploymentId": dep, "appId": "/z"})
    restored = s.wait_tasks("/z", 2, version=z["version"])
    assert not ids(restored) & before["/z"]

    # none of it touched /x, and /y only as far as it was stopped and resumed
    assert not killed_since(fake_master, n_calls) & (x_tasks | y_tasks)
    assert not launches_of(fake_master, "/x", n_launches) and not launches_of(fake_master, "/y", n_launches)
    assert ids(s.api.tasks("/x")) == x_tasks

    sim.release("/x")
    sim.release("/y")
    # /z did not get what the deployment asked for: the deployment says so
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.timeline.last("sse", "deployment_failed").detail["reason"] == "/z: rolled back"
    for app_id, seen in (("/x", x_tasks), ("/y", y_tasks)):
        assert ids(s.wait_tasks(app_id, 2, version=version)) == seen - before[app_id], "the held ones, kept"

    # the deployment is over: nothing to act on
    gone = step_command(s, dep, "/x", "stop")
    assert gone.status == 404 and dep in gone.json["message"], gone
    assert s.api.delete(f"/v2/deployments/{dep}").status == 404


def test_step_commands_refuse_bad_requests(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    dep, _ = deploy(s, [app_spec("/new", 1, sim="unready")])
    s.wait_until(lambda: sim.held_of("/new"), "/new to run, not ready")

    # a new app has no previous version to roll back to
    r = step_command(s, dep, "/new", "rollback")
    assert r.status == 409 and "previous version" in r.json["message"], r
    assert steps_of(s.api.deployment(dep))["/new"]["state"] == "running"
    assert s.api.app("/new")["labels"] == {SIM_LABEL: "unready"}

    bad = step_command(s, dep, "/new", "explode")
    assert bad.status == 422 and "stop" in bad.json["message"], bad
    assert s.api.post(f"/v2/deployments/{dep}/apps/new", raw=b"{").status == 400
    assert step_command(s, dep, "/other", "stop").status == 404
    assert step_command(s, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "/new", "stop").status == 404
    assert steps_of(s.api.deployment(dep))["/new"]["state"] == "running"


def test_delete_deployment_rolls_back_or_stops(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    v1 = [app_spec("/one", 2, cmd="sleep 1001"), app_spec("/two", 2, cmd="sleep 1002")]
    before = start_apps(s, v1)

    dep, _ = deploy(s, [dict(v1[0], cmd="sleep 2001", labels={SIM_LABEL: "unready"})])
    s.wait_until(lambda: len(sim.held_of("/one")) == 2, "/one's new instances to run")
    r = s.api.delete(f"/v2/deployments/{dep}")
    assert r.status == 200 and r.json["deploymentId"] == dep, r
    assert s.wait_deployment_done(dep) == "deployment_failed", "rolled back: not what was deployed"
    one = s.api.app("/one")
    assert one["cmd"] == "sleep 1001"
    s.wait_tasks("/one", 2, version=one["version"])

    dep, version = deploy(s, [dict(v1[1], cmd="sleep 2002", labels={SIM_LABEL: "unready"})])
    s.wait_until(lambda: len(sim.held_of("/two")) == 2, "/two's new instances to run")
    r = s.api.delete(f"/v2/deployments/{dep}?force=true")
    assert r.status == 202, r
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.api.deployments() == []
    two = s.api.app("/two")
    assert two["cmd"] == "sleep 2002" and two["version"] == version, "stopped where it stood"
    assert before["/two"] <= ids(s.api.tasks("/two"))


def test_delete_deployment_rolls_back_deletions_and_scales(make_scheduler, fake_master, sim):
    """Marathon's rollback reverts every change of the deployment: an app being deleted (or
    already deleted) comes back with its definition and count, a scale returns to the old count
    keeping what runs."""
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    gone, keep = app_spec("/gone", 2, cmd="sleep 1003"), app_spec("/keep", 2, cmd="sleep 1004")
    before = start_apps(s, [gone, keep])

    # deletion still running (kills unanswered): rolled back, the app stays with 2 instances
    fake_master.set_auto_kill(False)
    r = s.api.delete("/v2/apps/gone")
    assert r.status == 200, r
    dep = r.json["deploymentId"]
    fake_master.wait_call("KILL", lambda c: c.kill.task_id.value.startswith("gone."))
    r = s.api.delete(f"/v2/deployments/{dep}")
    assert r.status == 200 and r.json["deploymentId"] == dep, r
    assert steps_of(s.api.deployment(dep))["/gone"]["rollback"] is True
    fake_master.set_auto_kill(True)
    for t in before["/gone"]:
        fake_master.send_update(t, "TASK_KILLED")
    assert s.wait_deployment_done(dep) == "deployment_failed"
    app = s.api.app("/gone")
    assert app["instances"] == 2 and app["cmd"] == "sleep 1003"
    s.wait_tasks("/gone", 2, version=app["version"])

    # a scale in a batch with a held update: rolled back to 2, the instances that ran stay
    dep, _ = deploy(s, [dict(keep, instances=3), app_spec("/held", 1, labels={SIM_LABEL: "unready"})])
    s.wait_until(lambda: len(sim.held_of("/held")) == 1, "the held app to run, not ready")
    s.wait_tasks("/keep", 3)
    r = s.api.delete(f"/v2/deployments/{dep}")
    assert r.status == 200, r
    assert s.wait_deployment_done(dep) == "deployment_failed"
    app = s.api.app("/keep")
    assert app["instances"] == 2
    assert ids(s.wait_tasks("/keep", 2)) == before["/keep"], "scaled back down: the first two stay"
    assert s.api.get("/v2/apps/held").status == 404, "a new app rolled back is removed"


# --------------------------------------------------------------------------
# Deadlines


def test_step_deadline_fails_the_step_with_the_reason(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler("--step-deadline=2s").start()
    fake_master.auto_offer(0.1)
    v1 = [app_spec("/slow", 2), app_spec("/quick", 2)]
    before = start_apps(s, v1)
    started = time.monotonic()
    dep, version = deploy(s, [
        dict(v1[0], cmd="sleep 2000", labels={SIM_LABEL: "unready"}),
        dict(v1[1], cmd="sleep 2000", labels={SIM_LABEL: "unready", "pacer.deployment.deadline": "1s"}),
    ])
    quick = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/quick"})
    slow = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/slow"})
    assert quick.detail["state"] == slow.detail["state"] == "failed"
    assert quick.detail["reason"] == "deadline of 1s passed"
    assert slow.detail["reason"] == "deadline of 2s passed"
    assert 1.0 <= quick.t - started < 3.5 and 2.0 <= slow.t - started < 4.5
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.api.deployments() == []
    # without --auto-rollback the app stays at the new version; the old instances still serve
    for spec in v1:
        app = s.api.app(spec["id"])
        assert app["version"] == version and app["pacer"]["crashLoop"] is False
        running = {t["id"] for t in s.api.tasks(spec["id"]) if t["state"] == "TASK_RUNNING"}
        assert before[spec["id"]] <= running


def test_step_deadline_with_auto_rollback_restores_the_previous_version(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler("--step-deadline=2s", "--auto-rollback").start()
    fake_master.auto_offer(0.1)
    v1 = app_spec("/app", 2, cmd="sleep 1000")
    before = start_apps(s, [v1])
    dep, version = deploy(s, [dict(v1, cmd="sleep 2000", labels={SIM_LABEL: "unready"})])
    failed = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/app"})
    assert failed.detail["reason"] == "deadline of 2s passed"
    rolled = s.wait_event("deployment_step_success", {"deploymentId": dep, "appId": "/app"})
    assert rolled.detail["reason"] == "rolled back: deadline of 2s passed"
    assert s.wait_deployment_done(dep) == "deployment_failed"
    assert s.timeline.last("sse", "deployment_failed").detail["reason"] == \
        "/app: rolled back: deadline of 2s passed"
    app = s.api.app("/app")
    assert app["cmd"] == "sleep 1000" and app["labels"] == {} and app["version"] != version
    tasks = s.wait_tasks("/app", 2, version=app["version"])
    assert not ids(tasks) & before["/app"]
    new_version_tasks = {lr.task_id for lr in launches_of(fake_master, "/app") if lr.task.labels.labels}
    assert len(new_version_tasks) == 2 and not new_version_tasks & ids(tasks)


# --------------------------------------------------------------------------
# Restarts and dependencies


def test_restart_mid_deployment_resumes_it(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    v1 = app_spec("/web", 3)
    before = start_apps(s, [v1])
    dep, version = deploy(s, [dict(v1, cmd="sleep 2000", labels={SIM_LABEL: "unready"})])
    s.wait_until(lambda: len(sim.held_of("/web")) == 3, "the new instances to run, not ready")
    held = set(sim.held_of("/web"))

    s.kill()
    n_launches = len(fake_master.launches)
    s.start()
    d = s.api.deployment(dep)
    assert d is not None, "the deployment survived the restart"
    step = steps_of(d)["/web"]
    assert step["state"] == "running" and step["toVersion"] == version
    assert ids(s.api.tasks("/web")) == before["/web"] | held

    sim.release("/web")
    assert s.wait_deployment_done(dep) == "deployment_success"
    assert ids(s.wait_tasks("/web", 3, version=version)) == held
    assert len(fake_master.launches) == n_launches, "nothing relaunched"


def test_batch_larger_than_a_store_record_survives_restarts(make_scheduler, fake_master):
    """A batch of 400 apps: as one record its plan would pass the store's 64 KiB
    cap; as a header and a record per step it is stored whole, and a change to
    one app's step is stored as that step alone."""
    s = make_scheduler().start()  # no agents: every step keeps running
    apps = [app_spec(f"/batch/app-{i:03}", 1) for i in range(400)]
    dep, _ = deploy(s, apps)

    s.kill()
    s.start()
    d = s.api.deployment(dep)
    assert d is not None, "the deployment survived the restart"
    steps = steps_of(d)
    assert len(steps) == 400 and {st["state"] for st in steps.values()} == {"running"}

    assert step_command(s, dep, "/batch/app-123", "stop").status == 200
    s.kill()
    s.start()
    steps = steps_of(s.api.deployment(dep))
    assert steps["/batch/app-123"]["state"] == "stopped"
    assert sum(st["state"] == "running" for st in steps.values()) == 399


def test_dependencies_are_deployed_in_order(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    dep, _ = deploy(s, [app_spec("/b", 2, dependencies=["/a"]), app_spec("/a", 2, sim="unready")])
    s.wait_until(lambda: len(sim.held_of("/a")) == 2, "/a to run, not ready")
    d = s.api.deployment(dep)
    assert d["totalSteps"] == 2 and d["currentStep"] == 1
    assert d["steps"] == [{"actions": [{"action": "StartApplication", "app": "/a"}]},
                          {"actions": [{"action": "StartApplication", "app": "/b"}]}]
    assert steps_of(d)["/b"]["state"] == "waiting"
    assert [a["app"] for a in d["currentActions"]] == ["/a"]
    assert all(r["ready"] is False for r in d["currentActions"][0]["readinessCheckResults"])
    # /b waits: offers with room for it are declined
    fresh_offers_declined(fake_master)
    assert not launches_of(fake_master, "/b")

    releasing = time.monotonic()
    released = sim.release("/a")
    assert s.wait_deployment_done(dep) == "deployment_success"
    s.wait_tasks("/b", 2)
    # when the master started writing each of /a's "ready" updates
    ready_at = max(fake_master.timeline.wait("master", "event.UPDATE", f"task={tid} state=TASK_RUNNING",
                                             after=releasing).t for tid in released)
    assert min(lr.time for lr in launches_of(fake_master, "/b")) > ready_at


def test_step_whose_dependency_failed_stops_and_its_app_stays_as_it_stood(make_scheduler, fake_master, sim):
    add_agents(fake_master, 3)
    s = make_scheduler("--crash-loop-failures=2", "--crash-loop-window=60s").start()
    fake_master.auto_offer(0.1)
    v1 = [app_spec("/db", 1), app_spec("/web", 2, dependencies=["/db"])]
    before = start_apps(s, v1)
    n_launches = len(fake_master.launches)
    dep, version = deploy(s, [dict(v1[0], cmd="exit 1", labels={SIM_LABEL: "crash"}, backoffSeconds=0),
                              dict(v1[1], cmd="sleep 2000")])

    failed = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/db"})
    assert failed.detail["state"] == "failed"
    # /web would wait for /db forever: it stops instead, and the deployment ends
    stopped = s.wait_event("deployment_step_failure", {"deploymentId": dep, "appId": "/web"})
    assert stopped.detail["state"] == "stopped"
    assert stopped.detail["reason"] == "not started: dependency /db failed"
    assert s.wait_deployment_done(dep) == "deployment_failed"
    # /web's definition is the new one, but nothing of it ran: its old instances serve, no more
    assert s.api.app("/web")["version"] == version
    fresh_offers_declined(fake_master)
    assert not launches_of(fake_master, "/web", n_launches)
    assert ids(s.api.tasks("/web")) == before["/web"]


# --------------------------------------------------------------------------
# Bad input


def test_cyclic_dependencies_refused_and_nothing_changed(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    r = s.api.put("/v2/apps", [app_spec("/p", 1, dependencies=["/q"]), app_spec("/q", 1, dependencies=["/p"])])
    assert r.status == 422 and r.json["message"] == "dependency cycle: /p -> /q -> /p", r
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}
    assert s.api.deployments() == []

    before = start_apps(s, [app_spec("/p", 1), app_spec("/q", 1)])
    versions = {a: s.api.app(a)["version"] for a in ("/p", "/q")}
    r = s.api.put("/v2/apps", [app_spec("/p", 1, dependencies=["/q"]), app_spec("/q", 1, dependencies=["/p"])])
    assert r.status == 422 and "cycle" in r.json["message"], r
    for a in ("/p", "/q"):
        app = s.api.app(a)
        assert app["version"] == versions[a] and app["dependencies"] == []
        assert ids(s.api.tasks(a)) == before[a]
    assert s.api.deployments() == []

    # through a stored app: /r (stored) depends on /p; /p may not come to depend on /r
    start_apps(s, [app_spec("/r", 1, dependencies=["/p"])])
    r = s.api.put("/v2/apps/p", app_spec("/p", 1, dependencies=["/r"]))
    assert r.status == 422 and r.json["message"] == "dependency cycle: /p -> /r -> /p", r
    assert s.api.app("/p")["version"] == versions["/p"] and s.api.deployments() == []
    # a dependency that does not lead back is fine
    dep, _ = deploy(s, [app_spec("/p", 1, dependencies=["/q"])])
    assert s.wait_deployment_done(dep) == "deployment_success"


def test_dependency_on_unknown_app_refused(make_scheduler, fake_master):
    s = make_scheduler().start()
    r = s.api.post("/v2/apps", app_spec("/web", 1, dependencies=["/db"]))
    assert r.status == 422 and "/db" in r.json["message"] and "does not exist" in r.json["message"], r
    assert s.api.get("/v2/apps/web").status == 404
    r = s.api.put("/v2/apps", [app_spec("/web", 1, dependencies=["db"]), app_spec("/api", 1)])
    assert r.status == 422 and "/db" in r.json["message"], r
    assert s.api.ok("GET", "/v2/apps") == {"apps": []}


def test_conflicting_batch_refused_without_force(make_scheduler, fake_master, sim):
    add_agents(fake_master, 2)
    s = make_scheduler().start()
    fake_master.auto_offer(0.1)
    start_apps(s, [app_spec("/busy", 1)])
    dep, version = deploy(s, [app_spec("/busy", 1, cmd="sleep 2000", sim="unready")])
    s.wait_until(lambda: sim.held_of("/busy"), "/busy's new instance to run")
    r = s.api.put("/v2/apps", [app_spec("/busy", 2), app_spec("/free", 1)])
    assert r.status == 409 and r.json["deployments"] == [{"id": dep}], r
    assert s.api.get("/v2/apps/free").status == 404, "nothing of the batch was applied"
    assert s.api.app("/busy")["version"] == version
    assert [d["id"] for d in s.api.deployments()] == [dep]
