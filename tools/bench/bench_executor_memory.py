#!/usr/bin/python3
"""bench_executor_memory: what one pacer-executor costs in memory and threads.

Ten executors run at once under the fake agent, each supervising a task, in two
configurations: a `sleep` task with Consul off and no health check; and a task
serving HTTP with an HTTP health check, registered in the Consul double. For
each executor process the kernel's accounting is read from
/proc/<pid>/smaps_rollup (Pss, Private_Dirty) and /proc/<pid>/status
(Threads). The task is never counted. The guard (the small process that kills
the task if the executor dies, executor/guard.h) is its own process: it is
reported separately and added in, since every executor brings one; when it
shares the executor's address space (x86-64) it owns no page and counts 0. The
spawner of a hardened executor (executor/spawner.h) always shares it: checked,
and counted 0.

Targets (issue 3, DESIGN.md "Scale targets"): PSS <= 2 MiB, private dirty
<= 1 MiB, 1 thread, as the mean of 10 running executors.
"""

import time

import benchlib as bl

EXECUTORS = 10
PSS_TARGET = 2 * bl.MIB
DIRTY_TARGET = 1 * bl.MIB
THREADS_TARGET = 1
# With checks: probes this often, and this many of them before measuring, so
# every allocation a probe and a TTL push make has been made.
CHECK_INTERVAL = 0.1
CHECKS_BEFORE_SAMPLE = 10
# Without checks: a moment for the updates' acknowledgements to settle.
SETTLE = 0.5


def start_all(rig, with_checks):
    """Launches EXECUTORS executors and waits until each one's task runs
    (and is healthy, with checks). Returns their ManagedProcesses."""
    launched = []
    for i in range(EXECUTORS):
        eid, tid = f"M{i}", f"mem-{i}"
        argv = []
        if with_checks:
            port = bl.harness.free_port()
            server = str(bl.helper("bench-http-server"))
            hc = bl.agent_mod.http_check(port, delay=0, interval=CHECK_INTERVAL, timeout=1, grace=10)
            task = bl.agent_mod.make_task(tid, cmd=server, shell=False, argv=[server, "--port", str(port)],
                                          health_check=hc, ports=[port], labels={"consul": "bench-memory"})
            argv = [f"--consul={rig.consul.address}"]
        else:
            task = bl.agent_mod.make_task(tid, cmd=bl.sleep_binary(), shell=False, argv=["sleep", "600"])
        launched.append((tid, rig.launch(eid, task, argv)))
    out = []
    for tid, proc in launched:
        rig.wait_running(tid, healthy=True if with_checks else None)
        out.append(proc)
    return out


def sample(procs):
    """Per executor: its own figures and its guard's."""
    rows = []
    for p in procs:
        guard = bl.guard_of(p.pid)
        mine = bl.smaps_rollup(p.pid)
        # A guard sharing the executor's address space reports the executor's own
        # pages; counting them again would double the figure. It owns none.
        theirs = {"Pss": 0, "Private_Dirty": 0} if bl.shares_memory(p.pid, guard) else bl.smaps_rollup(guard)
        # so does the spawner of a hardened executor (executor/spawner.h), always
        spawner = bl.helper_of(p.pid, "pacer-spawner")
        if not bl.shares_memory(p.pid, spawner):
            raise RuntimeError(f"executor {p.pid}: its spawner {spawner} does not share its memory")
        rows.append({
            "pss": mine["Pss"], "dirty": mine["Private_Dirty"], "rss": mine["Rss"],
            "threads": bl.thread_count(p.pid),
            "guard_pss": theirs["Pss"], "guard_dirty": theirs["Private_Dirty"],
        })
    return rows


def libcurl_floor():
    """PSS and private dirty of EXECUTORS bench-libcurl-floor processes at once:
    what loading and initialising libcurl (and the ~40 libraries Debian builds
    it against) costs any process, before it does anything."""
    with bl.Rig() as rig:
        procs = [rig.procs.start([str(bl.helper("bench-libcurl-floor"))], name=f"floor-{i}")
                 for i in range(EXECUTORS)]
        for p in procs:
            p.wait_output("ready")
        rows = [bl.smaps_rollup(p.pid) for p in procs]
        for p in procs:
            p.stop()
    return (sum(r["Pss"] for r in rows) / len(rows), sum(r["Private_Dirty"] for r in rows) / len(rows))


def report(title, rows, floor):
    def mean(key):
        return sum(r[key] for r in rows) / len(rows)

    def peak(key):
        return max(r[key] for r in rows)

    bl.heading(title)
    t = bl.Table(["per executor (n=%d)" % len(rows), "mean", "max", "target", "result"])
    pss, dirty = mean("pss"), mean("dirty")
    gpss, gdirty = mean("guard_pss"), mean("guard_dirty")
    both_pss = [r["pss"] + r["guard_pss"] for r in rows]
    both_dirty = [r["dirty"] + r["guard_dirty"] for r in rows]
    t.add("executor PSS", bl.fmt_mib(pss), bl.fmt_mib(peak("pss")), "<= 2 MiB", bl.verdict(pss, PSS_TARGET))
    t.add("executor private dirty", bl.fmt_mib(dirty), bl.fmt_mib(peak("dirty")), "<= 1 MiB",
          bl.verdict(dirty, DIRTY_TARGET))
    t.add("executor threads", f"{mean('threads'):g}", peak("threads"), "1",
          bl.verdict(peak("threads"), THREADS_TARGET))
    t.add("guard PSS", bl.fmt_mib(gpss), bl.fmt_mib(peak("guard_pss")))
    t.add("guard private dirty", bl.fmt_mib(gdirty), bl.fmt_mib(peak("guard_dirty")))
    t.add("executor+guard PSS", bl.fmt_mib(sum(both_pss) / len(rows)), bl.fmt_mib(max(both_pss)), "<= 2 MiB",
          bl.verdict(sum(both_pss) / len(rows), PSS_TARGET))
    t.add("executor+guard private dirty", bl.fmt_mib(sum(both_dirty) / len(rows)), bl.fmt_mib(max(both_dirty)),
          "<= 1 MiB", bl.verdict(sum(both_dirty) / len(rows), DIRTY_TARGET))
    t.add("executor RSS (context)", bl.fmt_mib(mean("rss")), bl.fmt_mib(peak("rss")))
    t.add("floor: libcurl initialised, PSS", bl.fmt_mib(floor[0]))
    t.add("floor: libcurl initialised, private dirty", bl.fmt_mib(floor[1]))
    t.add("executor+guard PSS beyond the floor", bl.fmt_mib(sum(both_pss) / len(rows) - floor[0]))
    t.add("executor+guard dirty beyond the floor", bl.fmt_mib(sum(both_dirty) / len(rows) - floor[1]))
    t.print()


def measure(with_checks):
    with bl.Rig(consul=with_checks) as rig:
        procs = start_all(rig, with_checks)
        time.sleep(CHECK_INTERVAL * CHECKS_BEFORE_SAMPLE if with_checks else SETTLE)
        return sample(procs)


def main():
    global EXECUTORS
    args = bl.parse_args(__doc__.splitlines()[0])
    bl.init(args.build_dir)
    if args.quick:
        EXECUTORS = 3
    t0 = time.monotonic()
    floor = libcurl_floor()
    plain = measure(with_checks=False)
    report(f"bench_executor_memory: {EXECUTORS} executors at once, task `sleep`, Consul off, no health check",
           plain, floor)
    checked = measure(with_checks=True)
    report(f"bench_executor_memory: {EXECUTORS} executors at once, HTTP check every "
           f"{CHECK_INTERVAL * 1000:g} ms, registered in Consul (double)", checked, floor)
    bl.note(f"""
PSS divides each shared page among the processes mapping it: the executors share
their libraries. The guard is started sharing its executor's address space
(clone with CLONE_VM, x86-64), so it owns no page and counts 0; where it is
forked instead it shares the executor's pages copy-on-write and its own share
is added. The executor+guard rows are what one executor costs. The floor is
bench-libcurl-floor, a program that only initialises libcurl: relocating its
dependency chain (OpenSSL, GnuTLS, Kerberos, LDAP, SSH...) dirties pages in
every process that loads it. The task is not counted. {bl.elapsed(t0)}
""")


if __name__ == "__main__":
    main()
