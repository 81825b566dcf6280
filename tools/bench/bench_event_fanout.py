#!/usr/bin/python3
"""bench_event_fanout: pacer-scheduler's event stream, 100 subscribers at 1,000 events/s.

The master is bench-master (see bench_scheduler.py); the subscribers are
bench-sse, 100 connections to GET /v2/events on one epoll loop in C (a Python
reader would be what is measured). The scheduler runs 1,000 instances (10 apps
x 100). bench-master then pushes TASK_RUNNING updates that flip each task's
health, evenly at 500 per second: each is published as two events
(status_update_event and instance_health_changed_event), so every subscriber
is sent 1,000 events per second. After a one-second warm-up the counters are
reset and the window runs.

Lag = when bench-sse read the event minus the event's own "timestamp", which
the scheduler stamps when it publishes: the fan-out's lag, from the publish to
each subscriber's read. Both ends read this machine's CLOCK_REALTIME; the
timestamp has millisecond resolution (truncated), so each lag may read up to
1 ms high. Also reported: whether every subscriber got every event, the
scheduler's CPU during the window and its thread count.

Target (DESIGN.md "Scale targets"): event fan-out to 100 subscribers at 1,000
events/s with p99 lag < 50 ms; thread count constant.
"""

import tempfile
import time
from pathlib import Path

import benchlib as bl
from bench_scheduler import Feeder, Scheduler, put_apps, wait_for, BUILD_TIMEOUT

SUBSCRIBERS = 100
EVENTS_PER_S = 1000
EVENTS_PER_UPDATE = 2
APPS = 10
INSTANCES_PER_APP = 100
AGENTS = 10
WARMUP_S = 1.0
WINDOW_S = 10.0
QUICK_WINDOW_S = 2.0
LAG_TARGET_MS = 50.0
QUIET = 0.3  # no new event for this long after the last acknowledgement: the stream is drained
DRAIN_TIMEOUT = 30.0


class Subscribers(bl.LineDriven):
    """bench-sse and the lines it prints."""

    def __init__(self, binary, port, n):
        super().__init__([binary, f"--address=127.0.0.1:{port}", f"--connections={n}"], "bench-sse")

    def report(self):
        return self.ask("report")


def main():
    args = bl.parse_args(__doc__.splitlines()[0])
    build = args.build_dir.resolve()
    bins = {"scheduler": build / "scheduler" / "pacer-scheduler",
            "master": build / "tools" / "bench" / "bench-master",
            "sse": build / "tools" / "bench" / "bench-sse"}
    missing = [str(p) for p in bins.values() if not p.exists()]
    if missing:
        raise SystemExit(f"bench: missing {', '.join(missing)}: build {build} first (make build)")
    window = QUICK_WINDOW_S if bl.quick else WINDOW_S
    update_rate = EVENTS_PER_S // EVENTS_PER_UPDATE
    n_updates = int(update_rate * (WARMUP_S + window))
    n_instances = APPS * INSTANCES_PER_APP

    bl.heading(f"bench_event_fanout: {SUBSCRIBERS} subscribers of /v2/events, {EVENTS_PER_S:,} events/s "
               f"for {window:.0f} s, {n_instances:,} instances")
    t_bench = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pacer-bench-events-") as tmp:
        tmp = Path(tmp)
        feeder = Feeder(bins["master"], AGENTS)
        sched = subs = None
        try:
            sched = Scheduler(bins["scheduler"], feeder.port, tmp / "data", tmp / "scheduler.log")
            feeder.wait("subscribed")
            put_apps(sched, APPS, INSTANCES_PER_APP)
            wait_for("every instance running and acknowledged",
                     lambda: feeder.stats()["acks"] >= n_instances, BUILD_TIMEOUT)
            wait_for("the deployments", lambda: sched.metric("pacer_deployments") == 0, BUILD_TIMEOUT)
            threads_idle = bl.thread_count(sched.pid)

            subs = Subscribers(bins["sse"], sched.port, SUBSCRIBERS)
            subs.wait("connected")
            feeder.send(f"rate {update_rate}")
            feeder.send(f"prepare {n_updates}")
            feeder.wait("prepared")
            feeder.send("send")
            feeder.wait("sending")
            time.sleep(WARMUP_S)  # the warm-up's length: nothing to await
            subs.send("reset")
            cpu0, t0 = bl.cpu_ns(sched.pid), time.monotonic()
            threads_busy = bl.thread_count(sched.pid)
            feeder.wait("updates-acked", window + DRAIN_TIMEOUT)
            cpu_s, busy_s = (bl.cpu_ns(sched.pid) - cpu0) / 1e9, time.monotonic() - t0
            # drained when a report shows no new event for QUIET seconds
            last, deadline = subs.report(), time.monotonic() + DRAIN_TIMEOUT
            while time.monotonic() < deadline:
                time.sleep(QUIET)
                now = subs.report()
                if now["events"] == last["events"]:
                    break
                last = now
            r = last
        finally:
            if subs:
                subs.stop()
            if sched:
                sched.stop()
            feeder.stop()

    span = max((r["last_ns"] - r["first_ns"]) / 1e9, 1e-9)
    per_sub_rate = r["events"] / SUBSCRIBERS / span
    p99_ms = r["p99_us"] / 1000
    t = bl.Table(["measure", "value", "target", "result"])
    t.add("subscribers (GET /v2/events)", f"{r['conns']}", f"{SUBSCRIBERS}")
    t.add("events per second, each subscriber", f"{per_sub_rate:,.0f}/s", f"{EVENTS_PER_S:,}/s")
    t.add("events delivered in the window", f"{r['events']:,}")
    t.add("  per subscriber, fewest / most", f"{r['min_per_conn']:,} / {r['max_per_conn']:,}", "all equal",
          "PASS" if r["min_per_conn"] == r["max_per_conn"] else "MISS")
    t.add("lag, median", f"{r['p50_us'] / 1000:.1f} ms")
    t.add("lag, p99", f"{p99_ms:.1f} ms", f"< {LAG_TARGET_MS:.0f} ms", "PASS" if p99_ms < LAG_TARGET_MS else "MISS")
    t.add("lag, max", f"{r['max_us'] / 1000:.1f} ms")
    t.add("scheduler CPU in the window", f"{cpu_s / busy_s * 100:.1f}% of one core")
    t.add("scheduler threads, idle / streaming", f"{threads_idle} / {threads_busy}", "constant",
          "PASS" if threads_idle == threads_busy else "MISS")
    t.print()
    bl.note(f"""
lag: bench-sse's read time minus the event's "timestamp" (the scheduler's publish, UTC, millisecond
resolution: each lag may read up to 1 ms high). Each update flips a task's health, so it is two
events; bench-master pushes {update_rate} updates/s evenly. {bl.elapsed(t_bench)}""")


if __name__ == "__main__":
    main()
