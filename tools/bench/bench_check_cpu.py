#!/usr/bin/python3
"""bench_check_cpu: what pacer-executor's HTTP health checks cost in CPU.

1. CPU per 1,000 HTTP checks: pacer-executor probing its task (bench-http-server)
   with libcurl on its event loop, at the shortest interval check.c allows
   (10 ms), against forking `curl -s -o /dev/null -w %{http_code} URL` per
   check, as Mesos's own executors do (bench-fork-curl: the curl processes'
   CPU from getrusage(RUSAGE_CHILDREN), plus the forking parent's). The
   executor's CPU is read from /proc/<pid>/task/*/schedstat (nanoseconds)
   before and after; the checks are counted by the server, which writes one
   line per answer. With Consul on, every passing probe also refreshes the TTL
   check in Consul, so that is measured as a row of its own.
2. The executor's CPU at one check per second over WINDOW seconds, as a share
   of one CPU (DESIGN.md "Scale targets": 0.1% or less).
"""

import subprocess
import time
from pathlib import Path

import benchlib as bl

CHECKS = 1000
WARM_CHECKS = 20
FAST_INTERVAL = 0.01  # CHECK_INTERVAL_MIN_NS in executor/check.h
SLOW_INTERVAL = 1.0
WINDOW = 20.0
SETTLE = 1.5
POLL = 0.05
CURL_WARMUP = 20
IDLE_TARGET_PCT = 0.1
SERVICE_NAME = "bench-cpu"


def count_lines(path):
    try:
        return Path(path).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def launch_checked(rig, eid, interval, consul):
    """Launches an executor whose task is bench-http-server, probed every
    `interval` s; returns (task id, executor process, the server's stamps file)."""
    tid = f"cpu-{eid}"
    port = bl.harness.free_port()
    stamps = rig.workdir / f"stamps-{eid}"
    server = str(bl.helper("bench-http-server"))
    hc = bl.agent_mod.http_check(port, delay=0, interval=interval, timeout=1, grace=10)
    task = bl.agent_mod.make_task(tid, cmd=server, shell=False,
                                  argv=[server, "--port", str(port), "--stamps", str(stamps)],
                                  health_check=hc, ports=[port], labels={"consul": SERVICE_NAME})
    argv = [f"--consul={rig.consul.address}"] if consul else []
    proc = rig.launch(eid, task, argv)
    return tid, proc, stamps


def wait_count(path, n, timeout):
    deadline = time.monotonic() + timeout
    while count_lines(path) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: fewer than {n} checks after {timeout:g} s")
        time.sleep(POLL)


def executor_per_1000(consul):
    """(CPU seconds per CHECKS checks, wall seconds per check, most threads seen)."""
    with bl.Rig(consul=consul) as rig:
        tid, proc, stamps = launch_checked(rig, "fast", FAST_INTERVAL, consul)
        rig.wait_running(tid, healthy=True)
        wait_count(stamps, WARM_CHECKS, bl.STATE_TIMEOUT)
        n0, c0, w0 = count_lines(stamps), bl.cpu_ns(proc.pid), time.monotonic()
        threads = bl.thread_count(proc.pid)
        while count_lines(stamps) < n0 + CHECKS:
            threads = max(threads, bl.thread_count(proc.pid))
            time.sleep(POLL)
        n1, c1, w1 = count_lines(stamps), bl.cpu_ns(proc.pid), time.monotonic()
        rig.shutdown("fast", proc)
    n = n1 - n0
    return (c1 - c0) / 1e9 / n * CHECKS, (w1 - w0) / n, threads


def fork_curl_per_1000():
    """{"children": s, "parent": s, "wall": s per check} per CHECKS checks of bench-fork-curl."""
    with bl.Rig() as rig:
        url = f"http://127.0.0.1:{rig.start_http_server()}/"
        tool = str(bl.helper("bench-fork-curl"))
        subprocess.run([tool, str(CURL_WARMUP), url], check=True, capture_output=True)
        out = subprocess.run([tool, str(CHECKS), url], check=True, capture_output=True, text=True).stdout
    f = bl.words(out)
    if int(f["passed"]) != CHECKS:
        raise RuntimeError(f"bench-fork-curl: only {f['passed']} of {CHECKS} checks passed")
    us = {k: int(v) for k, v in f.items() if k.endswith("_us")}
    return {"children": (us["children_user_us"] + us["children_sys_us"]) / 1e6,
            "parent": (us["self_user_us"] + us["self_sys_us"]) / 1e6,
            "wall": int(f["wall_ns"]) / 1e9 / CHECKS}


def idle_share():
    """Executor CPU as % of one CPU at one check per second: {label: (pct, checks in window)}."""
    with bl.Rig(consul=True) as rig:
        runs = {label: launch_checked(rig, eid, SLOW_INTERVAL, consul)
                for label, eid, consul in (("Consul off", "slow-off", False), ("Consul on", "slow-on", True))}
        for tid, _, _ in runs.values():
            rig.wait_running(tid, healthy=True)
        time.sleep(SETTLE)
        before = {k: (bl.cpu_ns(p.pid), count_lines(s)) for k, (_, p, s) in runs.items()}
        w0 = time.monotonic()
        time.sleep(WINDOW)
        w1 = time.monotonic()
        out = {}
        for k, (_, p, s) in runs.items():
            c0, n0 = before[k]
            out[k] = ((bl.cpu_ns(p.pid) - c0) / 1e9 / (w1 - w0) * 100, count_lines(s) - n0)
    return out


def main():
    global CHECKS, WINDOW, CURL_WARMUP
    args = bl.parse_args(__doc__.splitlines()[0])
    bl.init(args.build_dir)
    if args.quick:
        CHECKS, WINDOW, CURL_WARMUP = 100, 3.0, 2
    t0 = time.monotonic()
    exe_off, wall_off, threads_off = executor_per_1000(consul=False)
    exe_on, wall_on, threads_on = executor_per_1000(consul=True)
    curl = fork_curl_per_1000()
    curl_total = curl["children"] + curl["parent"]

    bl.heading(f"bench_check_cpu: CPU per {CHECKS:,} HTTP checks (127.0.0.1, bench-http-server)")
    t = bl.Table(["", f"CPU / {CHECKS:,} checks", "wall / check", "threads"])
    t.add("pacer-executor, libcurl on its loop, Consul off", bl.fmt_ms(exe_off), bl.fmt_ms(wall_off), threads_off)
    t.add("pacer-executor, Consul on (TTL refreshed per check)", bl.fmt_ms(exe_on), bl.fmt_ms(wall_on), threads_on)
    t.add("fork+exec `curl` per check (as Mesos does)", bl.fmt_ms(curl_total), bl.fmt_ms(curl["wall"]))
    t.add("  of which the curl processes", bl.fmt_ms(curl["children"]))
    t.add("  of which the forking parent", bl.fmt_ms(curl["parent"]))
    t.print()
    bl.note(f"""
fork-curl / pacer-executor (Consul off): {curl_total / exe_off:.0f}x the CPU per check.
The executor probes every {FAST_INTERVAL * 1000:g} ms (its minimum interval), so its wall
time per check is interval-bound; bench-fork-curl runs its checks back to back.
The forking parent here is a small C program; a real executor forking curl is a
larger process and pays more per fork.""")

    share = idle_share()
    bl.heading(f"bench_check_cpu: pacer-executor CPU at one HTTP check per second ({WINDOW:g} s window)")
    t = bl.Table(["", "CPU", "checks", "target", "result"])
    for label, (pct, n) in share.items():
        t.add(label, f"{pct:.4f} %", n, f"<= {IDLE_TARGET_PCT:g} %", bl.verdict(pct, IDLE_TARGET_PCT))
    t.print()
    bl.note(f"share of one CPU over the window, from the executor's schedstat. {bl.elapsed(t0)}")


if __name__ == "__main__":
    main()
