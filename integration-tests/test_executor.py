"""pacer-executor against the fake agent: the Mesos executor API, task
supervision, reconnection and bad input (issue: executor core).

Every test starts the real binary with the real MESOS_* environment through
fakes.mesos_agent.FakeAgent and asserts what the agent saw (status updates,
calls, subscriptions) and what happened to the task's processes (by pid).
"""

import os
import signal
import time

import pytest

from fakes.mesos_agent import Event, make_task
from fakes.mesos_master import parse_status_record
from harness import WaitTimeout, descendants, pid_alive, proc_info, wait_for

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"}


@pytest.fixture
def executor_bin(build_dir):
    path = build_dir / "executor" / "pacer-executor"
    assert path.is_file(), f"{path} not built"
    return path


def task_pids(executor):
    """Processes under the executor that are not its helpers (guard, spawner)."""
    return [p for p in descendants(executor.pid)
            if (proc_info(p).comm if proc_info(p) else "") not in ("pacer-guard", "pacer-spawner")]


def wait_task_pid(executor, timeout=10.0):
    return wait_for(lambda: task_pids(executor), timeout, "the task process to appear")[0]


def launch(agent, executor_bin, task, **kw):
    ex = agent.launch_executor(executor_bin, **kw)
    agent.wait_subscribed()
    agent.send_launch(task)
    return ex


def test_launch_running_finished(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="echo hello-from-task; echo oops >&2"))
    fin = fake_agent.wait_state("T1", "TASK_FINISHED")
    assert fake_agent.states("T1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    for u in fake_agent.updates_for("T1"):
        assert len(u.uuid) == 16 and u.source == "SOURCE_EXECUTOR"
        assert u.status.executor_id.value == "E1"
        assert u.status.timestamp > 1.6e9
        assert u.data, "every update carries the status record"
    assert "exited with status 0" in fin.message
    assert ex.wait_exit(10) == 0, "exits after the terminal update is acknowledged"
    sandbox = fake_agent.sandbox()
    assert (sandbox / "stdout").read_text() == "hello-from-task\n"
    assert (sandbox / "stderr").read_text() == "oops\n"


def test_exit_code_and_signal_reported(fake_agent, executor_bin):
    launch(fake_agent, executor_bin, make_task("T1", cmd="exit 3"))
    failed = fake_agent.wait_state("T1", "TASK_FAILED")
    assert "exited with status 3" in failed.message


def test_killed_by_signal_reported(fake_agent, executor_bin):
    launch(fake_agent, executor_bin, make_task("T1", argv=["/bin/sh", "-c", "kill -SEGV $$"], shell=False))
    failed = fake_agent.wait_state("T1", "TASK_FAILED")
    assert "signal 11 (SIGSEGV)" in failed.message


def test_argv_form_and_environment(fake_agent, executor_bin):
    task = make_task("T1", argv=["/bin/sh", "-c", 'echo "$GREETING $MESOS_TASK_ID"'], shell=False,
                     env={"GREETING": "hi"})
    launch(fake_agent, executor_bin, task)
    fake_agent.wait_state("T1", "TASK_FINISHED")
    assert (fake_agent.sandbox() / "stdout").read_text() == "hi T1\n"


def test_kill_sigterm_honoured(fake_agent, executor_bin, workdir):
    marker = workdir / "got-term"
    cmd = f"trap 'echo term > {marker}; exit 0' TERM; while :; do sleep 0.05; done"
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd=cmd, kill_grace=10))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    t0 = time.monotonic()
    fake_agent.send_kill("T1")
    killed = fake_agent.wait_state("T1", "TASK_KILLED")
    assert time.monotonic() - t0 < 5, "SIGTERM honoured: no need to wait for the 10 s grace"
    assert marker.read_text() == "term\n"
    states = fake_agent.states("T1")
    assert states[-2:] == ["TASK_KILLING", "TASK_KILLED"], states
    assert "killed by the scheduler" in killed.message
    assert not pid_alive(pid)
    assert ex.wait_exit(10) == 0


def test_kill_shell_leader_dies_at_once_child_gets_its_grace(fake_agent, executor_bin, workdir):
    """dash running a command without exec dies on SIGTERM at once; the program it
    started still gets the grace period to shut down cleanly (seen with Marathon
    cmds on a real agent)."""
    marker = workdir / "clean-exit"
    prog = ("import signal,sys,time\n"
            "def bye(*a):\n"
            "    time.sleep(0.5)\n"
            "    open(sys.argv[1], 'w').write('clean')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "print('up', flush=True)\n"
            "time.sleep(60)\n")
    script = workdir / "slow_stop.py"
    script.write_text(prog)
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd=f"true; /usr/bin/python3 {script} {marker}",
                                                    kill_grace=10))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    wait_for(lambda: (fake_agent.sandbox() / "stdout").exists() and "up" in (fake_agent.sandbox() / "stdout").read_text(),
             10, "the program to be up")
    t0 = time.monotonic()
    fake_agent.send_kill("T1")
    fake_agent.wait_state("T1", "TASK_KILLED", timeout=15)
    assert marker.read_text() == "clean", "the program was cut short when its shell died"
    assert time.monotonic() - t0 < 5, "the executor waited for the group, not the whole grace period"
    assert ex.wait_exit(10) == 0


def test_kill_sigterm_ignored_then_sigkill(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="trap '' TERM; while :; do sleep 0.05; done",
                                                    kill_grace=1))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pids = wait_for(lambda: len(task_pids(ex)) >= 2 and task_pids(ex), 5, "shell and its sleep")
    t0 = time.monotonic()
    fake_agent.send_kill("T1")
    killed = fake_agent.wait_state("T1", "TASK_KILLED")
    waited = time.monotonic() - t0
    assert waited >= 0.9, f"SIGKILL came after {waited:.2f}s, before the 1 s grace period"
    assert "SIGKILL" in killed.message
    for p in pids:
        assert not pid_alive(p), f"process {p} of the task survived"


def test_kill_policy_from_kill_event_shortens_grace(fake_agent, executor_bin):
    launch(fake_agent, executor_bin, make_task("T1", cmd="trap '' TERM; while :; do sleep 0.05; done",
                                               kill_grace=30))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    t0 = time.monotonic()
    fake_agent.send_kill("T1", grace_seconds=0.5)
    fake_agent.wait_state("T1", "TASK_KILLED", timeout=10)
    assert time.monotonic() - t0 < 5


def test_no_task_killing_without_capability(fake_agent, executor_bin):
    launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"), capabilities=())
    fake_agent.wait_state("T1", "TASK_RUNNING")
    fake_agent.send_kill("T1")
    fake_agent.wait_state("T1", "TASK_KILLED")
    assert "TASK_KILLING" not in fake_agent.states("T1")


def test_shutdown(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"), shutdown_grace="3secs")
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    t0 = time.monotonic()
    fake_agent.send_shutdown()
    fake_agent.wait_state("T1", "TASK_KILLED")
    assert ex.wait_exit(10) == 0
    assert time.monotonic() - t0 < 3, "the whole shutdown fits in MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"
    assert not pid_alive(pid)


def test_shutdown_bounds_a_long_kill_grace(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="trap '' TERM; while :; do sleep 0.05; done",
                                                    kill_grace=60), shutdown_grace="2secs")
    fake_agent.wait_state("T1", "TASK_RUNNING")
    t0 = time.monotonic()
    fake_agent.send_shutdown()
    fake_agent.wait_state("T1", "TASK_KILLED", timeout=10)
    assert ex.wait_exit(10) == 0
    assert time.monotonic() - t0 < 2.5


def test_executor_sigterm_is_a_graceful_shutdown(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    ex.signal(signal.SIGTERM)
    fake_agent.wait_state("T1", "TASK_KILLED")
    assert ex.wait_exit(10) == 0
    assert not pid_alive(pid)


def test_executor_sigkill_leaves_no_task_behind(fake_agent, executor_bin):
    """The guard process kills the task's whole process group when the
    executor dies without running any code."""
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 300 & sleep 300 & wait"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pids = wait_for(lambda: len(task_pids(ex)) >= 3 and task_pids(ex), 5, "the task's three processes")
    ex.signal(signal.SIGKILL)
    ex.wait_exit(5)
    for p in pids:
        wait_for(lambda p=p: not pid_alive(p), 5, f"task process {p} to die with its executor")


@pytest.mark.parametrize("how", ["kill", "task exits"])
def test_process_that_left_the_group_dies_with_the_task(fake_agent, executor_bin, workdir, how):
    """A task process that called setsid is out of the task's process group, so the group
    kill misses it; when its parent dies it comes back to the executor (a child subreaper),
    which kills it before it exits. Nothing of the task outlives its executor."""
    marker = workdir / "escaped.pid"
    escape = f"setsid sh -c 'echo $$ > {marker}.tmp; mv {marker}.tmp {marker}; exec sleep 300' &"
    cmd = f"{escape} sleep 300" if how == "kill" else f"{escape} while [ ! -s {marker} ]; do sleep 0.05; done"
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd=cmd, kill_grace=5))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    escaped = int(wait_for(lambda: marker.exists() and marker.read_text().strip(), 10, "the escaped pid"))
    info = proc_info(escaped)
    assert info is not None and info.pgid != proc_info(ex.pid).pgid and info.pgid == escaped, \
        "the escaped process leads a group of its own"
    if how == "kill":
        fake_agent.send_kill("T1")
        fake_agent.wait_state("T1", "TASK_KILLED")
    else:
        assert fake_agent.wait_state("T1", "TASK_FINISHED").state == "TASK_FINISHED"
    assert ex.wait_exit(15) == 0
    assert not pid_alive(escaped), "the process that left the task's group outlived the executor"


def test_agent_restart_resends_unacknowledged_updates(fake_agent, executor_bin):
    fake_agent.set_ack_policy(auto=False)
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"), backoff_max="500ms",
                argv=["--log-level=debug"])
    running = fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    fake_agent.go_down()
    fake_agent.come_back()
    fake_agent.set_ack_policy(auto=True)
    sub = fake_agent.wait_subscribed(count=2, timeout=10)
    carried = [u.uuid for u in sub.unacknowledged_updates]
    assert running.uuid in carried, "the unacknowledged TASK_RUNNING rides in the re-SUBSCRIBE"
    assert [t.task_id.value for t in sub.unacknowledged_tasks] == ["T1"]
    assert pid_alive(pid), "the task keeps running while the agent restarts"
    ex.wait_output("agent acknowledged TASK_RUNNING", stream="stderr")
    # acknowledged updates are never resent
    fake_agent.drop_stream()
    sub3 = fake_agent.wait_subscribed(count=3, timeout=10)
    assert running.uuid not in [u.uuid for u in sub3.unacknowledged_updates]
    assert sub3.unacknowledged_tasks == []


# 404: what a real agent answers for the few milliseconds between opening its
# port and installing its HTTP routes when it restarts (seen on Mesos 1.11)
@pytest.mark.parametrize("status", [503, 404])
def test_agent_503_during_recovery_then_resubscribe(fake_agent, executor_bin, status):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"), backoff_max="300ms")
    fake_agent.wait_state("T1", "TASK_RUNNING")
    fake_agent.set_unavailable(status)
    fake_agent.drop_stream()
    time_before = len(fake_agent.calls)
    wait_for(lambda: any(c.status == status for c in fake_agent.calls[time_before:]), 10, f"a {status} answer")
    fake_agent.set_unavailable(None)
    fake_agent.wait_subscribed(count=2, timeout=10)
    assert ex.alive


def test_agent_gone_past_recovery_timeout(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 300 & wait"), recovery_timeout="1secs",
                backoff_max="200ms")
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pids = wait_for(lambda: len(task_pids(ex)) >= 2 and task_pids(ex), 5, "the task processes")
    fake_agent.go_down()
    code = ex.wait_exit(15)
    assert code != 0, "giving up on the agent is not a clean exit"
    for p in pids:
        assert not pid_alive(p), f"task process {p} outlived the executor"
    assert "recovery timeout" in ex.stderr


def test_no_checkpoint_disconnect_kills_task(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 300"), checkpoint=False)
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    fake_agent.drop_stream()
    assert ex.wait_exit(15) != 0
    assert not pid_alive(pid)
    assert "MESOS_CHECKPOINT=0" in ex.stderr


def test_marathon_custom_executor_launch(fake_agent, executor_bin):
    """Marathon: no TaskInfo.command; the app's cmd follows the executor path
    inside ExecutorInfo.command.value, and its env is the executor's own."""
    from mesos.v1 import mesos_pb2

    path = str(executor_bin)
    cmd = 'echo "port=$PORT0 app=$MARATHON_APP_ID" && echo second'
    ei = mesos_pb2.ExecutorInfo()
    ei.executor_id.value = "E1"
    ei.command.value = f"chmod ug+rx '{path}' && exec '{path}' {cmd}"
    task = make_task("T1", executor_info=ei)
    # what /bin/sh -c would pass after word splitting the wrapped line
    argv = ["echo", "port=31000 app=/web", "&&", "echo", "second"][:2]
    launch(fake_agent, executor_bin, task, argv=argv, env={"PORT0": "31000", "MARATHON_APP_ID": "/web"})
    fake_agent.wait_state("T1", "TASK_FINISHED")
    assert (fake_agent.sandbox() / "stdout").read_text() == "port=31000 app=/web\nsecond\n"


def test_marathon_args_fallback(fake_agent, executor_bin):
    """No recognisable wrapper: the words after the executor path run as argv."""
    from mesos.v1 import mesos_pb2

    ei = mesos_pb2.ExecutorInfo()
    ei.executor_id.value = "E1"
    ei.command.value = str(executor_bin)
    launch(fake_agent, executor_bin, make_task("T1", executor_info=ei), argv=["/bin/echo", "--flag-like", "x"])
    fake_agent.wait_state("T1", "TASK_FINISHED")
    assert (fake_agent.sandbox() / "stdout").read_text() == "--flag-like x\n"


def test_output_size_cap_and_rotation(fake_agent, executor_bin):
    cmd = "i=0; while [ $i -lt 300 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done"
    launch(fake_agent, executor_bin, make_task("T1", cmd=cmd), argv=["--output-max=4096"])
    fake_agent.wait_state("T1", "TASK_FINISHED")
    sandbox = fake_agent.sandbox()
    assert (sandbox / "stdout").stat().st_size <= 4096
    assert (sandbox / "stdout.1").stat().st_size == 4096
    assert (sandbox / "stdout").read_text().endswith("0123456789\n")


def test_exec_failure_is_task_failed(fake_agent, executor_bin):
    launch(fake_agent, executor_bin, make_task("T1", argv=["/no/such/program"], shell=False))
    failed = fake_agent.wait_update(lambda u: u.state in TERMINAL)
    assert failed.state == "TASK_FAILED"
    assert "/no/such/program" in failed.message and "No such file" in failed.message


def test_unknown_user_is_task_error(fake_agent, executor_bin):
    task = make_task("T1", cmd="true")
    task.command.user = "no-such-user-pacer"
    launch(fake_agent, executor_bin, task)
    err = fake_agent.wait_update(lambda u: u.state in TERMINAL)
    assert err.state == "TASK_ERROR"
    assert "no-such-user-pacer" in err.message


# ---- bad input ----


def test_duplicate_launch_ignored_second_task_rejected(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    fake_agent.send_launch(make_task("T1", cmd="sleep 30"))
    fake_agent.send_launch(make_task("T2", cmd="true"))
    err = fake_agent.wait_state("T2", "TASK_ERROR")
    assert "one task per executor" in err.message
    # the status record rides on every update: nothing registered for T2, and why
    rec = parse_status_record(err.status.data)
    assert rec["registration"] == "off" and rec["registered"] is False
    assert "one task per executor" in rec["error"]
    assert fake_agent.states("T1") == ["TASK_STARTING", "TASK_RUNNING"]
    # logged before T2's error went out, but read from the pipe by another thread
    ex.wait_output("duplicate LAUNCH", stream="stderr")


def test_launch_group_rejected(fake_agent, executor_bin):
    ex = fake_agent.launch_executor(executor_bin)
    fake_agent.wait_subscribed()
    ev = Event(type=Event.LAUNCH_GROUP)
    ev.launch_group.task_group.tasks.add().CopyFrom(make_task("G1", cmd="true"))
    ev.launch_group.task_group.tasks.add().CopyFrom(make_task("G2", cmd="true"))
    fake_agent.send_event(ev)
    for t in ("G1", "G2"):
        err = fake_agent.wait_state(t, "TASK_ERROR")
        assert "LAUNCH_GROUP" in err.message
    # nothing to run: it leaves, instead of holding its resources forever (a real agent never
    # stops an idle custom executor)
    assert ex.wait_exit(10) == 0


def test_kill_unknown_task_ignored(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    fake_agent.send_kill("nope")
    fake_agent.send_message(b"hello")
    fake_agent.send_raw(b"2\n\x08\x63")  # an Event of type 99, from the future
    fake_agent.send_heartbeat()
    wait_for(lambda: "does not run" in ex.stderr, 5, "the unknown-task warning")
    wait_for(lambda: "unknown event type 99" in ex.stderr, 5, "the unknown-event warning")
    assert fake_agent.states("T1") == ["TASK_STARTING", "TASK_RUNNING"]
    assert ex.alive


@pytest.mark.parametrize("raw,why", [
    (b"5\n\xff\xff\xff\xff\xff", "malformed protobuf"),
    (b"12x\n", "non-digit"),
    (b"99999999999\n", "exceeds the cap"),
])
def test_bad_frames_resubscribe(fake_agent, executor_bin, raw, why):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    pid = wait_task_pid(ex)
    fake_agent.send_raw(raw)
    fake_agent.wait_subscribed(count=2, timeout=10)
    ex.wait_output(why, stream="stderr")
    assert pid_alive(pid), "a bad frame costs a reconnect, not the task"


@pytest.mark.parametrize("env,message", [
    ({"MESOS_FRAMEWORK_ID": None}, "MESOS_FRAMEWORK_ID is not set"),
    ({"MESOS_AGENT_ENDPOINT": "nonsense"}, "MESOS_AGENT_ENDPOINT=nonsense"),
    ({"MESOS_CHECKPOINT": "yes"}, "MESOS_CHECKPOINT=yes"),
    ({"MESOS_RECOVERY_TIMEOUT": "15 minutes"}, "MESOS_RECOVERY_TIMEOUT"),
    ({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "-5secs"}, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"),
])
def test_bad_environment_exits_with_message(fake_agent, executor_bin, env, message):
    ex = fake_agent.launch_executor(executor_bin, env=env)
    assert ex.wait_exit(10) == 2
    assert message in ex.stderr


def test_help(executor_bin):
    import subprocess

    out = subprocess.run([str(executor_bin), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert "--kill-grace-period" in out.stdout and "MESOS_" in out.stdout


# ---- the task sandbox, end to end (docs/sandbox.md) ----

SANDBOX_PROBE = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status"
# the set a task running as root keeps by default (docs/sandbox.md, Capabilities): CAP_CHOWN, CAP_DAC_OVERRIDE,
# CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT
ROOT_CAPS = sum(1 << n for n in (0, 1, 3, 4, 5, 6, 7, 8, 10, 18))
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def sandbox_status(agent, executor_bin, labels=None, argv=(), user=None):
    """Runs the /proc/self/status probe as a task; returns {field: int} of what the kernel says about it
    (capability sets as bit masks)."""
    task = make_task("T1", cmd=SANDBOX_PROBE, labels=labels)
    if user is not None:
        task.command.user = user
    ex = launch(agent, executor_bin, task, argv=list(argv))
    agent.wait_state("T1", "TASK_FINISHED")
    assert ex.wait_exit(10) == 0
    fields = {}
    for line in (agent.sandbox() / "stdout").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = int(value.strip(), 16 if key.startswith("Cap") else 10)
    assert set(CAP_SETS) | {"NoNewPrivs", "Seccomp"} <= set(fields), fields
    return fields


def test_sandbox_default_task(fake_agent, executor_bin):
    st = sandbox_status(fake_agent, executor_bin)
    assert st["NoNewPrivs"] == 1
    assert st["Seccomp"] == 2, "no seccomp filter on the task"
    if "Seccomp_filters" in st:
        assert st["Seccomp_filters"] == 2, "the hardened executor's floor plus the task's default profile"
    # a task runs as the executor's user: root keeps the documented minimal set, anyone else nothing
    want = ROOT_CAPS if os.geteuid() == 0 else 0
    assert {k: st[k] for k in CAP_SETS} == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want,
                                            "CapAmb": 0}


@pytest.mark.parametrize("how", ["user nobody", "label capabilities=none", "flag --capabilities=none"])
def test_sandbox_task_without_capabilities(fake_agent, executor_bin, how):
    if os.geteuid() != 0 and how == "user nobody":
        pytest.skip("switching the task's user needs root")
    labels = {"pacer.sandbox.capabilities": "none"} if how.startswith("label") else None
    argv = ["--capabilities=none"] if how.startswith("flag") else []
    st = sandbox_status(fake_agent, executor_bin, labels=labels, argv=argv,
                        user="nobody" if how == "user nobody" else None)
    assert {k: st[k] for k in CAP_SETS} == dict.fromkeys(CAP_SETS, 0)
    assert st["NoNewPrivs"] == 1 and st["Seccomp"] == 2


def _proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def test_hardened_executor_and_its_spawner(fake_agent, executor_bin):
    """The executor runs under the floor and its own allow-list; its spawner, which starts the task,
    under the floor only; the task under the floor and its profile, never the executor's list, and it
    is the executor's own child."""
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="sleep 30"))
    fake_agent.wait_state("T1", "TASK_RUNNING")
    task = wait_task_pid(ex)
    children = {p: proc_info(p) for p in descendants(ex.pid)}
    spawners = [p for p, i in children.items() if i and i.comm == "pacer-spawner"]
    assert len(spawners) == 1, children
    assert proc_info(task).ppid == ex.pid, "the task is the executor's child, not the spawner's"
    executor, spawner, task_st = _proc_status(ex.pid), _proc_status(spawners[0]), _proc_status(task)
    assert executor["NoNewPrivs"] == spawner["NoNewPrivs"] == "1"
    if "Seccomp_filters" not in executor:
        pytest.skip("kernel without Seccomp_filters in /proc/<pid>/status")
    assert executor["Seccomp_filters"] == "2", "the floor and the executor's allow-list"
    assert spawner["Seccomp_filters"] == "1", "the floor only: the spawner must be able to exec tasks"
    assert task_st["Seccomp_filters"] == "2", "the floor and the task's default profile"
    fake_agent.send_kill("T1")
    fake_agent.wait_state("T1", "TASK_KILLED")
    assert ex.wait_exit(10) == 0
    wait_for(lambda: not pid_alive(spawners[0]), 10, "the spawner to die with its executor")


def test_spawner_killed_from_outside_fails_the_launch(fake_agent, executor_bin):
    """Without its spawner a hardened executor cannot start a task (it may not fork): the launch fails
    with a message that says why, and nothing runs unsandboxed or hangs."""
    ex = fake_agent.launch_executor(executor_bin)
    fake_agent.wait_subscribed()
    spawners = [p for p in descendants(ex.pid) if (proc_info(p).comm if proc_info(p) else "") == "pacer-spawner"]
    assert len(spawners) == 1
    os.kill(spawners[0], signal.SIGKILL)
    wait_for(lambda: not pid_alive(spawners[0]), 10, "the spawner to die")
    fake_agent.send_launch(make_task("T1", cmd="echo ran"))
    failed = fake_agent.wait_update(lambda u: u.state in TERMINAL)
    assert failed.state == "TASK_FAILED", (failed.state, failed.message)
    assert "spawner process is gone" in failed.message, failed.message
    assert not (fake_agent.sandbox() / "stdout").exists() or (fake_agent.sandbox() / "stdout").read_text() == ""
    assert ex.wait_exit(10) == 0
    assert "the spawner process is gone" in ex.stderr


def test_sandbox_unconfined_profile(fake_agent, executor_bin):
    """unconfined: no filter of the task's own; the hardened executor's floor remains (one filter)."""
    st = sandbox_status(fake_agent, executor_bin, labels={"pacer.sandbox.seccomp": "unconfined"})
    assert st["NoNewPrivs"] == 1
    assert st["Seccomp"] == 2, "the executor's floor is inherited whatever the profile"
    if "Seccomp_filters" not in st:
        pytest.skip("kernel without Seccomp_filters in /proc/<pid>/status")
    assert st["Seccomp_filters"] == 1, "unconfined still stacked a filter of its own on the floor"


@pytest.mark.parametrize("labels,filters", [
    ({"pacer.sandbox.seccomp": "unconfined"}, 0),
    ({}, 1),
])
def test_sandbox_profile_without_hardening(fake_agent, executor_bin, labels, filters):
    """--no-harden: no floor, so the task's filters are its profile's alone; no_new_privs stays."""
    st = sandbox_status(fake_agent, executor_bin, labels=labels, argv=["--no-harden"])
    assert st["NoNewPrivs"] == 1
    assert st["Seccomp"] == (2 if filters else 0)
    if "Seccomp_filters" in st:
        assert st["Seccomp_filters"] == filters


@pytest.mark.parametrize("label,value,needle", [
    ("pacer.sandbox.seccomp", "paranoid", "no such seccomp profile"),
    ("pacer.sandbox.capabilities", "CAP_NET_BIND_SERVICE,CAP_FLY", "unknown capability 'CAP_FLY'"),
    ("pacer.sandbox.profile", "unconfined", "unknown label"),  # a typo must not silently leave the default
])
def test_sandbox_bad_label_is_task_error(fake_agent, executor_bin, label, value, needle):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="echo ran", labels={label: value}))
    err = fake_agent.wait_update(lambda u: u.state in TERMINAL)
    assert err.state == "TASK_ERROR" and err.reason == "REASON_TASK_INVALID", (err.state, err.reason)
    assert label in err.message and needle in err.message, err.message
    assert "TASK_RUNNING" not in fake_agent.states("T1")
    stdout = fake_agent.sandbox() / "stdout"
    assert not stdout.exists() or stdout.read_text() == "", "the task ran"
    assert ex.wait_exit(10) == 0


# ---- exit after the terminal update (--ack-wait) ----


def test_exit_waits_for_terminal_ack_until_ack_wait(fake_agent, executor_bin):
    fake_agent.set_ack_policy(filter=lambda u: u.state not in TERMINAL)
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="true"), argv=["--ack-wait=2secs"])
    fin = fake_agent.wait_state("T1", "TASK_FINISHED")
    with pytest.raises(WaitTimeout):
        ex.wait_exit(1.0)  # still waiting for the acknowledgement
    assert ex.wait_exit(5) == 0, "giving up on the acknowledgement is a clean exit"
    waited = time.monotonic() - fin.time
    assert 1.9 <= waited < 3.5, f"exited {waited:.2f}s after the terminal update, --ack-wait is 2 s"
    assert [t for t, _ in fake_agent.withheld_acks()] == ["T1"]
    assert "not acknowledged in time" in ex.stderr


def test_exit_on_terminal_ack_before_ack_wait(fake_agent, executor_bin):
    fake_agent.set_ack_policy(filter=lambda u: u.state not in TERMINAL)
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="true"), argv=["--ack-wait=30secs"])
    fake_agent.wait_state("T1", "TASK_FINISHED")
    with pytest.raises(WaitTimeout):
        ex.wait_exit(1.0)
    t0 = time.monotonic()
    assert fake_agent.ack(task_id="T1") == 1
    assert ex.wait_exit(5) == 0
    assert time.monotonic() - t0 < 1.0, "the acknowledgement did not end the wait"
    assert "not acknowledged in time" not in ex.stderr


def test_exit_promptly_when_terminal_update_acknowledged(fake_agent, executor_bin):
    ex = launch(fake_agent, executor_bin, make_task("T1", cmd="true"), argv=["--ack-wait=30secs"])
    fin = fake_agent.wait_state("T1", "TASK_FINISHED")
    assert ex.wait_exit(5) == 0
    assert time.monotonic() - fin.time < 1.0
    assert fake_agent.acknowledged(fin.uuid)
