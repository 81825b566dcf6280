#!/usr/bin/python3
"""bench_launch_latency: how long pacer-executor takes to act on a launch.

1. LAUNCH -> TASK_RUNNING for a task without a health check, Consul off
   (issue 3: <= 2 ms beyond fork/exec). Measured on the fake agent's
   timeline: LAUNCH recorded just before it is written to the event stream,
   the TASK_RUNNING UPDATE recorded when the call has arrived and parsed.
2. First passing check -> TASK_RUNNING healthy=true with Consul registration
   (issue 4: <= 1 ms beyond the Consul round trips). The task is
   bench-http-server, which stamps each answer with the monotonic time just
   before it leaves; the Consul double records when each call arrived and was
   answered; the fake agent records the UPDATE's arrival. The time Consul
   spent inside its handlers is subtracted.

Both timelines also hold the fakes' own costs (Python HTTP parsing, the
loopback). To take those out, bench-ref-executor makes the same exchanges in
the same order on the same kind of connections with nothing in between (the
protocol floor). Floor and executor runs alternate, and each executor sample
has the floor run just before it subtracted, so both see the same load on the
machine. For (1), the median time bench-spawn takes to fork and exec the same
program (until the close-on-exec pipe reports the exec) is subtracted too.
"""

import json
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import benchlib as bl

RUNS = 50
WARMUP = 3
SPAWN_RUNS = 200
SPAWN_WARMUP = 10
LAUNCH_TARGET = 0.002
HEALTHY_TARGET = 0.001
# DESIGN.md: LAUNCH -> healthy beyond the check and Consul round trips.
LAUNCH_HEALTHY_TARGET = 0.005
# The health check of the second measurement: first probe shortly after the task started.
CHECK_DELAY = 0.02
CHECK_INTERVAL = 0.05
SERVICE_NAME = "bench-web"
FRAMEWORK_ID = "F1"


# --------------------------------------------------------------------------
# requests of the reference client


def subscribe_call(executor_id):
    Call = bl.agent_mod.Call
    c = Call(type=Call.SUBSCRIBE)
    c.framework_id.value = FRAMEWORK_ID
    c.executor_id.value = executor_id
    c.subscribe.SetInParent()
    return c.SerializeToString()


def update_call(executor_id, task_id, state, healthy=None):
    Call, TaskStatus = bl.agent_mod.Call, bl.agent_mod.TaskStatus
    c = Call(type=Call.UPDATE)
    c.framework_id.value = FRAMEWORK_ID
    c.executor_id.value = executor_id
    st = c.update.status
    st.task_id.value = task_id
    st.state = bl.agent_mod.mesos_pb2.TaskState.Value(state)
    st.source = TaskStatus.SOURCE_EXECUTOR
    st.uuid = uuid.uuid4().bytes
    st.timestamp = time.time()
    st.executor_id.value = executor_id
    if healthy is not None:
        st.healthy = healthy
        st.reason = TaskStatus.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    return c.SerializeToString()


def http_request(method, host, target, body=b"", headers=()):
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def agent_request(rig, body):
    return http_request("POST", rig.agent.endpoint, "/api/v1/executor", body,
                        ["Accept: application/x-protobuf", "Content-Type: application/x-protobuf"])


def register_body(task_id, service_id, port):
    """What pacer-executor registers (docs/consul.md), field for field."""
    return json.dumps({
        "ID": service_id, "Name": SERVICE_NAME, "Tags": ["pacer"], "Address": "127.0.0.1", "Port": port,
        "Meta": {"pacer_task_id": task_id, "pacer_framework_id": FRAMEWORK_ID, "pacer_executor_id": "ref"},
        "Check": {"CheckID": f"{service_id}:ttl", "Name": "pacer-executor health", "TTL": "10s",
                  "Status": "passing", "Notes": "fed by pacer-executor's own health probes",
                  "DeregisterCriticalServiceAfter": "1m0s"},
    }, separators=(",", ":")).encode()


def write_requests(rig, executor_id, task_id, check_port=None):
    """Writes the reference client's requests for one run and returns its argv.
    With check_port, the run goes on to the check -> healthy exchanges."""
    d = rig.workdir / "ref" / executor_id
    d.mkdir(parents=True)
    files = {
        "subscribe": agent_request(rig, subscribe_call(executor_id)),
        "starting": agent_request(rig, update_call(executor_id, task_id, "TASK_STARTING")),
        "running": agent_request(rig, update_call(executor_id, task_id, "TASK_RUNNING")),
    }
    argv = []
    if check_port is not None:
        port = check_port
        consul = rig.consul.address
        service_id = f"{task_id}_{SERVICE_NAME}_{port}"
        query = urllib.parse.urlencode({"filter": f'Meta["pacer_task_id"] == "{task_id}"'},
                                       quote_via=urllib.parse.quote)
        files.update({
            "consul-warm": http_request("GET", consul, f"/v1/agent/services?{query}", headers=["Accept: */*"]),
            "register": http_request("PUT", consul, "/v1/agent/service/register?replace-existing-checks",
                                     register_body(task_id, service_id, port),
                                     ["Accept: */*", "Content-Type: application/json"]),
            "verify": http_request("GET", consul, f"/v1/agent/service/{service_id}", headers=["Accept: */*"]),
            "check-request": http_request("GET", f"127.0.0.1:{port}", "/", headers=["Accept: */*"]),
            "healthy": agent_request(rig, update_call(executor_id, task_id, "TASK_RUNNING", healthy=True)),
        })
        argv += [f"--consul={consul}", f"--check=127.0.0.1:{port}", f"--check-delay-ms={int(CHECK_DELAY * 1000)}"]
    for name, data in files.items():
        (d / name).write_bytes(data)
        argv.append(f"--{name}={d / name}")
    return argv


# --------------------------------------------------------------------------
# measurements


def spawn_baseline(tool):
    """Seconds from fork to exec of `sleep` (bench-spawn), after a warm-up."""
    out = subprocess.run([str(bl.helper(tool)), str(SPAWN_RUNS), bl.sleep_binary(), "600"],
                         check=True, capture_output=True, text=True).stdout
    return [int(x) / 1e9 for x in out.split()][SPAWN_WARMUP:]


def launch_times(rig, task_id):
    """(LAUNCH -> TASK_RUNNING, LAUNCH -> TASK_STARTING) on the agent's timeline."""
    launch = rig.first_event("LAUNCH", task_id)
    starting = rig.first_update(task_id, "TASK_STARTING")
    running = rig.first_update(task_id, "TASK_RUNNING")
    return running.t - launch.t, starting.t - launch.t


def launch_once(rig, i, reference):
    eid, tid = (f"RL{i}", f"ref-launch-{i}") if reference else (f"L{i}", f"launch-{i}")
    task = bl.agent_mod.make_task(tid, cmd=bl.sleep_binary(), shell=False, argv=["sleep", "600"])
    if reference:
        proc = rig.launch(eid, task, write_requests(rig, eid, tid), binary=bl.helper("bench-ref-executor"))
    else:
        proc = rig.launch(eid, task)
    rig.wait_running(tid)
    rig.shutdown(eid, proc)
    return launch_times(rig, tid)


def run_launches(rig):
    """LAUNCH -> TASK_RUNNING of RUNS fresh executors and as many reference
    clients, one at a time, alternating, so that both see the same machine."""
    exe, ref = [], []
    for i in range(WARMUP + RUNS):
        r, e = launch_once(rig, i, reference=True), launch_once(rig, i, reference=False)
        if i >= WARMUP:
            ref.append(r)
            exe.append(e)
    return exe, ref


def first_stamp_after(path, t):
    for line in Path(path).read_text().split():
        if int(line) / 1e9 > t:
            return int(line) / 1e9
    raise RuntimeError(f"no check answered after {t} in {path}")


def healthy_times(rig, task_id, stamps):
    """The parts of first passing check -> TASK_RUNNING healthy=true outside
    Consul's handlers: (total, check->register, register->verify, verify->UPDATE)."""
    launch = rig.first_event("LAUNCH", task_id)
    check = first_stamp_after(stamps, launch.t)
    calls = rig.consul.calls
    reg = next(c for c in calls if c.kind == "register" and (c.service_id or "").startswith(f"{task_id}_"))
    ver = next(c for c in calls if c.kind == "service" and c.service_id == reg.service_id and c.t_start >= reg.t_end)
    healthy = rig.first_update(task_id, "TASK_RUNNING", healthy=True)
    parts = (reg.t_start - check, ver.t_start - reg.t_end, healthy.t - ver.t_end)
    return (sum(parts), *parts)


def healthy_once(rig, i, ref_port=None):
    """One run; ref_port: a reference client checking the server on that port."""
    server = str(bl.helper("bench-http-server"))
    if ref_port is not None:
        eid, tid, stamps = f"RH{i}", f"ref-healthy-{i}", rig.workdir / "ref-stamps"
        task = bl.agent_mod.make_task(tid, cmd=bl.sleep_binary(), shell=False, argv=["sleep", "600"])
        proc = rig.launch(eid, task, write_requests(rig, eid, tid, check_port=ref_port),
                          binary=bl.helper("bench-ref-executor"))
    else:
        eid, tid, stamps = f"H{i}", f"healthy-{i}", rig.workdir / f"stamps-{i}"
        port = bl.harness.free_port()
        hc = bl.agent_mod.http_check(port, delay=CHECK_DELAY, interval=CHECK_INTERVAL, timeout=1, grace=10)
        task = bl.agent_mod.make_task(tid, cmd=server, shell=False,
                                      argv=[server, "--port", str(port), "--stamps", str(stamps)],
                                      health_check=hc, ports=[port], labels={"consul": SERVICE_NAME})
        proc = rig.launch(eid, task, [f"--consul={rig.consul.address}"])
    rig.wait_running(tid, healthy=True)
    rig.shutdown(eid, proc)
    return healthy_times(rig, tid, stamps)


def run_healthy(rig):
    """First passing check -> healthy of RUNS fresh executors and as many
    reference clients, alternating."""
    exe, ref = [], []
    ref_port = rig.start_http_server(rig.workdir / "ref-stamps")
    for i in range(WARMUP + RUNS):
        r, e = healthy_once(rig, i, ref_port), healthy_once(rig, i)
        if i >= WARMUP:
            ref.append(r)
            exe.append(e)
    return exe, ref


# --------------------------------------------------------------------------
# report


def stats(samples):
    return bl.median(samples), bl.percentile(samples, 95)


def side_by_side(title, rows):
    """rows: (what, executor samples, floor samples)."""
    t = bl.Table([title, "executor median", "p95", "floor median", "p95"])
    for what, exe, ref in rows:
        e, r = stats(exe), stats(ref)
        t.add(what, bl.fmt_ms(e[0]), bl.fmt_ms(e[1]), bl.fmt_ms(r[0]), bl.fmt_ms(r[1]))
    t.print()


def result(rows):
    """rows: (what, samples, target or None). Returns the last row's median."""
    t = bl.Table(["", "median", "p95", "target", "result"])
    for what, samples, target in rows:
        med, p95 = stats(samples)
        if target is None:
            t.add(what, bl.fmt_ms(med), bl.fmt_ms(p95))
        else:
            t.add(what, bl.fmt_ms(med), bl.fmt_ms(p95), f"<= {target * 1000:g} ms", bl.verdict(med, target))
    t.print()
    return med


def report_launch(exe, ref, spawn, spawn_linked):
    bl.heading(f"bench_launch_latency: LAUNCH -> TASK_RUNNING, task `sleep`, no health check, Consul off "
               f"({RUNS} launches, each a fresh executor)")
    side_by_side("fake agent's timeline", [
        ("LAUNCH -> TASK_STARTING", [e[1] for e in exe], [r[1] for r in ref]),
        ("TASK_STARTING -> TASK_RUNNING", [e[0] - e[1] for e in exe], [r[0] - r[1] for r in ref]),
        ("LAUNCH -> TASK_RUNNING", [e[0] for e in exe], [r[0] for r in ref]),
    ])
    fork_exec = bl.median(spawn)
    added = [e[0] - r[0] - fork_exec for e, r in zip(exe, ref)]
    med = result([
        (f"fork+exec of sleep (bench-spawn, n={len(spawn)})", spawn, None),
        ("  the same from a process with the executor's libraries", spawn_linked, None),
        ("executor-added beyond fork/exec", added, LAUNCH_TARGET),
    ])
    bl.note("""
floor: bench-ref-executor, the same exchanges with nothing in between, run
alternately with the executor. executor-added = each executor LAUNCH ->
TASK_RUNNING minus the floor run just before it and the median fork+exec (of the
small bench-spawn: forking the executor's larger address space is the executor's).""")
    return med


def report_healthy(exe, ref):
    bl.heading(f"bench_launch_latency: first passing check -> TASK_RUNNING healthy=true, HTTP check, "
               f"Consul (double) ({RUNS} launches)")
    side_by_side("outside Consul's handlers", [
        ("check answered -> register arrived", [e[1] for e in exe], [r[1] for r in ref]),
        ("register answered -> verify arrived", [e[2] for e in exe], [r[2] for r in ref]),
        ("verify answered -> UPDATE arrived", [e[3] for e in exe], [r[3] for r in ref]),
        ("check answered -> healthy UPDATE arrived", [e[0] for e in exe], [r[0] for r in ref]),
    ])
    added = [e[0] - r[0] for e, r in zip(exe, ref)]
    med = result([("executor-added beyond the round trips", added, HEALTHY_TARGET)])
    bl.note("""
Consul's time inside its handlers is taken out of both; executor-added = each
executor sample minus the floor run just before it.""")
    return med


def main():
    global RUNS, WARMUP, SPAWN_RUNS, SPAWN_WARMUP
    args = bl.parse_args(__doc__.splitlines()[0])
    bl.init(args.build_dir)
    if args.quick:
        RUNS, WARMUP, SPAWN_RUNS, SPAWN_WARMUP = 5, 1, 20, 2
    t0 = time.monotonic()
    spawn, spawn_linked = spawn_baseline("bench-spawn"), spawn_baseline("bench-spawn-linked")
    with bl.Rig() as rig:
        exe, ref = run_launches(rig)
    launch_added = report_launch(exe, ref, spawn, spawn_linked)
    with bl.Rig(consul=True) as rig:
        exe, ref = run_healthy(rig)
    healthy_added = report_healthy(exe, ref)

    bl.heading("bench_launch_latency: LAUNCH -> healthy overhead (DESIGN.md scale target)")
    t = bl.Table(["", "median", "target", "result"])
    total = launch_added + healthy_added
    t.add("executor-added, both steps above", bl.fmt_ms(total), f"<= {LAUNCH_HEALTHY_TARGET * 1000:g} ms",
          bl.verdict(total, LAUNCH_HEALTHY_TARGET))
    t.print()
    bl.note(f"the check's own delay and the Consul round trips are not the executor's. {bl.elapsed(t0)}")


if __name__ == "__main__":
    main()
