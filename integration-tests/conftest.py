"""pytest wiring for Pacer's integration tests.

Finds the CMake build directory ($PACER_BUILD_DIR, which `make integration`
sets; else <repo>/build) and puts its generated Python protobuf modules
(`<build>/python`, package `mesos.v1`) and this directory on sys.path, so that
tests and fakes can `import harness`, `from fakes.mesos_agent import ...` and
`from mesos.v1 import mesos_pb2`.

Fixtures:
  build_dir   the build directory (Path), session-wide
  workdir     a fresh temporary directory for the test (Path)
  timeline    a harness.Timeline shared by the test's fakes
  procs       a harness.ProcessRegistry: starts processes, stops them at
              teardown and fails the test if any process was left behind
  ext_dir     $PACER_EXT_DIR (real Consul/Mesos tarballs) or skip/fail
  fake_agent  a started fakes.mesos_agent.FakeAgent, stopped at teardown
  fake_master a started fakes.mesos_master.FakeMaster, stopped at teardown

Tests marked `real` are skipped when PACER_EXT_DIR is unset, and fail instead
when PACER_REQUIRE_REAL=1. On a failure the report shows the tail of every
process log and the timeline.
"""

import sys
from pathlib import Path

import pytest

_TESTS_DIR = Path(__file__).resolve().parent
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

import harness  # noqa: E402  (needs the sys.path entry above)

_BUILD_DIR = harness.build_dir()
_PY_DIR = _BUILD_DIR / "python"
if str(_PY_DIR) not in sys.path:
    sys.path.insert(0, str(_PY_DIR))


def pytest_configure(config):
    if not (_PY_DIR / "mesos" / "v1" / "mesos_pb2.py").is_file():
        raise pytest.UsageError(
            f"no generated protobuf modules in {_PY_DIR}: build first (make build, or "
            f"cmake --build <dir> --target pacer-proto-py) and set PACER_BUILD_DIR=<dir>")
    # Orphans of the tests come back to us, so ProcessRegistry can find them.
    if not harness.become_subreaper():
        raise pytest.UsageError("prctl(PR_SET_CHILD_SUBREAPER) failed: cannot track leaked processes")


def pytest_sessionfinish(session, exitstatus):
    """Executors of session-wide fixtures (the real cluster, local mode) log outside any
    test's workdir: their allow-list complaints fail the run here."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    found = harness.seccomp_complaints(factory.getbasetemp())
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "\n".join(f"{path}: {line}" for path, line in found)
        if reporter is not None:
            reporter.write_sep("=", "executors called outside their seccomp allow-list", red=True)
            reporter.write_line(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_runtest_setup(item):
    if item.get_closest_marker("real") is not None:
        harness.require_ext_dir()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    registry = getattr(item, "_pacer_procs", None)
    if registry is not None:
        for proc in registry.processes:
            for stream, text in proc.log_tail():
                if text:
                    report.sections.append((f"{proc.name} (pid {proc.pid}) {stream}", text))
    timeline = getattr(item, "_pacer_timeline", None)
    if timeline is not None and len(timeline):
        report.sections.append(("timeline", timeline.format()))


@pytest.fixture(scope="session")
def build_dir():
    """The CMake build directory (Path)."""
    return _BUILD_DIR


@pytest.fixture
def workdir(tmp_path):
    """A fresh directory for this test's files (sandboxes, logs, state). At teardown,
    fails the test if an executor under it called outside its seccomp allow-list."""
    yield tmp_path
    found = harness.seccomp_complaints(tmp_path)
    assert not found, "an executor made system calls outside its allow-list:\n" + "\n".join(
        f"{path}: {line}" for path, line in found)


@pytest.fixture
def timeline(request):
    """The Timeline this test's fakes record into."""
    tl = harness.Timeline()
    request.node._pacer_timeline = tl
    return tl


@pytest.fixture
def procs(request, workdir, timeline):
    """Starts processes for the test (logs under workdir/logs); at teardown stops
    them (SIGTERM, then SIGKILL) and fails the test if anything is left."""
    registry = harness.ProcessRegistry(workdir / "logs", timeline)
    request.node._pacer_procs = registry
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def ext_dir():
    """$PACER_EXT_DIR as a Path; skips (or fails, with PACER_REQUIRE_REAL=1)."""
    return harness.require_ext_dir()


@pytest.fixture
def fake_agent(procs, workdir, timeline):
    """A started FakeAgent on 127.0.0.1 (framework F1, executor E1). At teardown
    the executors it launched are stopped first, while it still answers, then
    the agent itself."""
    from fakes.mesos_agent import FakeAgent

    agent = FakeAgent(procs=procs, workdir=workdir, timeline=timeline)
    agent.start()
    yield agent
    agent.stop_executors()
    agent.stop()


@pytest.fixture
def fake_master(timeline):
    """A started FakeMaster on 127.0.0.1 recording into the test's timeline.
    Unacknowledged status updates are resent after 0.5 s (backoff capped at
    2 s) instead of the agent's 10 s; everything else is the master's default.
    At teardown it is stopped, and the test fails if the fake hit an internal
    error."""
    from fakes.mesos_master import FakeMaster

    master = FakeMaster(timeline=timeline, update_retry_interval=0.5, update_retry_max=2.0)
    master.start()
    yield master
    master.stop()
    master.check()
