#!/usr/bin/python3
"""bench_scheduler: pacer-scheduler at 10,000 apps / 100,000 instances.

The master is bench-master (tools/bench/bench-master.c), a C double of the
Mesos v1 scheduler API fast enough not to be what is measured: the Python fake
master of the integration tests tops out near 16,000 updates/s. It offers one
large offer per agent (100 agents) in rounds, answers every launch at once
with TASK_RUNNING and a status record saying healthy and registered, answers
reconciliation from the tasks it launched, and counts the calls.

The state is built the way an operator builds it: 10,000 apps created with
PUT /v2/apps at 0 instances, then scaled to 10 each, the scheduler placing the
100,000 instances on the offers. Batches of 10 apps (a batch is one
deployment). Offers are held back while
the scale requests go in, so that each round places as many instances as the
scheduler takes in one (5,000). Then:

1. GET /v2/apps with 10,000 apps, and GET /metrics (also at 0 instances: its
   cost must not grow with them), timed by bench-http-get on one kept-alive
   connection from the first byte sent to the last byte of the body.
2. Status updates per second: bench-master pushes 100,000 TASK_RUNNING
   updates (health flipped, each with a uuid and a status record) as fast as
   the scheduler reads them, and stamps the last ACKNOWLEDGE. The scheduler
   acknowledges an update only after the store committed it, so N / (last
   acknowledgement - first byte queued) is the sustained throughput. Past
   BURST_DEADLINE the figure is what was acknowledged by then. Before it, a
   paced run: at most 1,000 updates unacknowledged at a time, as the agents'
   status-update managers hold a task's next update until the last one is
   acknowledged. And the 100,000 again without uuids (such updates are never
   acknowledged; one with a uuid behind them marks the end): the scheduler's
   processing and store commits alone. The scheduler's own CPU time
   (schedstat) is shown too: on a 2-CPU machine the master double runs on
   the other one.
3. Memory: VmRSS and PSS empty, at 10,000 apps without instances and with
   100,000 instances (built, after the burst, after the restart). The target
   is on (RSS built - RSS empty) / 100,000, so the apps are counted in; the
   split is context. The connections the scheduler holds open to the master
   are printed next to each figure: each costs libcurl buffers.
4. Threads (/proc/<pid>/status) idle, while building, during the burst and
   the recovery (largest count sampled every 20 ms).
5. Restart: SIGTERM (SIGKILL after a stalled burst), then a new scheduler on
   the same store; recovered = store loaded, subscribed, and every
   reconciliation answer processed. The master answers the explicit
   reconciliation task by task and the implicit one with every task (200,000
   updates, as a real master would send), then pushes one more update with a
   uuid; the stream is processed in order, so its acknowledgement proves
   every answer before it was handled. Measured from the exec of the new
   scheduler; the time of the log line "recovered N apps" splits out the
   store load.

Targets (issue 6, DESIGN.md "Scale targets"): >= 20,000 updates/s, GET
/v2/apps < 100 ms, recovery < 2 s, <= 1 KiB per instance beyond the base,
thread count constant.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import benchlib as bl

APPS = 10000
INSTANCES_PER_APP = 10
BATCH = 10
UPDATES = 100000
WINDOWED_UPDATES = 20000
BURST_WINDOW = 1000
GET_SAMPLES = 50
GET_WARMUP = 2
AGENTS = 100
QUICK_APPS = 500
QUICK_UPDATES = 5000
QUICK_GET_SAMPLES = 5

UPDATES_TARGET = 20000.0
LIST_TARGET = 0.100
RECOVERY_TARGET = 2.0
PER_INSTANCE_TARGET = 1024

BUILD_TIMEOUT = 240.0
PREPARE_TIMEOUT = 60.0
# The burst's deadline: past it the figure is what was acknowledged by then.
BURST_DEADLINE = 20.0
RECOVERY_TIMEOUT = 60.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
SETTLE = 0.5
POLL = 0.05
THREAD_SAMPLE = 0.02

FRAMEWORK = "pacer-bench"
RECOVERED_LINE = re.compile(r"^(\S+)Z .* recovered (\d+) apps, (\d+) instances")
PORT_LINE = re.compile(r"REST API on http://\S+ \(port (\d+)\)")


def binaries(build):
    return {"scheduler": build / "scheduler" / "pacer-scheduler",
            "master": build / "tools" / "bench" / "bench-master",
            "get": build / "tools" / "bench" / "bench-http-get"}


class Feeder(bl.LineDriven):
    """bench-master and the lines it prints."""

    def __init__(self, binary, agents):
        super().__init__([binary, "--agents", str(agents)], "bench-master")
        self.port = int(self.wait("listening").split()[1])

    def stats(self):
        return self.ask("stats")


def stamp(line, key):
    return int(bl.words(line)[key]) / 1e9


class Scheduler:
    """A pacer-scheduler process with its log in a file."""

    def __init__(self, binary, master_port, data_dir, log_path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PACER_", "CONSUL_"))}
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.log_start = log_path.stat().st_size
        self.t_wall = time.time()
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen([str(binary), f"--master=127.0.0.1:{master_port}", "--http=127.0.0.1:0",
                                      f"--data-dir={data_dir}", f"--framework-name={FRAMEWORK}"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        self.pid = self.proc.pid
        self.port = int(self.wait_log(PORT_LINE).group(1))
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                m = pattern.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                raise RuntimeError(f"pacer-scheduler exited ({self.proc.returncode}):\n{self.log_text()[-2000:]}")
            time.sleep(POLL)
        raise TimeoutError(f"pacer-scheduler logged no {pattern.pattern!r}")

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closes idle kept-alive connections; a request on one is not lost, just refused
            if self.proc.poll() is not None:
                raise RuntimeError(f"pacer-scheduler died ({self.proc.returncode})") from None
            self.conn.close()
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        out = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {out[:300]!r}")
        return out

    def metric(self, name):
        for line in self.request("GET", "/metrics").decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def memory(self):
        rollup = bl.smaps_rollup(self.pid)
        mem = {"rss": int(bl.status_field(self.pid, "VmRSS").split()[0]) * bl.KIB, "pss": rollup["Pss"],
               "threads": bl.thread_count(self.pid)}
        # after the sample: the scrape allocates
        mem["heap_used"] = self.metric("pacer_heap_used_bytes")
        mem["heap_free"] = self.metric("pacer_heap_free_bytes")
        return mem

    def kill(self):
        self.conn.close()
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        """SIGTERM; returns how long the exit took (it commits what is pending)."""
        if self.proc.poll() is not None:
            return 0.0
        self.conn.close()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("pacer-scheduler did not exit on SIGTERM")
        finally:
            self.log.close()
        if self.proc.returncode != 0:
            print(f"   WARNING: pacer-scheduler exited with status {self.proc.returncode}:\n"
                  f"{self.log_text()[-2000:]}")
        return time.monotonic() - t0


class ThreadSampler:
    """The largest thread count of a process, sampled until stopped."""

    def __init__(self, pid):
        self.pid, self.max, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.max = max(self.max, bl.thread_count(self.pid))
            except (OSError, KeyError):
                pass
            self._stop.wait(THREAD_SAMPLE)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.max


def sample(sched, feeder):
    """Memory and threads of the scheduler, and the connections it holds open to the master."""
    return dict(sched.memory(), conns=feeder.stats()["conns"])


def app_def(i, instances):
    return {"id": f"/bench/app-{i:05d}", "cmd": "sleep 3600", "cpus": 0.01, "mem": 8,
            "instances": instances, "labels": {"team": f"t{i % 20}"},
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0,
                              "intervalSeconds": 10,
                              "timeoutSeconds": 5}]}


def put_apps(sched, n_apps, instances):
    for first in range(0, n_apps, BATCH):
        batch = [app_def(i, instances) for i in range(first, min(first + BATCH, n_apps))]
        sched.request("PUT", "/v2/apps", batch)


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL)


def time_gets(get_binary, port, path, count):
    out = subprocess.run([str(get_binary), f"--address=127.0.0.1:{port}", f"--path={path}",
                          f"--count={count}", f"--warmup={GET_WARMUP}"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    if any(r[1] != "200" for r in rows):
        raise RuntimeError(f"GET {path} did not answer 200: {rows[0]}")
    return [int(r[0]) / 1e9 for r in rows], int(rows[-1][2])


def log_time(line_match, sched):
    """Monotonic time of a log line (the log stamps UTC wall time to the millisecond)."""
    wall = datetime.strptime(line_match.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return sched.t_start + (wall.timestamp() - sched.t_wall)


def fmt_rate(r):
    return f"{r:,.0f}/s"


def fmt_kib(b):
    return f"{b / bl.KIB:,.0f} KiB"


def main():
    args = bl.parse_args(__doc__.splitlines()[0])
    build = args.build_dir.resolve()
    bins = binaries(build)
    missing = [str(p) for p in bins.values() if not p.exists()]
    if missing:
        raise SystemExit(f"bench: missing {', '.join(missing)}: build {build} first (make build)")
    n_apps = QUICK_APPS if bl.quick else APPS
    n_instances = n_apps * INSTANCES_PER_APP
    n_updates = QUICK_UPDATES if bl.quick else UPDATES
    n_gets = QUICK_GET_SAMPLES if bl.quick else GET_SAMPLES
    n_windowed = QUICK_UPDATES if bl.quick else WINDOWED_UPDATES

    bl.heading(f"bench_scheduler: {n_apps:,} apps x {INSTANCES_PER_APP} = {n_instances:,} instances, "
               f"{AGENTS} agents (bench-master)")
    t_bench = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pacer-bench-sched-") as tmp:
        tmp = Path(tmp)
        feeder = Feeder(bins["master"], AGENTS)
        sched = None
        try:
            sched = Scheduler(bins["scheduler"], feeder.port, tmp / "data", tmp / "scheduler.log")
            feeder.wait("subscribed")
            wait_for("offers suppressed", lambda: feeder.stats()["suppresses"] >= 1, START_TIMEOUT)
            time.sleep(SETTLE)
            mem_empty = sample(sched, feeder)
            metrics_empty, _ = time_gets(bins["get"], sched.port, "/metrics", n_gets)

            t0 = time.monotonic()
            put_apps(sched, n_apps, 0)
            wait_for("the app deployments", lambda: sched.metric("pacer_deployments") == 0, BUILD_TIMEOUT)
            t_apps = time.monotonic() - t0
            print(f"   {n_apps:,} apps created in {t_apps:.1f} s {bl.elapsed(t_bench)}")
            time.sleep(SETTLE)
            mem_apps = sample(sched, feeder)

            sampler = ThreadSampler(sched.pid)
            acks0 = feeder.stats()["acks"]
            t0 = time.monotonic()
            # offers wait until every app wants its instances: rounds then place launches_per_round
            # (5,000) each instead of the few instances of the apps scaled since the last round
            feeder.send("hold")
            put_apps(sched, n_apps, INSTANCES_PER_APP)
            feeder.send("release")
            wait_for("every instance running and acknowledged",
                     lambda: feeder.stats()["acks"] - acks0 >= n_instances, BUILD_TIMEOUT)
            wait_for("the scale deployments", lambda: sched.metric("pacer_deployments") == 0, BUILD_TIMEOUT)
            t_build = time.monotonic() - t0
            threads_build = sampler.stop()
            build_stats = feeder.stats()
            print(f"   built in {t_build:.1f} s: {build_stats['rounds']} offer rounds, "
                  f"{build_stats['accepts']} ACCEPTs, {build_stats['launches']:,} launches "
                  f"{bl.elapsed(t_bench)}")

            time.sleep(SETTLE)
            mem_built = sample(sched, feeder)
            apps_lat, apps_bytes = time_gets(bins["get"], sched.port, "/v2/apps", n_gets)
            metrics_full, _ = time_gets(bins["get"], sched.port, "/metrics", n_gets)
            print(f"   GET timings done {bl.elapsed(t_bench)}")

            # paced: at most BURST_WINDOW unacknowledged, as agents hold back a task's next update
            # until the last one is acknowledged
            feeder.send(f"prepare {n_windowed}")
            feeder.wait("prepared", PREPARE_TIMEOUT)
            cpu0 = bl.cpu_ns(sched.pid)
            feeder.send(f"send {BURST_WINDOW}")
            done = feeder.wait("updates-acked", BURST_DEADLINE)
            windowed_s = stamp(done, "t1") - stamp(done, "t0")
            cpu_windowed = (bl.cpu_ns(sched.pid) - cpu0) / 1e9

            # the same updates without uuids: never acknowledged, so this is the scheduler's own
            # processing and store commits without the ACKNOWLEDGE calls
            feeder.send(f"prepare {n_updates} noack")
            feeder.wait("prepared", PREPARE_TIMEOUT)
            cpu0 = bl.cpu_ns(sched.pid)
            feeder.send("send")
            done = feeder.wait("updates-acked", BURST_DEADLINE)
            noack_s = stamp(done, "t1") - stamp(done, "t0")
            cpu_noack = (bl.cpu_ns(sched.pid) - cpu0) / 1e9

            feeder.send(f"prepare {n_updates}")
            feeder.wait("prepared", PREPARE_TIMEOUT)
            sampler = ThreadSampler(sched.pid)
            cpu0 = bl.cpu_ns(sched.pid)
            acks0 = feeder.stats()["acks"]
            feeder.send("send")
            try:
                done = feeder.wait("updates-acked", BURST_DEADLINE)
                burst_acked, burst_s = n_updates, stamp(done, "t1") - stamp(done, "t0")
            except TimeoutError:
                burst_acked, burst_s = feeder.stats()["acks"] - acks0, None
            cpu_burst = (bl.cpu_ns(sched.pid) - cpu0) / 1e9
            threads_burst = sampler.stop()
            burst_stats = feeder.stats()
            print(f"   update burst {'done' if burst_s else 'STALLED'} {bl.elapsed(t_bench)}")
            if burst_s:
                time.sleep(SETTLE)
                mem_after_burst = sample(sched, feeder)
                stop_s = sched.stop()
            else:
                # it would spend a minute cancelling its ack calls: every update it handled is committed
                mem_after_burst = sample(sched, feeder)
                sched.kill()
                stop_s = None
            feeder.wait("stream-closed")
            sched = Scheduler(bins["scheduler"], feeder.port, tmp / "data", tmp / "scheduler.log")
            sampler = ThreadSampler(sched.pid)
            sub = feeder.wait("subscribed", RECOVERY_TIMEOUT)
            rec = feeder.wait("reconciled", RECOVERY_TIMEOUT)
            done = feeder.wait("recovered", RECOVERY_TIMEOUT)
            threads_recovery = sampler.stop()
            loaded = sched.wait_log(RECOVERED_LINE)
            t_loaded = log_time(loaded, sched) - sched.t_start
            t_sub = stamp(sub, "t") - sched.t_start
            t_rec = stamp(rec, "t") - sched.t_start
            t_recovered = stamp(done, "t") - sched.t_start
            n_answers = int(bl.words(rec)["explicit"]) + int(bl.words(rec)["implicit"])
            time.sleep(SETTLE)
            mem_recovered = sample(sched, feeder)
        finally:
            if sched:
                sched.stop()
            feeder.stop()
        if int(loaded.group(3)) != n_instances:
            raise RuntimeError(f"the scheduler recovered {loaded.group(3)} instances, not {n_instances}")

    rss_per_instance = (mem_built["rss"] - mem_empty["rss"]) / n_instances
    t = bl.Table(["measure", "value", "target", "result"])
    t.add("GET /v2/apps, median", bl.fmt_ms(bl.median(apps_lat)), f"< {LIST_TARGET * 1000:.0f} ms",
          "PASS" if bl.median(apps_lat) < LIST_TARGET else "MISS")
    t.add("GET /v2/apps, p95", f"{bl.fmt_ms(bl.percentile(apps_lat, 95))} ({apps_bytes / bl.MIB:.1f} MiB)")
    t.add(f"GET /metrics, median, 0 / {n_instances:,} inst.",
          f"{bl.fmt_ms(bl.median(metrics_empty))} / {bl.fmt_ms(bl.median(metrics_full))}")
    if burst_s:
        rate = n_updates / burst_s
        t.add(f"status updates, {n_updates:,} to last ack", fmt_rate(rate), f">= {UPDATES_TARGET:,.0f}/s",
              "PASS" if rate >= UPDATES_TARGET else "MISS")
    else:
        rate = burst_acked / BURST_DEADLINE
        t.add(f"status updates, {n_updates:,}: STALLED", f"{burst_acked:,} acked in {BURST_DEADLINE:.0f} s",
              f">= {UPDATES_TARGET:,.0f}/s", "MISS")
    t.add("  scheduler CPU per update", f"{cpu_burst / max(burst_acked, 1) * 1e6:.1f} us")
    t.add("  master connections open at most", f"{burst_stats['conns_max']:,}")
    t.add(f"  paced: {n_windowed:,}, <= {BURST_WINDOW:,} unacknowledged", fmt_rate(n_windowed / windowed_s))
    t.add("    scheduler CPU per update", f"{cpu_windowed / n_windowed * 1e6:.1f} us")
    t.add(f"  {n_updates:,} without uuid (no acks)", fmt_rate(n_updates / noack_s))
    t.add("    scheduler CPU per update", f"{cpu_noack / n_updates * 1e6:.1f} us")
    t.add("restart to recovered", f"{t_recovered:.3f} s", f"< {RECOVERY_TARGET:.0f} s",
          "PASS" if t_recovered < RECOVERY_TARGET else "MISS")
    t.add("  store loaded (log line)", f"{t_loaded:.3f} s")
    t.add("  SUBSCRIBE at the master", f"{t_sub:.3f} s")
    t.add(f"  all {n_answers:,} answers queued", f"{t_rec:.3f} s")
    t.add("  SIGTERM to exit before it", f"{stop_s:.3f} s" if stop_s is not None else "killed (stalled)")
    t.add("RSS per instance beyond empty", f"{rss_per_instance:,.0f} B", f"<= {PER_INSTANCE_TARGET} B",
          "PASS" if rss_per_instance <= PER_INSTANCE_TARGET else "MISS")
    t.add("  of which apps (per instance)",
          f"{(mem_apps['rss'] - mem_empty['rss']) / n_instances:,.0f} B "
          f"({(mem_apps['rss'] - mem_empty['rss']) / n_apps:,.0f} B per app)")
    t.add("  instances alone", f"{(mem_built['rss'] - mem_apps['rss']) / n_instances:,.0f} B")
    t.add("  after the burst", f"{(mem_after_burst['rss'] - mem_empty['rss']) / n_instances:,.0f} B")
    t.add("  after restart (recovered)", f"{(mem_recovered['rss'] - mem_empty['rss']) / n_instances:,.0f} B")
    threads = [mem_empty["threads"], threads_build, mem_built["threads"], threads_burst, threads_recovery]
    t.add("threads: idle / build / 100k idle / burst / recovery", " / ".join(map(str, threads)),
          "constant", "PASS" if len(set(threads)) == 1 else "MISS")
    t.print()
    print()
    m = bl.Table(["memory", "VmRSS", "PSS", "heap used", "heap free", "connections to the master"])
    for name, mem in (("empty", mem_empty), (f"{n_apps:,} apps, 0 instances", mem_apps),
                      (f"{n_instances:,} instances, built", mem_built),
                      ("  after the update burst", mem_after_burst), ("  after restart", mem_recovered)):
        m.add(name, bl.fmt_mib(mem["rss"]), bl.fmt_mib(mem["pss"]), bl.fmt_mib(mem["heap_used"]),
              bl.fmt_mib(mem["heap_free"]), f"{mem['conns']:,}")
    m.print()
    bl.note(f"build: {n_apps:,} apps created in {t_apps:.1f} s, scaled to {n_instances:,} running in "
            f"{t_build:.1f} s ({build_stats['rounds']} offer rounds, {build_stats['conns_max']:,} master "
            f"connections at most); burst: {cpu_burst:.2f} s scheduler CPU {bl.elapsed(t_bench)}")


if __name__ == "__main__":
    main()
