"""A fake pacer-scheduler REST API, for testing pacerctl without a scheduler.

It serves the endpoints of ``docs/rest-api.md`` from in-memory state, in the shapes pacer-scheduler
answers with (Marathon's /v2 plus Pacer's per-app deployment steps), and runs deployments on a
timer so that a client sees them progress, succeed or fail:

* ``GET/POST/PUT /v2/apps`` (``?id=`` prefix), ``GET/PUT/PATCH/DELETE /v2/apps/{id}``
  (``?partialUpdate=false``, ``?force=true``), ``POST /v2/apps/{id}/restart``,
  ``GET /v2/apps/{id}/tasks``, ``GET /v2/tasks``;
* ``GET /v2/deployments`` (``apps: [{appId, action, state, reason, rollback}]`` per step),
  ``DELETE /v2/deployments/{id}`` (rollback; ``?force=true`` stops it, 202),
  ``POST /v2/deployments/{id}/apps/{appId}`` with ``{"action": "stop"|"rollback"|"retry"}``;
* ``GET /v2/info``, ``GET /v2/leader``, ``GET /ping``;
* ``GET /v2/events``: Server-Sent Events (``id:``, ``event:``, ``data:`` lines) with the
  ``event_type`` (repeatable) and ``app_id`` (prefix) filters and replay after ``Last-Event-ID``.

Errors use Marathon's shapes: 422 ``{"message", "details": [{"path", "errors"}]}`` with every
error found, 409 ``{"message", "deployments": [{"id"}]}`` for an app locked by a deployment, 409
``An app with id [/x] already exists.`` for POST of an existing app, 404 ``{"message"}``, 401
without the right bearer token (``token=``), 403 for writes with ``readonly_token``.

How a deployment goes is scripted by the app's label ``fake.behaviour``:

``ok`` (default)
    one instance is launched (or killed) per tick, each with its status, health and
    registration events; the step succeeds once the instances are there, then the deployment.
``fail``
    every launched task fails at the next tick; after ``crash_limit`` failures the step fails
    with a crash-loop reason and the deployment ends with ``deployment_failed``.
``hold``
    nothing happens: the deployment stays running and locks the app.
``rollback``
    the step turns back at once (as after a deadline with auto-rollback): it ends
    ``succeeded`` with ``rollback: true``, and the deployment with ``deployment_failed``.
``vanish``
    the deployment disappears at the first tick without any event and without instances.

``events=False`` serves no event stream (404), so a client must poll; ``linger=n`` keeps a finished
deployment listed (with its final step states) for n more ticks, as a scheduler may. Every
request is recorded (``requests``) with its headers and body; ``drop_streams()`` cuts the open
event streams; ``publish()`` adds an event; ``overrides[(method, path)] = (status, bytes)`` answers
a route with anything at all (hostile-server tests). Time moves in ticks of ``tick`` seconds on a
thread of its own.
"""

import dataclasses
import http.server
import json
import re
import threading
import time
import urllib.parse
import uuid

# Events kept for Last-Event-ID replay (the scheduler keeps 4096).
REPLAY_MAX = 1000
# Request bodies above this are refused with 413 before parsing (as the scheduler does).
BODY_MAX = 1024 * 1024
# How long an event stream waits for an event before checking whether it must end.
STREAM_POLL = 0.05

APP_FIELDS = {
    "id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "constraints",
    "portDefinitions", "ports", "requirePorts", "healthChecks", "upgradeStrategy", "backoffSeconds",
    "backoffFactor", "maxLaunchDelaySeconds", "killSelection", "taskKillGracePeriodSeconds",
    "dependencies", "labels", "executor", "version",
}
ID_SEGMENT = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _now_ts():
    return f"{time.time():.3f}"


def _version():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def normalize_id(raw):
    """"/prod/web" from "prod/web" or "/prod/web/"."""
    if not raw.startswith("/"):
        raw = "/" + raw
    if len(raw) > 1 and raw.endswith("/"):
        raw = raw[:-1]
    return raw


def validate_app(obj, prefix=""):
    """Every error of an app definition as (path, message), Pacer-style."""
    errors = []
    if not isinstance(obj, dict):
        return [(prefix or "/", "expected an app object")]
    for key in obj:
        if key not in APP_FIELDS:
            errors.append((f"{prefix}/{key}", "unknown field"))
    app_id = obj.get("id")
    if app_id is None:
        errors.append((f"{prefix}/id", "is required"))
    elif not isinstance(app_id, str):
        errors.append((f"{prefix}/id", f"expected string, got {type(app_id).__name__}"))
    else:
        segments = normalize_id(app_id).split("/")[1:]
        bad = [s for s in segments if not ID_SEGMENT.match(s)]
        if bad or not segments or segments == [""]:
            errors.append((f"{prefix}/id", f"segment \"{bad[0] if bad else ''}\" is not a valid id segment"))
    if ("cmd" in obj) == ("args" in obj):
        errors.append((prefix or "/", "one of cmd or args is required" if "cmd" not in obj
                       else "cmd and args are mutually exclusive"))
    for key in ("cpus", "mem", "disk"):
        v = obj.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v > 1e9):
            errors.append((f"{prefix}/{key}", f"must be between 0 and 1e+09 (got {json.dumps(v)})"))
    inst = obj.get("instances")
    if inst is not None and (isinstance(inst, bool) or not isinstance(inst, int) or not 0 <= inst <= 100000):
        errors.append((f"{prefix}/instances", f"must be an integer from 0 to 100000 (got {json.dumps(inst)})"))
    return errors


def errors_body(errors):
    details, index = [], {}
    for path, msg in errors:
        if path not in index:
            index[path] = len(details)
            details.append({"path": path, "errors": []})
        details[index[path]]["errors"].append(msg)
    return {"message": "Object is not valid", "details": details}


@dataclasses.dataclass
class Step:
    app_id: str
    action: str  # StartApplication, ScaleApplication, RestartApplication, StopApplication
    from_version: object = None  # the app definition before (dict) or None
    to_version: object = None  # the target definition (dict) or None when deleting
    state: str = "waiting"
    reason: str = ""
    rollback: bool = False
    failures: int = 0


@dataclasses.dataclass
class Deployment:
    id: str
    version: str
    steps: list


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(status)
        self.status, self.body = status, body


class FakePacerApi:
    """The fake; see the module docstring. start() binds 127.0.0.1 on a free port."""

    def __init__(self, token=None, readonly_token=None, events=True, tick=0.05, crash_limit=2, linger=0):
        self.token, self.readonly_token = token, readonly_token
        self.events_enabled = events
        self.linger = linger
        self.lingering = {}  # id -> [Deployment, ticks left]: finished, still listed
        self.overrides = {}  # (method, path) -> (status, raw body)
        self.tick, self.crash_limit = tick, crash_limit
        self.apps = {}  # id -> {"def": dict, "crash_loop": bool, "last_failure": str|None, "deployment": id|None}
        self.tasks = {}  # app id -> [task dict]
        self.deployments = {}  # id -> Deployment (running ones)
        self.events = []  # [(id, type, data dict, app id)]
        self.requests = []
        self.stream_requests = []  # Request of every GET /v2/events
        self.next_event_id = 1
        self.generation = 0  # drop_streams() bumps it; open streams of older generations end
        self.open_streams = 0
        self.task_seq = 0
        self.cond = threading.Condition()
        self.stopping = False
        self.server = None
        self._threads = []

    # lifetime ------------------------------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            api = fake

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._threads = [threading.Thread(target=self.server.serve_forever, daemon=True, name="pacer-api"),
                         threading.Thread(target=self._ticker, daemon=True, name="pacer-api-ticker")]
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        for t in self._threads:
            t.join(5)

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    # scripting -----------------------------------------------------------------------------------

    def publish(self, type_, data):
        """Adds an event (eventType and timestamp are filled in) and returns its id."""
        with self.cond:
            return self._emit(type_, data)

    def publish_raw(self, type_, text):
        """Adds an event whose data is text as it is (one data: line per line), JSON or not."""
        with self.cond:
            eid = self.next_event_id
            self.next_event_id += 1
            self.events.append((eid, type_, text, None))
            del self.events[:-REPLAY_MAX]
            self.cond.notify_all()
            return eid

    def drop_streams(self):
        """Ends every open event stream (the client sees the connection close)."""
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def wait_streams(self, n, timeout=10.0):
        """Waits until n event streams are open (so a test knows a client subscribed)."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.open_streams >= n, timeout):
                raise AssertionError(f"timed out waiting for {n} open event streams "
                                     f"(open: {self.open_streams})")

    def wait_stream_requests(self, n, timeout=10.0):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.stream_requests) >= n, timeout):
                raise AssertionError(f"timed out waiting for {n} event stream requests")
            return list(self.stream_requests)

    def add_app(self, definition, running=True):
        """Puts an app in place directly (no deployment); with running, its instances run and are healthy."""
        with self.cond:
            d = self._canonical(definition)
            self.apps[d["id"]] = {"def": d, "crash_loop": False, "last_failure": None, "deployment": None}
            self.tasks[d["id"]] = []
            if running:
                for _ in range(d["instances"]):
                    self.tasks[d["id"]].append(self._new_task(d, healthy=True))
            return d["id"]

    def requests_to(self, method, path_prefix):
        with self.cond:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def deployment_ids(self):
        with self.cond:
            return list(self.deployments)

    # state helpers (called with cond held) -------------------------------------------------------

    def _emit(self, type_, data):
        data = dict(data)
        data["eventType"] = type_
        data["timestamp"] = _now_ts()
        eid = self.next_event_id
        self.next_event_id += 1
        self.events.append((eid, type_, data, data.get("appId")))
        del self.events[:-REPLAY_MAX]
        self.cond.notify_all()
        return eid

    def _canonical(self, obj, version=None):
        d = {"id": normalize_id(obj["id"])}
        for k, v in obj.items():
            if k != "id":
                d[k] = v
        d.setdefault("instances", 1)
        d.setdefault("cpus", 1)
        d.setdefault("mem", 128)
        d.setdefault("disk", 0)
        d.setdefault("healthChecks", [])
        d.setdefault("labels", {})
        d.setdefault("portDefinitions", [{"port": 0, "protocol": "tcp"}])
        d["version"] = version or _version()
        return d

    def _new_task(self, d, healthy):
        self.task_seq += 1
        task = {"id": f"{d['id'].strip('/').replace('/', '_')}.{self.task_seq}", "appId": d["id"],
                "host": "127.0.0.1", "ports": [31000 + self.task_seq], "slaveId": "agent-1",
                "state": "TASK_RUNNING", "stagedAt": _version(), "startedAt": _version(),
                "version": d["version"], "healthCheckResults": [],
                "registration": {"state": "registered", "serviceId": f"pacer-{self.task_seq}"}}
        if d.get("healthChecks"):
            task["healthCheckResults"] = [{"alive": healthy, "consecutiveFailures": 0,
                                           "taskId": task["id"]}]
        return task

    def _app_json(self, app_id):
        entry = self.apps[app_id]
        d = dict(entry["def"])
        tasks = self.tasks.get(app_id, [])
        running = [t for t in tasks if t["state"] == "TASK_RUNNING"]
        healthy = [t for t in running if t["healthCheckResults"] and t["healthCheckResults"][0]["alive"]]
        d.update({
            "tasksRunning": len(running),
            "tasksStaged": len([t for t in tasks if t["state"] == "TASK_STAGING"]),
            "tasksHealthy": len(healthy) if d.get("healthChecks") else 0,
            "tasksUnhealthy": len(running) - len(healthy) if d.get("healthChecks") else 0,
            "tasksRegistered": len([t for t in running if t["registration"]["state"] == "registered"]),
            "deployments": [{"id": entry["deployment"]}] if entry["deployment"] else [],
            "pacer": {"crashLoop": entry["crash_loop"]},
        })
        if entry["last_failure"]:
            d["pacer"]["lastFailure"] = entry["last_failure"]
            d["pacer"]["lastFailureAt"] = _version()
        return d

    def _deployment_json(self, dep):
        return {
            "id": dep.id, "version": dep.version,
            "affectedApps": [s.app_id for s in dep.steps], "affectedPods": [],
            "steps": [{"actions": [{"action": s.action, "app": s.app_id} for s in dep.steps]}],
            "currentActions": [{"action": s.action, "app": s.app_id, "readinessCheckResults": []}
                               for s in dep.steps if s.state == "running"],
            "currentStep": 1, "totalSteps": 1,
            "apps": [{"appId": s.app_id, "action": s.action, "state": s.state, "reason": s.reason,
                      "rollback": s.rollback} for s in dep.steps],
        }

    def _check_locks(self, app_ids, force):
        locks = sorted({self.apps[a]["deployment"] for a in app_ids
                        if a in self.apps and self.apps[a]["deployment"]})
        if locks and not force:
            raise ApiError(409, {"message": "App is locked by one or more deployments. Override with the option "
                                            "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
                                 "deployments": [{"id": d} for d in locks]})
        for dep_id in locks:
            dep = self.deployments.pop(dep_id, None)
            for s in dep.steps if dep else []:
                if s.app_id in self.apps and self.apps[s.app_id]["deployment"] == dep_id:
                    self.apps[s.app_id]["deployment"] = None

    def _start_deployment(self, steps):
        dep = Deployment(id=str(uuid.uuid4()), version=_version(), steps=steps)
        self.deployments[dep.id] = dep
        for s in steps:
            if s.app_id in self.apps:
                self.apps[s.app_id]["deployment"] = dep.id
        return dep

    def _apply_definitions(self, objs, force, replace=True):
        """Creates or updates apps; returns the Deployment (or None when nothing changes)."""
        ids = [normalize_id(o["id"]) for o in objs]
        self._check_locks(ids, force)
        steps = []
        for obj, app_id in zip(objs, ids):
            old = self.apps.get(app_id)
            if old and not replace:
                merged = {k: v for k, v in old["def"].items() if k != "version"}
                merged.update(obj)
                obj = merged
            new = self._canonical(obj)
            if old:
                before = old["def"]
                same = {k: v for k, v in before.items() if k != "version"} == \
                       {k: v for k, v in new.items() if k != "version"}
                if same:
                    continue
                only_scale = {k: v for k, v in before.items() if k not in ("version", "instances")} == \
                             {k: v for k, v in new.items() if k not in ("version", "instances")}
                action = "ScaleApplication" if only_scale else "RestartApplication"
                if only_scale:
                    new["version"] = before["version"]
                old["def"] = new
                steps.append(Step(app_id, action, from_version=before, to_version=new))
            else:
                self.apps[app_id] = {"def": new, "crash_loop": False, "last_failure": None, "deployment": None}
                self.tasks[app_id] = []
                steps.append(Step(app_id, "StartApplication", to_version=new))
            self._emit("api_post_event", {"appId": app_id, "version": new["version"]})
        if not steps:
            return None
        return self._start_deployment(steps)

    # the ticker: deployments move on --------------------------------------------------------------

    def _ticker(self):
        while True:
            with self.cond:
                if self.stopping:
                    return
                self._advance()
                self.cond.wait(self.tick)

    def _advance(self):
        for dep_id, entry in list(self.lingering.items()):
            entry[1] -= 1
            if entry[1] <= 0:
                del self.lingering[dep_id]
        for dep in list(self.deployments.values()):
            for step in dep.steps:
                if step.state == "waiting":
                    step.state = "running"
                    self._emit("deployment_info", {"deploymentId": dep.id, "appId": step.app_id,
                                                   "action": step.action})
                elif step.state == "running":
                    self._run_step(dep, step)
                if dep.id not in self.deployments:
                    break
            if dep.id not in self.deployments:
                continue
            if all(s.state in ("succeeded", "failed", "stopped") for s in dep.steps):
                # a step back at its previous version did not get what was asked
                bad = [s for s in dep.steps if s.state != "succeeded" or s.rollback]
                if bad:
                    what = "rolled back" if bad[0].state == "succeeded" else bad[0].state
                    self._emit("deployment_failed", {"id": dep.id, "reason": f"{bad[0].app_id}: {what}"})
                else:
                    self._emit("deployment_success", {"id": dep.id})
                self._finish(dep)
                if self.linger:
                    self.lingering[dep.id] = [dep, self.linger]

    def _finish(self, dep):
        self.deployments.pop(dep.id, None)
        for s in dep.steps:
            if s.app_id in self.apps and self.apps[s.app_id]["deployment"] == dep.id:
                self.apps[s.app_id]["deployment"] = None

    def _step_done(self, dep, step, state, reason=""):
        step.state, step.reason = state, reason
        self._emit("deployment_step_success" if state == "succeeded" else "deployment_step_failure",
                   {"deploymentId": dep.id, "appId": step.app_id, "state": state, "reason": reason})

    def _kill(self, app_id, task):
        self.tasks[app_id].remove(task)
        self._emit("status_update_event", {"taskId": task["id"], "appId": app_id, "taskStatus": "TASK_KILLED",
                                           "healthy": "unknown", "registration": "deregistered"})

    def _run_step(self, dep, step):
        entry = self.apps.get(step.app_id)
        target = step.to_version
        behaviour = (target or step.from_version or {}).get("labels", {}).get("fake.behaviour", "ok")
        if behaviour == "hold":
            return
        if behaviour == "vanish":
            self._finish(dep)
            return
        if behaviour == "rollback":
            step.rollback = True
            self._step_done(dep, step, "succeeded", "rolled back: deadline of 1s passed")
            return
        tasks = self.tasks.setdefault(step.app_id, [])
        if step.action == "StopApplication":
            if tasks:
                self._kill(step.app_id, tasks[0])
                return
            self.apps.pop(step.app_id, None)
            self.tasks.pop(step.app_id, None)
            self._emit("app_terminated_event", {"appId": step.app_id})
            self._step_done(dep, step, "succeeded")
            return
        if behaviour == "fail":
            for t in [t for t in tasks if t["state"] == "TASK_RUNNING" and t["version"] == target["version"]]:
                tasks.remove(t)
                step.failures += 1
                entry["last_failure"] = "exited with status 1"
                self._emit("status_update_event", {"taskId": t["id"], "appId": step.app_id,
                                                   "taskStatus": "TASK_FAILED", "message": "exited with status 1",
                                                   "healthy": "unknown", "registration": "deregistered"})
            if step.failures >= self.crash_limit:
                entry["crash_loop"] = True
                self._step_done(dep, step, "failed",
                                f"crash loop: {step.failures} task failures within 60s (limit {self.crash_limit})")
                return
        new = [t for t in tasks if t["version"] == target["version"]]
        old = [t for t in tasks if t["version"] != target["version"]]
        if len(new) < target["instances"]:
            task = self._new_task(target, healthy=True)
            tasks.append(task)
            for status in ("TASK_STAGING", "TASK_RUNNING"):
                self._emit("status_update_event", {"taskId": task["id"], "appId": step.app_id,
                                                   "taskStatus": status, "host": task["host"]})
            if target.get("healthChecks"):
                self._emit("instance_health_changed_event", {"instanceId": task["id"], "appId": step.app_id,
                                                             "healthy": True})
            self._emit("pacer_registration_event", {"taskId": task["id"], "appId": step.app_id,
                                                    "state": "registered"})
            return
        if old:
            self._kill(step.app_id, old[0])
            return
        if len(new) > target["instances"]:
            self._kill(step.app_id, new[-1])
            return
        if behaviour != "fail":
            self._step_done(dep, step, "succeeded")

    # request handling (cond held) -----------------------------------------------------------------

    def handle(self, method, path, query, headers, body):
        """Returns (status, body object or bytes, extra headers)."""
        self._authorize(method, headers)
        if (method, path) in self.overrides:
            status, raw = self.overrides[(method, path)]
            return status, raw, {}
        if len(body) > BODY_MAX:
            raise ApiError(413, {"message": f"request body over {BODY_MAX} bytes"})
        force = query.get("force", ["false"])[-1] == "true"
        if path == "/ping":
            return 200, b"pong\n", {"Content-Type": "text/plain"}
        if path == "/v2/info":
            return 200, {"name": "pacer", "version": "0.1.0", "frameworkId": "fake-framework",
                         "leader": f"127.0.0.1:{self.port}", "elected": True,
                         "marathon_config": {"master": "local", "mesos_role": "*", "failover_timeout": 604800},
                         "pacer": {"mode": "local", "consul": "registration disabled: fake",
                                   "store": "sqlite:/fake/pacer.db", "connected": True}}, {}
        if path == "/v2/leader":
            return 200, {"leader": f"127.0.0.1:{self.port}"}, {}
        if path == "/v2/apps":
            return self._apps(method, query, body, force)
        if path.startswith("/v2/apps/"):
            return self._app(method, urllib.parse.unquote(path[len("/v2/apps"):]), query, body, force)
        if path == "/v2/tasks" and method == "GET":
            return 200, {"tasks": [t for ts in self.tasks.values() for t in ts]}, {}
        if path == "/v2/deployments" and method == "GET":
            listed = list(self.deployments.values()) + [d for d, _ in self.lingering.values()]
            return 200, [self._deployment_json(d) for d in listed], {}
        if path.startswith("/v2/deployments/"):
            return self._deployment(method, path[len("/v2/deployments/"):], body, force)
        raise ApiError(404, {"message": f"no route for {method} {path}"})

    def _authorize(self, method, headers):
        if not self.token and not self.readonly_token:
            return
        auth = headers.get("Authorization", "")
        given = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if given is not None and given == self.token:
            return
        if given is not None and given == self.readonly_token:
            if method != "GET":
                raise ApiError(403, {"message": f"token may not {method}"})
            return
        raise ApiError(401, {"message": "Unauthorized: a valid bearer token is required"})

    @staticmethod
    def _parse(body):
        if not body:
            raise ApiError(400, {"message": "the request has no body: send the JSON document"})
        try:
            return json.loads(body)
        except ValueError as e:
            raise ApiError(400, {"message": "Invalid JSON", "details": [{"path": "/", "errors": [str(e)]}]})

    def _apps(self, method, query, body, force):
        if method == "GET":
            prefix = query.get("id", [""])[-1]
            ids = sorted(a for a in self.apps if a.startswith(prefix))
            return 200, {"apps": [self._app_json(a) for a in ids]}, {}
        if method == "POST":
            obj = self._parse(body)
            if not isinstance(obj, dict):
                raise ApiError(422, {"message": "expected one app object (use PUT /v2/apps for a batch)"})
            errors = validate_app(obj)
            if errors:
                raise ApiError(422, errors_body(errors))
            app_id = normalize_id(obj["id"])
            if app_id in self.apps:
                raise ApiError(409, {"message": f"An app with id [{app_id}] already exists."})
            dep = self._apply_definitions([obj], force=False)
            headers = {"Location": f"/v2/apps{app_id}"}
            if dep:
                headers["Marathon-Deployment-Id"] = dep.id
            return 201, self._app_json(app_id), headers
        if method == "PUT":
            objs = self._parse(body)
            if not isinstance(objs, list):
                raise ApiError(422, {"message": "PUT /v2/apps takes an array of apps"})
            errors = [e for i, o in enumerate(objs) for e in validate_app(o, f"/({i})")]
            if errors:
                raise ApiError(422, errors_body(errors))
            dep = self._apply_definitions(objs, force, replace=False)
            return 200, {"version": _version(), "deploymentId": dep.id if dep else None}, {}
        raise ApiError(405, {"message": f"{method} not allowed on /v2/apps"})

    def _app(self, method, rest, query, body, force):
        suffix = None
        for s in ("/restart", "/tasks"):
            if rest.endswith(s):
                rest, suffix = rest[: -len(s)], s
        app_id = normalize_id(rest)
        missing = ApiError(404, {"message": f"App '{app_id}' does not exist"})
        if suffix == "/tasks" and method == "GET":
            if app_id not in self.apps:
                raise missing
            return 200, {"tasks": list(self.tasks.get(app_id, []))}, {}
        if suffix == "/restart" and method == "POST":
            if app_id not in self.apps:
                raise missing
            self._check_locks([app_id], force)
            entry = self.apps[app_id]
            before, new = entry["def"], dict(entry["def"], version=_version())
            entry["def"] = new
            dep = self._start_deployment([Step(app_id, "RestartApplication", before, new)])
            return 200, {"version": new["version"], "deploymentId": dep.id}, {"Marathon-Deployment-Id": dep.id}
        if suffix:
            raise ApiError(405, {"message": f"{method} not allowed"})
        if method == "GET":
            if app_id not in self.apps:
                raise missing
            return 200, {"app": self._app_json(app_id)}, {}
        if method in ("PUT", "PATCH"):
            obj = self._parse(body)
            if not isinstance(obj, dict):
                raise ApiError(422, {"message": "expected an app object"})
            if method == "PATCH" and app_id not in self.apps:
                raise missing
            replace = method == "PUT" and query.get("partialUpdate", ["true"])[-1] == "false"
            full = dict(obj)
            full.setdefault("id", app_id)
            if app_id in self.apps and not replace:
                merged = {k: v for k, v in self.apps[app_id]["def"].items() if k != "version"}
                merged.update(full)
                full = merged
            errors = validate_app(full)
            if errors:
                raise ApiError(422, errors_body(errors))
            existed = app_id in self.apps
            dep = self._apply_definitions([full], force, replace=True)
            extra = {"Marathon-Deployment-Id": dep.id} if dep else {}
            return (200 if existed else 201), {"version": _version(), "deploymentId": dep.id if dep else None}, extra
        if method == "DELETE":
            if app_id not in self.apps:
                raise missing
            self._check_locks([app_id], force)
            dep = self._start_deployment([Step(app_id, "StopApplication", self.apps[app_id]["def"], None)])
            return 200, {"version": _version(), "deploymentId": dep.id}, {"Marathon-Deployment-Id": dep.id}
        raise ApiError(405, {"message": f"{method} not allowed"})

    def _deployment(self, method, rest, body, force):
        dep_id, _, app_part = rest.partition("/apps/")
        dep_id = urllib.parse.unquote(dep_id)
        dep = self.deployments.get(dep_id)
        if method == "DELETE" and not app_part:
            if not dep:
                raise ApiError(404, {"message": f"DeploymentPlan {dep_id} does not exist"})
            if force:
                self._finish(dep)
                return 202, {}, {}
            # as pacer-scheduler: the same deployment turns around, each step back to its previous version
            for s in dep.steps:
                if s.from_version:
                    s.action, s.from_version, s.to_version = "RestartApplication", s.to_version, s.from_version
                    s.rollback, s.state, s.reason = True, "running", ""
                    self.apps[s.app_id]["def"] = s.to_version
            return 200, {"version": dep.version, "deploymentId": dep.id}, {}
        if method == "POST" and app_part:
            app_id = normalize_id(urllib.parse.unquote(app_part))
            action = self._parse(body).get("action")
            if action not in ("stop", "rollback", "retry"):
                raise ApiError(422, {"message": f"action must be \"stop\", \"rollback\" or \"retry\", not {action}"})
            step = next((s for s in dep.steps if s.app_id == app_id), None) if dep else None
            if not step:
                raise ApiError(404, {"message": f"deployment {dep_id} has no step for {app_id}"})
            if action == "stop":
                if step.state in ("succeeded", "failed", "stopped"):
                    raise ApiError(409, {"message": f"the step of {app_id} is {step.state} already"})
                step.state = "stopped"
            elif action == "rollback":
                if not step.from_version:
                    raise ApiError(409, {"message": f"{app_id} has no previous version to roll back to"})
                step.to_version, step.from_version = step.from_version, step.to_version
                self.apps[app_id]["def"] = step.to_version
                step.rollback, step.state, step.reason = True, "running", ""
            else:
                if step.state not in ("failed", "stopped"):
                    raise ApiError(409, {"message": f"only a failed or stopped step can be retried "
                                                    f"({app_id} is {step.state})"})
                step.state, step.reason, step.failures = "waiting", "", 0
            self._emit("deployment_info", {"deploymentId": dep_id, "appId": app_id, "command": action})
            return 200, {"deploymentId": dep_id, "appId": app_id, "state": step.state}, {}
        raise ApiError(405, {"message": f"{method} not allowed"})

    # the event stream ---------------------------------------------------------------------------

    def stream(self, handler, query, headers):
        """Serves GET /v2/events on the handler's connection until it drops or is dropped."""
        types = query.get("event_type", [])
        prefix = query.get("app_id", [None])[-1]
        last = headers.get("Last-Event-ID")

        def wanted(ev):
            _, type_, _, app = ev
            return (not types or type_ in types) and (prefix is None or (app or "").startswith(prefix))

        with self.cond:
            generation = self.generation
            start = int(last) if last and last.isdigit() else self.next_event_id - 1
            self.open_streams += 1
            self.cond.notify_all()
        sent = start
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.flush()
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self.stopping or self.generation != generation
                                       or self.next_event_id - 1 > sent, STREAM_POLL)
                    if self.stopping or self.generation != generation:
                        return
                    batch = [ev for ev in self.events if ev[0] > sent]
                for ev in batch:
                    sent = ev[0]
                    if wanted(ev):
                        eid, type_, data, _ = ev
                        text = data if isinstance(data, str) else json.dumps(data)
                        lines = "".join(f"data: {line}\n" for line in text.split("\n"))
                        frame = f"id: {eid}\nevent: {type_}\n{lines}\n"
                        handler.wfile.write(frame.encode())
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            with self.cond:
                self.open_streams -= 1
                self.cond.notify_all()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None  # set by FakePacerApi.start()

    def log_message(self, fmt, *args):
        pass

    def _serve(self):
        api = self.api
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        req = Request(self.command, url.path, query, headers, body)
        with api.cond:
            api.requests.append(req)
            if url.path == "/v2/events" and self.command == "GET":
                api.stream_requests.append(req)
                api.cond.notify_all()
        if url.path == "/v2/events" and self.command == "GET":
            try:
                with api.cond:
                    api._authorize("GET", headers)
                if not api.events_enabled:
                    raise ApiError(404, {"message": "no route for GET /v2/events"})
            except ApiError as e:
                return self._reply(e.status, e.body, {})
            self.close_connection = True
            return api.stream(self, query, headers)
        try:
            with api.cond:
                status, out, extra = api.handle(self.command, url.path, query, headers, body)
        except ApiError as e:
            status, out, extra = e.status, e.body, {}
        self._reply(status, out, extra)

    def _reply(self, status, out, extra):
        data = out if isinstance(out, bytes) else json.dumps(out).encode()
        self.send_response(status)
        if "Content-Type" not in extra:
            self.send_header("Content-Type", "application/json")
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
