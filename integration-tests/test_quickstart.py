"""The README's first command, end to end: tools/run-local.sh (what `make run`
runs) starts pacer-scheduler in local mode, deploys examples/hello.json through
pacerctl, and the three instances become healthy and registered in Consul —
the Consul double, the real Consul agent from ../shared/ext (given by
CONSUL_HTTP_ADDR, and started by the scheduler itself from a `consul` binary on
PATH). SIGINT, as Ctrl-C, stops everything: the procs fixture fails the test
if any executor, task or Consul agent is left.
"""

import json
import os
import signal
import subprocess

import pytest

from consul_support import RealConsul, RecordingProxy, consul_binary
from fakes.consul import FakeConsul
from harness import REPO_DIR, find_binary, free_port, free_port_range, wait_for


def run_quickstart(procs, build_dir, workdir, env_extra):
    port = free_port()
    env = dict(os.environ)
    env.pop("CONSUL_HTTP_ADDR", None)
    # host ports for the tasks from a free range, not local mode's default 31000-32000, which another
    # program on the machine (or another run of this suite) may hold
    first = free_port_range(16)
    env.update({"PACER_RUN_PORT": str(port), "PACER_DATA_DIR": str(workdir / "data"),
                "PACER_LOCAL_PORT_BEGIN": str(first), "PACER_LOCAL_PORT_END": str(first + 15)})
    env.update(env_extra)
    proc = procs.start([str(REPO_DIR / "tools" / "run-local.sh"), str(build_dir)], name="run-local", env=env,
                       inherit_env=False, cwd=REPO_DIR)
    proc.wait_output("Press Ctrl-C to stop everything", timeout=90)
    return proc, f"http://127.0.0.1:{port}"


def pacerctl_json(url, *args):
    out = subprocess.run([str(find_binary("pacerctl")), f"--url={url}", "--json", *args], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_healthy_and_registered(url, services):
    tasks = pacerctl_json(url, "tasks")["tasks"]
    assert len(tasks) == 3
    for t in tasks:
        assert t["state"] == "TASK_RUNNING"
        assert t["healthCheckResults"] and t["healthCheckResults"][0]["alive"] is True
        assert t["registration"]["state"] == "registered", t
    hello = {k: v for k, v in services().items() if v["Service"] == "hello"}
    assert len(hello) == 3
    assert sorted(v["Port"] for v in hello.values()) == sorted(t["ports"][0] for t in tasks)
    for v in hello.values():
        assert "quickstart" in v["Tags"] and "pacer" in v["Tags"]


def stop(proc):
    proc.signal(signal.SIGINT)
    assert proc.wait_exit(30) == 0
    assert "stopped" in proc.stdout


def test_quickstart_with_consul_double(procs, build_dir, workdir, timeline):
    fc = FakeConsul(timeline, leader="127.0.0.1:8300").start()
    try:
        proc, url = run_quickstart(procs, build_dir, workdir, {"CONSUL_HTTP_ADDR": fc.address})
        assert "deployment" in proc.stdout and "finished" in proc.stdout
        assert_healthy_and_registered(url, fc.services)
        stop(proc)
        # nothing left registered once Ctrl-C stopped everything (deregistration before SIGTERM is
        # asserted by the executor tests, test_executor_consul.py)
        assert not [v for v in fc.services().values() if v["Service"] == "hello"]
    finally:
        fc.stop()


@pytest.mark.real
def test_quickstart_with_real_consul(procs, build_dir, workdir, timeline, tmp_path_factory):
    binary = consul_binary(tmp_path_factory.getbasetemp())
    agent = RealConsul(binary, tmp_path_factory.mktemp("consul")).start()
    proxy = RecordingProxy(agent.port, timeline).start()
    try:
        proc, url = run_quickstart(procs, build_dir, workdir, {"CONSUL_HTTP_ADDR": proxy.address})
        assert_healthy_and_registered(url, proxy.services)
        stop(proc)
        assert not [v for v in proxy.services().values() if v["Service"] == "hello"]
    finally:
        proxy.stop()
        agent.stop()


@pytest.mark.real
def test_quickstart_starts_its_own_consul_dev_agent(procs, build_dir, workdir, tmp_path_factory):
    """No Consul configured, a consul binary on PATH: local mode runs a dev agent."""
    binary = consul_binary(tmp_path_factory.getbasetemp())
    path = f"{binary.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    proc, url = run_quickstart(procs, build_dir, workdir, {"PATH": path})
    info = pacerctl_json(url, "info")
    assert "dev agent started by the scheduler" in info["pacer"]["consul"]
    address = info["pacer"]["consul"].split(" register in ")[1].split(" ")[0]
    import urllib.request
    with urllib.request.urlopen(f"http://{address}/v1/agent/services", timeout=5) as r:
        services = json.load(r)
    assert_healthy_and_registered(url, lambda: services)
    stop(proc)


def test_quickstart_without_consul_says_so(procs, build_dir, workdir):
    """No Consul anywhere: registration is off, loudly (log, /v2/info, each task)."""
    proc, url = run_quickstart(procs, build_dir, workdir, {"PATH": "/usr/local/bin:/usr/bin:/bin"})
    info = pacerctl_json(url, "info")
    assert "DISABLED" in info["pacer"]["consul"]
    tasks = pacerctl_json(url, "tasks")["tasks"]
    assert len(tasks) == 3 and all(t["registration"]["state"] == "off" for t in tasks)
    assert "Consul registration is DISABLED" in (workdir / "data" / "scheduler.log").read_text()
    stop(proc)
