"""pacerctl, the command-line client, against a fake pacer-scheduler (fakes/pacer_api.py).

Every command runs as the real binary; the tests assert what it prints, what it sends and its
exit code: 0 success, 1 refused or deployment failed, 2 usage error or invalid definition,
3 scheduler unreachable, 130 interrupted while waiting.
"""

import errno
import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

import harness
from fakes.pacer_api import FakePacerApi

# Deadline of one pacerctl run: each finishes in well under a second against the fake.
RUN_TIMEOUT = 30
# Polling period while waiting, for the tests that take the polling path.
FAST_POLL = "--interval=50ms"
# The variables of the test's environment that would change pacerctl's behaviour.
CTL_ENV = ("PACER_URL", "PACER_TOKEN", "PACER_TIMEOUT", "NO_COLOR", "TERM")

WEB = {"id": "/web", "cmd": "python3 -m http.server $PORT0", "instances": 3, "cpus": 0.1, "mem": 32,
       "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0}]}


def unreachable_message(url):
    return (f"pacerctl: cannot reach pacer-scheduler at {url}: Connection refused — is it running? "
            f"(set --url or PACER_URL)")


@pytest.fixture(scope="module")
def pacerctl():
    return harness.find_binary("pacerctl")


@pytest.fixture
def api():
    fake = FakePacerApi(tick=0.02).start()
    yield fake
    fake.stop()


def ctl_env(url=None, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in CTL_ENV}
    if url:
        env["PACER_URL"] = url
    env.update(extra or {})
    return env


@pytest.fixture
def ctl(pacerctl, api):
    """Runs pacerctl against the fake: ctl("apps", "--json") → CompletedProcess (text)."""

    def run(*args, env=None, url=None, input=None, timeout=RUN_TIMEOUT):
        return subprocess.run([str(pacerctl), *args], env=ctl_env(url or api.url, env), input=input,
                              capture_output=True, text=True, timeout=timeout)

    return run


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def table(stdout):
    """A table printed by pacerctl as a list of rows of cells (split on runs of 2+ spaces)."""
    import re
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# command line


def test_help_lists_every_command_and_the_exit_codes(ctl):
    p = ctl("--help")
    assert p.returncode == 0
    for cmd in ("apps", "app ID", "deploy FILE.json", "scale ID N", "restart ID", "delete ID", "tasks",
                "deployments", "deployment stop|rollback|retry", "events", "info", "ping"):
        assert cmd in p.stdout
    assert "PACER_URL" in p.stdout and "PACER_TOKEN" in p.stdout
    assert "3 pacer-scheduler unreachable" in p.stdout


@pytest.mark.parametrize("cmd,flags", [("deploy", ["--[no-]force", "--[no-]wait", "--wait-timeout", "--interval"]),
                                       ("scale", ["--[no-]force", "--[no-]wait"]),
                                       ("events", ["--type", "--app", "--count", "--last-event-id"]),
                                       ("apps", ["--url", "--[no-]json", "--token", "--timeout"])])
def test_each_command_has_its_own_help(ctl, cmd, flags):
    p = ctl(cmd, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"Usage: pacerctl {cmd} [FLAGS]")
    for f in flags:
        assert f in p.stdout


def test_help_does_not_show_the_token(ctl):
    p = ctl("apps", "--help", env={"PACER_TOKEN": "s3cr3t-token"})
    assert p.returncode == 0
    assert "s3cr3t-token" not in p.stdout


@pytest.mark.parametrize("args,message", [
    ([], "no command given"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["apps", "--bogus"], "unknown flag"),
    (["app"], "missing arguments (usage: pacerctl app ID)"),
    (["app", "/a", "/b"], "unexpected argument '/b'"),
    (["scale", "/web", "many"], "the instance count must be a whole number from 0 to 100000, not 'many'"),
    (["scale", "/web", "100001"], "not '100001'"),
    (["scale", "/web", "-1"], "not '-1'"),
    (["--url=ftp://host", "apps"], "is not an http:// or https:// URL"),
    (["apps", "--timeout=soon"], "--timeout"),
    (["deployment", "frobnicate", "d1"], "unknown action 'frobnicate': expected stop, rollback or retry"),
    (["deployment", "retry", "d1"], "retry needs an app id"),
    (["events", "--type=Deployment-Success"], "is not an event type name"),
    (["apps", "--token=two words"], "--token must be printable ASCII without spaces"),
])
def test_usage_errors_exit_2_and_send_nothing(ctl, api, args, message):
    p = ctl(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr
    assert api.requests == []


def test_flags_may_follow_the_arguments(ctl, api):
    api.add_app({"id": "/web", "cmd": "x"})
    p = ctl("app", "/web", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["app"]["id"] == "/web"


# --------------------------------------------------------------------------------------------------
# unreachable scheduler


@pytest.mark.parametrize("args", [["apps"], ["ping"], ["info"], ["deployments"], ["tasks"], ["app", "/x"],
                                  ["scale", "/x", "2"], ["restart", "/x"], ["delete", "/x"], ["events"],
                                  ["deployment", "stop", "d1"]])
def test_unreachable_scheduler_exits_3_and_says_what_to_do(pacerctl, args):
    url = f"http://127.0.0.1:{harness.free_port()}"
    p = subprocess.run([str(pacerctl), *args], env=ctl_env(url), capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert unreachable_message(url) in p.stderr.splitlines()


def test_unreachable_deploy_exits_3(pacerctl, tmp_path):
    url = f"http://127.0.0.1:{harness.free_port()}"
    f = write(tmp_path, "web.json", WEB)
    p = subprocess.run([str(pacerctl), "--url", url, "deploy", f], env=ctl_env(), capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 3
    assert unreachable_message(url) in p.stderr.splitlines()


def test_url_without_scheme_means_http(ctl, api):
    p = ctl("--url", f"127.0.0.1:{api.port}", "ping")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"pong from {api.url} in ")


# --------------------------------------------------------------------------------------------------
# reading: apps, app, tasks, deployments, info, ping


def test_apps_lists_aligned_columns(ctl, api):
    api.add_app(WEB)
    api.add_app({"id": "/prod/db", "cmd": "db", "instances": 1, "cpus": 2, "mem": 1024})
    p = ctl("apps")
    assert p.returncode == 0, p.stderr
    rows = table(p.stdout)
    assert rows[0] == ["ID", "INSTANCES", "CPUS", "MEM", "VERSION", "DEPLOYMENTS"]
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["/web"][1:4] == ["3/3/3/3", "0.1", "32"]
    assert by_id["/prod/db"][1:4] == ["1/0/1/1", "2", "1024"]  # no health checks: none healthy
    assert by_id["/web"][5] == "-"
    # aligned: every row starts its second column at the same offset
    lines = p.stdout.splitlines()
    assert len({line.index(r[1]) for line, r in zip(lines, rows)}) == 1
    assert "\x1b" not in p.stdout  # no colours on a pipe


def test_apps_prefix_filter_and_empty_list(ctl, api):
    api.add_app({"id": "/prod/db", "cmd": "db"})
    p = ctl("apps", "/dev")
    assert p.returncode == 0
    assert p.stdout == "no apps with that id prefix\n"
    assert api.requests[-1].query == {"id": ["/dev"]}
    p = ctl("apps", "prod")
    assert [r[0] for r in table(p.stdout)[1:]] == ["/prod/db"]


def test_apps_json_is_the_servers_json(ctl, api):
    api.add_app(WEB)
    p = ctl("--json", "apps")
    assert p.returncode == 0
    doc = json.loads(p.stdout)
    assert [a["id"] for a in doc["apps"]] == ["/web"]
    assert doc["apps"][0]["tasksHealthy"] == 3


def test_apps_show_a_running_deployment(ctl, api, tmp_path):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    dep = ctl("deploy", "--no-wait", f).stdout.strip()
    rows = table(ctl("apps").stdout)
    assert rows[1][0] == "/held" and rows[1][5] == dep


def test_app_shows_the_definition_and_its_tasks(ctl, api):
    api.add_app(WEB)
    p = ctl("app", "web")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "/web"]
    assert "3 desired: 3 running, 3 healthy, 3 registered, 0 staged, 0 unhealthy" in p.stdout
    assert "HEALTH CHECKS  HTTP /health on port index 0" in p.stdout
    rows = table(p.stdout.split("\n\n")[1])
    assert rows[0] == ["ID", "APP", "HOST", "PORTS", "STATE", "HEALTHY", "REGISTERED"]
    assert len(rows) == 4 and all(r[4:] == ["running", "yes", "registered"] for r in rows[1:])


def test_app_json_and_404(ctl, api):
    api.add_app(WEB)
    assert json.loads(ctl("app", "/web", "--json").stdout)["app"]["instances"] == 3
    p = ctl("app", "/x")
    assert p.returncode == 1
    assert p.stderr == "pacerctl: no app /x (see `pacerctl apps`)\n"


def test_tasks_of_all_apps_and_of_one(ctl, api):
    api.add_app(WEB)
    api.add_app({"id": "/db", "cmd": "db", "instances": 2})
    rows = table(ctl("tasks").stdout)
    assert rows[0] == ["ID", "APP", "HOST", "PORTS", "STATE", "HEALTHY", "REGISTERED"]
    assert sorted(r[1] for r in rows[1:]) == ["/db", "/db", "/web", "/web", "/web"]
    assert all(r[5] == "-" for r in rows[1:] if r[1] == "/db")  # no health checks
    rows = table(ctl("tasks", "/db").stdout)
    assert [r[1] for r in rows[1:]] == ["/db", "/db"]
    assert api.requests[-1].path == "/v2/apps/db/tasks"
    doc = json.loads(ctl("tasks", "--json").stdout)
    assert len(doc["tasks"]) == 5
    p = ctl("tasks", "/nope")
    assert (p.returncode, p.stderr) == (1, "pacerctl: no app /nope (see `pacerctl apps`)\n")


def test_deployments_table_and_json(ctl, api, tmp_path):
    assert ctl("deployments").stdout == "no deployments\n"
    f = write(tmp_path, "held.json", [{"id": "/a", "cmd": "x", "labels": {"fake.behaviour": "hold"}},
                                      {"id": "/b", "cmd": "x", "labels": {"fake.behaviour": "hold"}}])
    dep = ctl("deploy", "--no-wait", f).stdout.strip()
    p = ctl("deployments")
    rows = table(p.stdout)
    assert rows[0] == ["ID", "STEP", "APP", "ACTION", "STATE", "REASON"]
    assert rows[1] == [dep, "1/1", "/a", "start", "running", "-"]
    assert rows[2] == ["/b", "start", "running", "-"]  # id and step only on a deployment's first row
    doc = json.loads(ctl("deployments", "--json").stdout)
    assert [d["id"] for d in doc] == [dep]


def test_info_and_ping(ctl, api):
    p = ctl("info")
    assert p.returncode == 0
    assert "MODE           local" in p.stdout
    assert "CONSUL         registration disabled: fake" in p.stdout
    assert json.loads(ctl("info", "--json").stdout)["name"] == "pacer"
    p = ctl("ping")
    assert p.returncode == 0 and p.stdout.startswith(f"pong from {api.url} in ")
    doc = json.loads(ctl("ping", "--json").stdout)
    assert doc["answer"] == "pong" and doc["url"] == api.url


# --------------------------------------------------------------------------------------------------
# deploy


def test_deploy_waits_until_the_deployment_finishes(ctl, api, tmp_path):
    p = ctl("deploy", write(tmp_path, "web.json", WEB))
    assert p.returncode == 0, p.stderr
    dep = api.requests_to("POST", "/v2/apps")[0]
    assert json.loads(dep.body) == WEB
    lines = p.stdout.splitlines()
    assert lines[0].startswith("deployment ") and lines[0].endswith(" started: /web")
    assert any("status_update_event" in line and "TASK_RUNNING" in line for line in lines)
    assert "/web succeeded, 3/3 running, 3 healthy, 3 registered" in p.stdout
    assert lines[-1].startswith("deployment ") and " finished in " in lines[-1]
    app = json.loads(ctl("app", "/web", "--json").stdout)["app"]
    assert (app["tasksRunning"], app["tasksHealthy"]) == (3, 3)
    assert api.deployment_ids() == []


def test_deploy_replaces_an_existing_app(ctl, api, tmp_path):
    api.add_app(WEB)
    p = ctl("deploy", write(tmp_path, "web.json", dict(WEB, instances=1)))
    assert p.returncode == 0, p.stderr
    put = api.requests_to("PUT", "/v2/apps/web")
    assert len(put) == 1 and put[0].query == {"partialUpdate": ["false"]}
    assert "/web succeeded, 1/1 running" in p.stdout
    p = ctl("deploy", write(tmp_path, "same.json", dict(WEB, instances=1)))
    assert (p.returncode, p.stdout) == (0, "nothing to deploy: the apps already look like this\n")


def test_deploy_an_array_is_one_batch(ctl, api, tmp_path):
    f = write(tmp_path, "batch.json", [{"id": "/a", "cmd": "x", "instances": 2}, {"id": "b", "cmd": "y"}])
    p = ctl("deploy", f)
    assert p.returncode == 0, p.stderr
    assert len(api.requests_to("PUT", "/v2/apps")) == 1 and not api.requests_to("POST", "/v2/apps")
    assert "started: /a, /b" in p.stdout
    assert "/a succeeded, 2/2 running" in p.stdout and "/b succeeded, 1/1 running" in p.stdout


def test_deploy_from_stdin(ctl, api):
    p = ctl("deploy", "-", input=json.dumps({"id": "/s", "cmd": "x"}))
    assert p.returncode == 0, p.stderr
    assert "/s" in json.loads(ctl("apps", "--json").stdout)["apps"][0]["id"]


def test_deploy_failure_exits_1_with_the_reason(ctl, api, tmp_path):
    f = write(tmp_path, "crash.json", {"id": "/crash", "cmd": "exit 1", "labels": {"fake.behaviour": "fail"}})
    p = ctl("deploy", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "TASK_FAILED" in p.stdout
    err = p.stderr.splitlines()
    assert err[0].startswith("pacerctl: deployment ") and " failed after " in err[0]
    assert "  /crash failed: crash loop: 2 task failures within 60s (limit 2)" in err


def test_deploy_rolled_back_is_a_failure(ctl, api, tmp_path):
    f = write(tmp_path, "back.json", {"id": "/back", "cmd": "x", "labels": {"fake.behaviour": "rollback"}})
    p = ctl("deploy", f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert " failed after " in p.stderr.splitlines()[0]


def test_batch_where_one_app_fails_reports_it_and_the_others_finish(ctl, api, tmp_path):
    f = write(tmp_path, "batch.json", [{"id": "/good", "cmd": "x", "instances": 2},
                                       {"id": "/bad", "cmd": "x", "labels": {"fake.behaviour": "fail"}}])
    p = ctl("deploy", f)
    assert p.returncode == 1
    assert "/good succeeded, 2/2 running" in p.stdout
    assert "  /bad failed: crash loop" in p.stderr
    assert "/good" not in p.stderr


def test_deploy_invalid_definition_lists_every_error_and_exits_2(ctl, api, tmp_path):
    f = write(tmp_path, "bad.json", {"id": "/Web", "cpus": -1, "instances": 1.5, "instance": 3})
    p = ctl("deploy", f)
    assert p.returncode == 2
    err = p.stderr.splitlines()
    assert err[0] == f"pacerctl: {f}: refused as invalid (422: Object is not valid):"
    assert set(err[1:]) == {"  /instance: unknown field",
                            '  /id: segment "Web" is not a valid id segment',
                            "  /: one of cmd or args is required",
                            "  /cpus: must be between 0 and 1e+09 (got -1)",
                            "  /instances: must be an integer from 0 to 100000 (got 1.5)"}
    assert json.loads(ctl("apps", "--json").stdout)["apps"] == []


def test_deploy_batch_errors_carry_the_item_index(ctl, api, tmp_path):
    f = write(tmp_path, "bad.json", [{"id": "/ok", "cmd": "x"}, {"id": "/b", "cmd": "x", "mem": "lots"}])
    p = ctl("deploy", f)
    assert p.returncode == 2
    assert '  /(1)/mem: must be between 0 and 1e+09 (got "lots")' in p.stderr


@pytest.mark.parametrize("content,message", [
    ('{"id": "/web",\n  "cmd": }', "invalid JSON at line 2, column 10"),
    ('{"id": "/a", "id": "/b", "cmd": "x"}', "line 1"),
    (b'{"id": "/caf\xe9", "cmd": "x"}', "invalid JSON"),
    ('"just a string"', "expected an app object or an array of apps, got string"),
    ("[]", "the array holds no apps"),
    ('[{"id": "/a", "cmd": "x"}, 3]', "item 1 of the array is a number, expected an app object"),
    ("[" * 100 + "]" * 100, "nested deeper than"),
])
def test_deploy_malformed_file_names_file_line_and_column(ctl, api, tmp_path, content, message):
    path = tmp_path / "app.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    p = ctl("deploy", str(path))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"pacerctl: {path}: ")
    assert message in p.stderr
    assert api.requests == []


def test_deploy_unreadable_or_oversized_file_exits_2(ctl, api, tmp_path):
    p = ctl("deploy", str(tmp_path / "missing.json"))
    assert p.returncode == 2 and "cannot read" in p.stderr and "No such file or directory" in p.stderr
    big = tmp_path / "big.json"
    big.write_text('{"id": "/a", "cmd": "' + "x" * (1024 * 1024) + '"}')
    p = ctl("deploy", str(big))
    assert p.returncode == 2
    assert "is larger than 1048576 bytes" in p.stderr
    assert api.requests == []


def test_deploy_no_wait_prints_the_deployment_id(ctl, api, tmp_path):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    p = ctl("deploy", "--no-wait", f)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == api.deployment_ids()[0]
    assert not api.stream_requests  # no waiting, no subscription


def test_deploy_json_prints_only_the_servers_answer(ctl, api, tmp_path):
    p = ctl("deploy", "--json", write(tmp_path, "web.json", WEB))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # one document: the created app
    assert doc["id"] == "/web"
    assert " finished in " in p.stderr  # the progress went to stderr


def test_deploy_subscribes_before_sending_the_change(ctl, api, tmp_path):
    ctl("deploy", write(tmp_path, "web.json", WEB))
    order = [r.path for r in api.requests if r.path in ("/v2/events", "/v2/apps")]
    assert order[:2] == ["/v2/events", "/v2/apps"]


# --------------------------------------------------------------------------------------------------
# scale, restart, delete; locks; waiting


def test_scale_patches_the_instance_count_and_waits(ctl, api):
    api.add_app(WEB)
    p = ctl("scale", "/web", "5")
    assert p.returncode == 0, p.stderr
    patch = api.requests_to("PATCH", "/v2/apps/web")
    assert [json.loads(r.body) for r in patch] == [{"instances": 5}]
    assert "started: scale /web to 5" in p.stdout
    assert "/web succeeded, 5/5 running, 5 healthy" in p.stdout


def test_restart_replaces_the_instances(ctl, api):
    api.add_app(WEB)
    before = {t["id"] for t in json.loads(ctl("tasks", "--json").stdout)["tasks"]}
    p = ctl("restart", "/web")
    assert p.returncode == 0, p.stderr
    assert len(api.requests_to("POST", "/v2/apps/web/restart")) == 1
    after = {t["id"] for t in json.loads(ctl("tasks", "--json").stdout)["tasks"]}
    assert len(after) == 3 and not before & after


def test_delete_waits_until_the_app_is_gone(ctl, api):
    api.add_app(WEB)
    p = ctl("delete", "web")
    assert p.returncode == 0, p.stderr
    assert "/web succeeded, gone" in p.stdout
    assert ctl("app", "/web").returncode == 1


@pytest.mark.parametrize("args", [["scale", "/nope", "2"], ["restart", "/nope"], ["delete", "/nope"]])
def test_changes_to_a_missing_app_exit_1_with_404(ctl, api, args):
    p = ctl(*args)
    assert p.returncode == 1
    assert p.stderr == "pacerctl: no app /nope (see `pacerctl apps`)\n"


def test_locked_app_exits_1_and_mentions_force(ctl, api, tmp_path):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    dep = ctl("deploy", "--no-wait", f).stdout.strip()
    for args in (["scale", "/held", "2"], ["restart", "/held"], ["delete", "/held"]):
        p = ctl(*args)
        assert p.returncode == 1
        assert p.stderr == (f"pacerctl: app /held is locked by deployment {dep} — wait for it to finish "
                            f"(see `pacerctl deployments`) or pass --force to override it\n")
    p = ctl("scale", "/held", "2", "--force", "--no-wait")
    assert p.returncode == 0, p.stderr
    assert api.requests_to("PATCH", "/v2/apps/held")[-1].query == {"force": ["true"]}
    assert p.stdout.strip() in api.deployment_ids() and p.stdout.strip() != dep


def test_wait_timeout_gives_up_with_exit_1(ctl, api, tmp_path):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    t0 = time.monotonic()
    p = ctl("deploy", f, "--wait-timeout=300ms", FAST_POLL)
    assert p.returncode == 1
    assert time.monotonic() - t0 < 10
    assert "is still running after 300ms; it goes on" in p.stderr
    assert api.deployment_ids()  # waiting ended, the deployment did not


def test_interrupt_while_waiting_exits_130(pacerctl, api, procs, tmp_path):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    p = procs.start([pacerctl, "deploy", f], env=ctl_env(api.url), inherit_env=False)
    p.wait_output(r"started: /held")
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130
    assert "stopped waiting; deployment " in p.stderr and " goes on" in p.stderr


def test_waiting_by_polling_when_there_is_no_event_stream(pacerctl, tmp_path):
    fake = FakePacerApi(tick=0.02, events=False, linger=50).start()
    try:
        run = [str(pacerctl), "--url", fake.url]
        ok = subprocess.run(run + ["deploy", FAST_POLL, write(tmp_path, "web.json", WEB)], env=ctl_env(),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert ok.returncode == 0, ok.stderr
        assert "/web succeeded, 3/3 running, 3 healthy" in ok.stdout
        assert "status_update_event" not in ok.stdout  # no events: the polls told
        bad = subprocess.run(run + ["deploy", FAST_POLL, write(tmp_path, "crash.json", {
            "id": "/crash", "cmd": "x", "labels": {"fake.behaviour": "fail"}})],
            env=ctl_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert bad.returncode == 1
        assert "  /crash failed: crash loop" in bad.stderr  # the step's state in GET /v2/deployments
        back = subprocess.run(run + ["deploy", FAST_POLL, write(tmp_path, "back.json", {
            "id": "/back", "cmd": "x", "labels": {"fake.behaviour": "rollback"}})],
            env=ctl_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert back.returncode == 1, "a step back at its previous version is no success"
        assert "  /back rolled back: deadline of 1s passed" in back.stderr
    finally:
        fake.stop()


def test_a_deployment_that_vanishes_leaving_the_app_down_is_a_failure(ctl, api, tmp_path):
    f = write(tmp_path, "v.json", {"id": "/v", "cmd": "x", "instances": 2, "labels": {"fake.behaviour": "vanish"}})
    p = ctl("deploy", f, FAST_POLL)
    assert p.returncode == 1
    assert "it is no longer running, but its apps are not running and healthy" in p.stderr


def test_lost_contact_while_waiting_is_reported_then_regained(pacerctl, api, tmp_path, procs):
    f = write(tmp_path, "held.json", {"id": "/held", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    p = procs.start([pacerctl, "deploy", f, FAST_POLL], env=ctl_env(api.url), inherit_env=False)
    p.wait_output(r"started: /held")
    api.overrides[("GET", "/v2/deployments")] = (503, b'{"message": "not the leader"}')
    p.wait_output(r"lost contact with pacer-scheduler \(503: not the leader\); still waiting")
    del api.overrides[("GET", "/v2/deployments")]
    p.wait_output(r"contact with pacer-scheduler regained")
    assert p.alive()  # a scheduler that fails for a moment does not end the wait
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130


# --------------------------------------------------------------------------------------------------
# deployment stop|rollback|retry


def held_deployment(ctl, tmp_path, apps=("/a", "/b")):
    f = write(tmp_path, "held.json", [{"id": a, "cmd": "x", "labels": {"fake.behaviour": "hold"}} for a in apps])
    return ctl("deploy", "--no-wait", f).stdout.strip()


def test_deployment_actions_on_one_app(ctl, api, tmp_path):
    dep = held_deployment(ctl, tmp_path)
    p = ctl("deployment", "stop", dep, "/a")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"deployment {dep}, app /a: stop accepted; the step is now stopped\n"
    req = api.requests_to("POST", f"/v2/deployments/{dep}/apps/a")[-1]
    assert json.loads(req.body) == {"action": "stop"}
    rows = table(ctl("deployments").stdout)
    assert rows[1][2:5] == ["/a", "start", "stopped"] and rows[2][:3] == ["/b", "start", "running"]
    p = ctl("deployment", "retry", dep, "a")
    assert p.returncode == 0 and p.stdout.endswith("retry accepted; the step is now waiting\n")
    p = ctl("deployment", "retry", dep, "/b", "--json")
    assert p.returncode == 1  # a running step cannot be retried: 409 with the server's reason
    assert "conflict: only a failed or stopped step can be retried (/b is running)" in p.stderr
    assert "--force" not in p.stderr
    p = ctl("deployment", "rollback", dep, "/b")
    assert p.returncode == 1 and "/b has no previous version to roll back to" in p.stderr


def test_deployment_action_json_and_404(ctl, api, tmp_path):
    dep = held_deployment(ctl, tmp_path)
    p = ctl("deployment", "stop", dep, "/a", "--json")
    assert json.loads(p.stdout) == {"deploymentId": dep, "appId": "/a", "state": "stopped"}
    p = ctl("deployment", "stop", "nope", "/a")
    assert p.returncode == 1
    assert p.stderr.startswith("pacerctl: no deployment nope with app /a")
    assert "(see `pacerctl deployments`)" in p.stderr


def test_deployment_stop_and_rollback_whole(ctl, api, tmp_path):
    api.add_app({"id": "/a", "cmd": "x", "labels": {"fake.behaviour": "hold"}})
    dep = ctl("scale", "/a", "3", "--no-wait").stdout.strip()
    p = ctl("deployment", "rollback", dep)
    assert p.returncode == 0, p.stderr
    new = api.deployment_ids()
    assert new == [dep], "the same deployment, turned around"
    assert p.stdout == f"rolling back deployment {dep} in place: its steps now return to the previous versions\n"
    assert api.requests_to("DELETE", f"/v2/deployments/{dep}")[-1].query == {}
    p = ctl("deployment", "stop", new[0])
    assert (p.returncode, p.stdout) == (0, f"stopped deployment {new[0]}\n")
    assert api.requests_to("DELETE", f"/v2/deployments/{new[0]}")[-1].query == {"force": ["true"]}
    assert api.deployment_ids() == []
    p = ctl("deployment", "stop", new[0])
    assert (p.returncode, p.stderr) == (1, f"pacerctl: no deployment {new[0]} (see `pacerctl deployments`)\n")


# --------------------------------------------------------------------------------------------------
# events


def start_events(procs, pacerctl, api, *args):
    p = procs.start([pacerctl, "events", *args], env=ctl_env(api.url), inherit_env=False)
    api.wait_streams(1)
    return p


def test_events_one_line_each_with_server_side_filters(pacerctl, api, procs):
    p = start_events(procs, pacerctl, api, "--type=status_update_event", "--type", "deployment_success",
                     "--app=/prod")
    query = api.stream_requests[0].query
    assert query == {"event_type": ["status_update_event", "deployment_success"], "app_id": ["/prod"]}
    api.publish("status_update_event", {"taskId": "web.1", "appId": "/prod/web", "taskStatus": "TASK_RUNNING"})
    api.publish("status_update_event", {"taskId": "db.1", "appId": "/dev/db", "taskStatus": "TASK_RUNNING"})
    api.publish("api_post_event", {"appId": "/prod/web"})
    api.publish("status_update_event", {"taskId": "web.2", "appId": "/prod/web", "taskStatus": "TASK_FAILED",
                                        "message": "exit 1"})
    m = p.wait_output(r"web\.2")
    assert m
    lines = p.lines()
    assert len(lines) == 2
    assert lines[0].split(" ", 1)[1] == ("status_update_event taskId=web.1 appId=/prod/web "
                                         "taskStatus=TASK_RUNNING")
    assert lines[1].endswith('taskStatus=TASK_FAILED message="exit 1"')
    assert lines[0][:4].isdigit() and lines[0][19:24].startswith(".")  # an ISO-8601 timestamp first


def test_events_json_lines_are_the_event_data(pacerctl, api, procs):
    p = start_events(procs, pacerctl, api, "--json", "--count=2")
    api.publish("deployment_info", {"deploymentId": "d1", "appId": "/a", "action": "ScaleApplication"})
    api.publish("app_terminated_event", {"appId": "/a"})
    assert p.wait_exit() == 0
    docs = [json.loads(line) for line in p.lines()]
    assert [d["eventType"] for d in docs] == ["deployment_info", "app_terminated_event"]
    assert docs[0]["deploymentId"] == "d1"


def test_events_reconnect_with_last_event_id(pacerctl, api, procs):
    p = start_events(procs, pacerctl, api)
    ids = [api.publish("status_update_event", {"taskId": f"t{i}", "appId": "/a"}) for i in range(3)]
    p.wait_output(r"taskId=t2")
    api.drop_streams()
    # published while pacerctl is away: the server must replay them
    for i in range(3, 5):
        api.publish("status_update_event", {"taskId": f"t{i}", "appId": "/a"})
    p.wait_output(r"taskId=t4")
    reqs = api.wait_stream_requests(2)
    assert "Last-Event-ID" not in reqs[0].headers
    assert reqs[1].headers["Last-Event-ID"] == str(ids[-1])
    tasks = [line.split("taskId=")[1].split()[0] for line in p.lines()]
    assert tasks == ["t0", "t1", "t2", "t3", "t4"]  # none missed, none twice
    p.wait_output(r"event stream resumed after event %d" % ids[-1], stream="stderr")
    assert "event stream lost (the server closed it); reconnecting" in p.stderr


def test_events_subscriber_dropped_resumes(pacerctl, api, procs):
    p = start_events(procs, pacerctl, api)
    eid = api.publish("status_update_event", {"taskId": "t0", "appId": "/a"})
    p.wait_output(r"taskId=t0")
    api.publish("pacer_subscriber_dropped", {"reason": "too slow: its queue was full"})
    api.drop_streams()
    api.publish("status_update_event", {"taskId": "t1", "appId": "/a"})
    p.wait_output(r"taskId=t1")
    p.wait_output(r"pacer-scheduler dropped this subscriber \(too slow\); resuming after event %d" % (eid + 1),
                  stream="stderr")
    assert "pacer_subscriber_dropped" not in p.stdout


def test_events_last_event_id_flag_replays(pacerctl, api, procs):
    first = api.publish("status_update_event", {"taskId": "old0", "appId": "/a"})
    api.publish("status_update_event", {"taskId": "old1", "appId": "/a"})
    p = procs.start([pacerctl, "events", f"--last-event-id={first}", "--count=1"], env=ctl_env(api.url),
                    inherit_env=False)
    assert p.wait_exit() == 0
    assert "taskId=old1" in p.stdout and "old0" not in p.stdout
    assert api.stream_requests[0].headers["Last-Event-ID"] == str(first)


def test_events_refused_stream_exits_1(pacerctl, tmp_path):
    fake = FakePacerApi(events=False).start()
    try:
        p = subprocess.run([str(pacerctl), "--url", fake.url, "events"], env=ctl_env(), capture_output=True,
                           text=True, timeout=RUN_TIMEOUT)
        assert p.returncode == 1
        assert "GET /v2/events: not found (404" in p.stderr
    finally:
        fake.stop()


def test_events_oversized_and_malformed_events_are_skipped(pacerctl, api, procs):
    p = start_events(procs, pacerctl, api)
    big = api.publish("status_update_event", {"appId": "/a", "blob": "x" * (70 * 1024)})
    bad = api.publish_raw("status_update_event", "{not json")
    api.publish_raw("status_update_event", '{"taskId": "multi",\n "appId": "/a"}')  # two data: lines
    api.publish("status_update_event", {"taskId": "after", "appId": "/a"})
    p.wait_output(r"taskId=after")
    p.wait_output(rf"skipped event {big} \(status_update_event\): larger than 65536 bytes", stream="stderr")
    p.wait_output(rf"skipped event {bad} \(status_update_event\): its data is not a JSON object: invalid JSON",
                  stream="stderr")
    assert [line.split(" ", 2)[2] for line in p.lines()] == ["taskId=multi appId=/a", "taskId=after appId=/a"]


def test_events_ends_when_stdout_closes(pacerctl, api):
    """`pacerctl events | head -1`: the pipe closing ends pacerctl instead of leaving it behind."""
    proc = subprocess.Popen([str(pacerctl), "events"], env=ctl_env(api.url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        api.wait_streams(1)
        api.publish("status_update_event", {"taskId": "t0", "appId": "/a"})
        assert b"t0" in proc.stdout.readline()
        proc.stdout.close()
        api.publish("status_update_event", {"taskId": "t1", "appId": "/a"})
        assert proc.wait(RUN_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


# --------------------------------------------------------------------------------------------------
# tokens


def test_token_from_flag_and_environment(pacerctl, tmp_path):
    fake = FakePacerApi(token="t0ken", readonly_token="viewer").start()
    try:
        def run(*args, env=None):
            return subprocess.run([str(pacerctl), "--url", fake.url, *args], env=ctl_env(None, env),
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT)

        p = run("apps")
        assert p.returncode == 1
        assert p.stderr == (f"pacerctl: pacer-scheduler at {fake.url} wants a token (401: Unauthorized: a valid "
                            f"bearer token is required) — pass --token or set PACER_TOKEN\n")
        p = run("apps", "--token=wrong")
        assert p.returncode == 1 and "did not accept the token" in p.stderr and "--token" in p.stderr
        assert run("apps", "--token=t0ken").returncode == 0
        assert run("apps", env={"PACER_TOKEN": "t0ken"}).returncode == 0
        assert fake.requests[-1].headers["Authorization"] == "Bearer t0ken"
        fake.add_app({"id": "/a", "cmd": "x"})
        p = run("scale", "/a", "2", env={"PACER_TOKEN": "viewer"})
        assert p.returncode == 1
        assert "not allowed to PATCH /v2/apps/a (403: token may not PATCH)" in p.stderr
        assert "--token or PACER_TOKEN" in p.stderr
        # the event stream carries the token too
        p = run("events", "--count=1", env={"PACER_TOKEN": "wrong"})
        assert p.returncode == 1 and "did not accept the token" in p.stderr
    finally:
        fake.stop()


# --------------------------------------------------------------------------------------------------
# terminals and hostile servers


def run_in_pty(argv, env, timeout=RUN_TIMEOUT):
    """Runs argv with stdout on a pseudo-terminal; returns (exit code, what it wrote there)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as e:
                if e.errno == errno.EIO:  # the terminal's other side is closed
                    break
                raise
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout), out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        os.close(master)


def test_terminal_gets_an_updating_line_and_colours(pacerctl, api, tmp_path):
    f = write(tmp_path, "web.json", WEB)
    rc, out = run_in_pty([str(pacerctl), "deploy", f], ctl_env(api.url, {"TERM": "xterm"}))
    assert rc == 0, out
    assert "\r\x1b[Kdeployment " in out  # the status line is redrawn in place
    assert "\x1b[32mdeployment " in out  # success in green
    rc, out = run_in_pty([str(pacerctl), "delete", "/web"], ctl_env(api.url, {"TERM": "xterm", "NO_COLOR": "1"}))
    assert rc == 0
    assert "\r\x1b[K" in out and "\x1b[32m" not in out


def test_hostile_strings_from_the_server_are_neutralised(ctl, api, procs, pacerctl):
    api.add_app({"id": "/evil\x1b]0;pwned\x07\x1b[2J", "cmd": "x"})
    api.add_app({"id": "/lab", "cmd": "\x1b[2J", "labels": {"k": "\x9b31m\x1b[31m"}})
    for args in (["apps"], ["tasks"], ["app", "/lab"], ["deployments"]):
        p = ctl(*args)
        assert p.returncode == 0, p.stderr
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\x9b" not in p.stdout
    assert "/evil?]0;pwned??[2J" in ctl("apps").stdout
    assert "LABELS         k=?31m?[31m" in ctl("app", "/lab").stdout
    p = start_events(procs, pacerctl, api)
    api.publish("status_update_event", {"appId": "/a", "message": "\x1b[31mred\x1b[0m"})
    p.wait_output(r"red")
    assert "\x1b" not in p.stdout


@pytest.mark.parametrize("body,message", [
    (b"{not json", "pacer-scheduler answered GET /v2/apps with invalid JSON"),
    (b'{"apps": 3}', 'pacer-scheduler answered GET /v2/apps without an "apps" list'),
    (b"[" * 1000 + b"]" * 1000, "nested deeper than"),
])
def test_malformed_answers_are_errors_not_crashes(ctl, api, body, message):
    api.overrides[("GET", "/v2/apps")] = (200, body)
    p = ctl("apps")
    assert p.returncode == 1
    assert message in p.stderr


def test_server_errors_quote_the_server(ctl, api):
    api.overrides[("GET", "/v2/info")] = (500, b'{"message": "store is down"}')
    p = ctl("info")
    assert p.returncode == 1
    assert p.stderr == f"pacerctl: pacer-scheduler at {api.url} failed GET /v2/info (500: store is down)\n"
    api.overrides[("GET", "/v2/info")] = (502, b"Bad Gateway\n")
    assert "(502: Bad Gateway)" in ctl("info").stderr
