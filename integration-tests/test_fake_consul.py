"""Tests of the Consul agent double (fakes/consul.py).

Most behavioural tests run twice: against the fake and against the real Consul 1.10 agent
(consul_support.RealConsul, from the tarball in $PACER_EXT_DIR, i.e. ../shared/ext; the "real"
runs carry the `real` marker, so they are skipped without it and fail with PACER_REQUIRE_REAL=1).
Running both is what keeps the fake honest: an assertion that holds for one and not the other is
a bug in the fake.  The fault-injection knobs (hang, fail_with, go_down, ...) exist only in the fake.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
import tracemalloc
import urllib.parse
import uuid
from typing import Any, Optional

import pytest

from consul_support import RealConsul, consul_binary
from fakes.consul import FakeConsul, GoDurationError, ListTimeline, parse_go_duration
from harness import wait_for

HTTP_TIMEOUT = 10.0
WAIT_TIMEOUT = 5.0  # for state that changes on a timer inside the agent
FAKE_LEADER = "127.0.0.1:8300"


# ---------------------------------------------------------------------------------------------
# HTTP helpers


@dataclasses.dataclass
class Resp:
    status: int
    headers: dict  # lower-case name -> value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def call(port: int, method: str, path: str, body: Any = None, headers: Optional[dict] = None,
         timeout: float = HTTP_TIMEOUT) -> Resp:
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def fake_register(fake: FakeConsul, body: Any, headers: Optional[dict] = None, **kw) -> Resp:
    return call(fake.port, "PUT", "/v1/agent/service/register", body, headers, **kw)


def eventually(fn, what: str, timeout: float = WAIT_TIMEOUT):
    """For agent state that changes on a timer (TTL expiry, reaping, catalog sync): the real agent
    offers nothing to await, so both agents are polled alike."""
    return wait_for(fn, timeout, what)


def uid() -> str:
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------------
# Agents: the fake, and the real binary when available


@dataclasses.dataclass
class Agent:
    """The HTTP face shared by the fake and the real agent."""

    kind: str  # "fake" or "real", for failure reports
    port: int
    token: Optional[str] = None  # management token of an ACL-enabled agent

    def req(self, method: str, path: str, body: Any = None, headers: Optional[dict] = None, **kw) -> Resp:
        return call(self.port, method, path, body, headers, **kw)

    def register(self, body: dict, query: str = "", headers: Optional[dict] = None) -> Resp:
        return self.req("PUT", "/v1/agent/service/register" + query, body, headers)

    def checks(self, headers: Optional[dict] = None) -> dict:
        r = self.req("GET", "/v1/agent/checks", headers=headers)
        assert r.status == 200, r
        return r.json()

    def services(self, headers: Optional[dict] = None) -> dict:
        r = self.req("GET", "/v1/agent/services", headers=headers)
        assert r.status == 200, r
        return r.json()


def _real_agent(request, tmp_path_factory, acl_token: Optional[str] = None):
    binary = consul_binary(tmp_path_factory.getbasetemp())
    real = RealConsul(binary, tmp_path_factory.mktemp("consul"), acl_token=acl_token)
    request.addfinalizer(real.stop)
    real.start()
    return Agent("real", real.port, token=acl_token)


@pytest.fixture(scope="module")
def real_plain(request, tmp_path_factory):
    return _real_agent(request, tmp_path_factory)


@pytest.fixture(scope="module")
def real_acl(request, tmp_path_factory):
    return _real_agent(request, tmp_path_factory, acl_token="mgmt-" + uid())


@pytest.fixture
def fake():
    f = FakeConsul(leader=FAKE_LEADER).start()
    yield f
    f.stop()


BOTH = ["fake", pytest.param("real", marks=pytest.mark.real)]


@pytest.fixture(params=BOTH)
def agent(request):
    if request.param == "real":
        return request.getfixturevalue("real_plain")
    return Agent("fake", request.getfixturevalue("fake").port)


@pytest.fixture(params=BOTH)
def acl_agent(request):
    if request.param == "real":
        return request.getfixturevalue("real_acl")
    token = "mgmt-" + uid()
    f = FakeConsul(leader=FAKE_LEADER, acl_token=token).start()
    request.addfinalizer(f.stop)
    return Agent("fake", f.port, token)


# ---------------------------------------------------------------------------------------------
# Registration


def test_register_and_list_shapes(agent):
    sid, name = "web-" + uid(), "web" + uid()
    # lower-case keys and a snake_case alias, as Go's decoder and Consul accept them
    r = agent.register({"name": name, "id": sid, "port": 8080, "address": "10.1.2.3", "tags": ["a", "b"],
                        "meta": {"task_id": "T1"}, "enable_tag_override": True})
    assert (r.status, r.body) == (200, b"")
    assert "content-type" not in r.headers
    assert r.headers["x-consul-default-acl-policy"] == "allow"

    r = agent.req("GET", "/v1/agent/services")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    tagged = {"Address": "10.1.2.3", "Port": 8080}
    assert r.json()[sid] == {
        "ID": sid, "Service": name, "Tags": ["a", "b"], "Meta": {"task_id": "T1"}, "Port": 8080,
        "Address": "10.1.2.3", "SocketPath": "",
        "TaggedAddresses": {"lan_ipv4": tagged, "wan_ipv4": tagged},
        "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": True, "Datacenter": "dc1",
    }

    r = agent.req("GET", f"/v1/agent/service/{sid}")
    assert r.status == 200
    one = r.json()
    assert one["ID"] == sid and one["Service"] == name
    assert one["ContentHash"] == r.headers["x-consul-contenthash"] and one["ContentHash"]

    r = agent.req("GET", "/v1/agent/service/nope-" + sid)
    assert (r.status, r.text) == (404, "unknown service ID: nope-" + sid)
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_register_defaults_id_to_name_and_accepts_go_forms(agent):
    name = "svc-" + uid()
    # a bare number is nanoseconds; Go duration forms; trailing bytes after the JSON value ignored
    body = json.dumps({"Name": name, "Tags": None, "Meta": None,
                       "Checks": [{"TTL": 30_000_000_000}, {"TTL": "1h30m"}, {"TTL": ".5s"},
                                  {"TTL": "5\u00b5s", "Interval": None}]}) + " trailing junk"
    r = agent.register(body)
    assert r.status == 200, r
    assert agent.services()[name]["Tags"] == []
    ids = sorted(c for c, v in agent.checks().items() if v["ServiceID"] == name)
    assert ids == [f"service:{name}:{n}" for n in (1, 2, 3, 4)]


DECODE = "Request decode failed: "
REJECTED = [
    ("{}", 400, "Missing service name"),
    ('{"Name":""}', 400, "Missing service name"),
    ("", 400, "Request decode failed: EOF"),
    ('{"Name":', 400, "Request decode failed: unexpected EOF"),
    ('{"Name":x}', 400, "Request decode failed: invalid character 'x' looking for beginning of value"),
    ('{"Name":"N",}', 400, DECODE + "invalid character '}' looking for beginning of object key string"),
    ('{"Name":"N","Tags":["a" "b"]}', 400, DECODE + "invalid character '\"' after array element"),
    ('{"Name":"N","Port":nulx}', 400, DECODE + "invalid character 'x' in literal null (expecting 'l')"),
    ('{"Name":"N","Unknown":1}', 400, 'Request decode failed: json: unknown field "Unknown"'),
    ('{"Name":"N","Namespace":"ns"}', 400, 'Request decode failed: json: unknown field "Namespace"'),
    ('{"Name":"N","Check":{"TTL":"5s","UDP":"x"}}', 400, 'Request decode failed: json: unknown field "UDP"'),
    ('{"Name":"N","Port":"80"}', 400,
     "Request decode failed: json: cannot unmarshal string into Go struct field .Port of type int"),
    ('{"Name":"N","Port":1.5}', 400,
     "Request decode failed: json: cannot unmarshal number 1.5 into Go struct field .Port of type int"),
    ('{"Name":"N","Tags":[1]}', 400,
     "Request decode failed: json: cannot unmarshal number into Go struct field .Tags of type string"),
    ('{"Name":"N","Check":{"TTL":"10"}}', 400, 'Request decode failed: time: missing unit in duration "10"'),
    # an error inside a check ends the decode at once and beats an earlier plain-field error
    ('{"Name":"N","Port":"a","Check":{"TTL":"5s","Foo":1}}', 400, DECODE + 'json: unknown field "Foo"'),
    ('{"Name":"N","Port":"a","Checks":[{"TTL":"x"}]}', 400, DECODE + 'time: invalid duration "x"'),
    # check durations are parsed after the check's fields, Interval before TTL
    ('{"Name":"N","Check":{"TTL":"x","Interval":"y"}}', 400, DECODE + 'time: invalid duration "y"'),
    ('{"Name":"N","Check":{"TTL":"x","Name":1}}', 400,
     DECODE + "json: cannot unmarshal number into Go struct field .Check of type string"),
    ('{"Name":"N","Kind":1}', 400,
     DECODE + "json: cannot unmarshal number into Go struct field .Kind of type structs.ServiceKind"),
    ('{"Name":"N","Checks":{}}', 400,
     DECODE + "json: cannot unmarshal object into Go struct field .Checks of type structs.CheckTypes"),
    ('{"Name":"N","Check":{"TTL":"5s","DeregisterCriticalServiceAfter":"1d"}}', 400,
     'Request decode failed: time: unknown unit "d" in duration "1d"'),
    ('{"Name":"N","Check":{"TTL":"10s","Interval":"5s"}}', 400,
     "Invalid check: Interval and TTL cannot both be specified"),
    ('{"Name":"N","Check":{"HTTP":"http://127.0.0.1:1/"}}', 400,
     "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"),
    ('{"Name":"N","Check":{"Status":"passing"}}', 400, "Invalid check: TTL must be > 0 for TTL checks"),
    ('{"Name":"N","Checks":[{}]}', 400, "Invalid check: TTL must be > 0 for TTL checks"),
    ('{"Name":"N","Check":{"TTL":"5s","Status":"Passing"}}', 400,
     "Status for checks must 'passing', 'warning', 'critical'"),
    ('{"Name":"N","Address":"0.0.0.0"}', 400, "Invalid service address"),
    ('{"Name":"N","Weights":{"Passing":0,"Warning":1}}', 400,
     "Invalid Weights: Passing must be greater than 0"),
    ('{"Name":"N","Meta":{"consul-x":"1"}}', 400,
     "Invalid Service Meta: Couldn't load metadata pair ('consul-x', '1'): "
     "Key prefix 'consul-' is reserved for internal use"),
    ('{"Name":"N","Meta":{"a b":"1"}}', 400,
     "Invalid Service Meta: Couldn't load metadata pair ('a b', '1'): Key contains invalid characters"),
    ('{"Name":"N","Meta":{%s}}' % ",".join(f'"k{i}":"v"' for i in range(65)), 400,
     "Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs"),
    ('{"Name":"N","Meta":{"k":"%s"}}' % ("v" * 513), 400,
     "Invalid Service Meta: Couldn't load metadata pair ('k', '%s'): "
     "Value is too long (limit: 512 characters)" % ("v" * 513)),
    ('{"Name":"N","Meta":{"consul-x":"1"},"Check":{"TTL":"1s","Interval":"1s"}}', 400,
     "Invalid Service Meta: Couldn't load metadata pair ('consul-x', '1'): "
     "Key prefix 'consul-' is reserved for internal use"),
    ('{"Name":"N","Checks":[{"ScriptArgs":["true"],"Interval":"10s"}]}', 500,
     "Scripts are disabled on this agent from remote calls; "
     "to enable, configure 'enable_script_checks' to true"),
    ("[" * 20000, 400, "Request decode failed: invalid character '[' exceeded max depth"),
]


@pytest.mark.parametrize("body,status,message", REJECTED, ids=range(len(REJECTED)))
def test_register_rejects_like_consul(agent, body, status, message):
    name = "rej-" + uid()
    r = agent.register(body.replace('"N"', json.dumps(name)))
    assert (r.status, r.text) == (status, message)
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert name not in agent.services()


def test_null_check_entry_drops_the_connection(agent):
    # Consul 1.10 dereferences the nil check and net/http closes the connection unanswered
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        agent.register({"Name": "null-" + uid(), "Checks": [None]})
    assert agent.req("GET", "/v1/status/leader").status == 200


def test_wrong_method_and_options(agent):
    r = agent.req("GET", "/v1/agent/service/register")
    assert (r.status, r.text, r.headers["allow"]) == (405, "method GET not allowed", "OPTIONS,PUT")
    r = agent.req("POST", "/v1/agent/check/pass/whatever")
    assert (r.status, r.text, r.headers["allow"]) == (405, "method POST not allowed", "OPTIONS,PUT")
    r = agent.req("PUT", "/v1/agent/services")
    assert (r.status, r.headers["allow"]) == (405, "OPTIONS,GET")
    r = agent.req("OPTIONS", "/v1/agent/services")
    assert (r.status, r.headers["allow"], r.body) == (200, "OPTIONS,GET", b"")
    r = agent.req("GET", "/v1/no/such/endpoint/at/all")
    assert r.status == 404


def test_keep_alive_reuses_the_connection(agent):
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("PUT", "/v1/agent/service/register", body=json.dumps({"Name": "ka-" + uid()}))
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"")
        first = conn.sock
        conn.request("GET", "/v1/agent/services")
        r = conn.getresponse()
        assert r.status == 200 and r.read()
        assert conn.sock is first
    finally:
        conn.close()


def test_chunked_request_body(agent):
    name = "chunk-" + uid()
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=HTTP_TIMEOUT)
    try:
        parts = iter([b'{"Name":', json.dumps(name).encode(), b"}"])
        conn.request("PUT", "/v1/agent/service/register", body=parts, encode_chunked=True)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert name in agent.services()


# ---------------------------------------------------------------------------------------------
# Deregistration


def test_deregister_then_again(agent):
    sid = "dereg-" + uid()
    assert agent.register({"Name": "dereg", "ID": sid, "Check": {"TTL": "30s"}}).status == 200
    assert f"service:{sid}" in agent.checks()
    r = agent.req("PUT", f"/v1/agent/service/deregister/{sid}")
    assert (r.status, r.body) == (200, b"")
    assert sid not in agent.services()
    assert f"service:{sid}" not in agent.checks()
    # Consul 1.10 without ACLs: an unknown ID is a no-op (newer agents answer 404)
    r = agent.req("PUT", f"/v1/agent/service/deregister/{sid}")
    assert (r.status, r.body) == (200, b"")


def test_unknown_id_404_mode():
    with FakeConsul(leader=FAKE_LEADER, unknown_id_404=True) as f:
        r = call(f.port, "PUT", "/v1/agent/service/deregister/gone")
        assert (r.status, r.text) == (
            404, 'Unknown service ID "gone". Ensure that the service ID is passed, not the service name.')
        r = call(f.port, "PUT", "/v1/agent/check/pass/gone")
        assert (r.status, r.text) == (
            404, 'Unknown check ID "gone". Ensure that the check ID is passed, not the check name.')


# ---------------------------------------------------------------------------------------------
# Checks


def test_ttl_pass_warn_fail_update(agent):
    sid = "ttl-" + uid()
    cid = f"service:{sid}"
    assert agent.register({"Name": "ttl", "ID": sid, "Check": {"TTL": "30s"}}).status == 200
    assert agent.checks()[cid]["Status"] == "critical"
    assert agent.checks()[cid]["Type"] == "ttl"

    r = agent.req("PUT", f"/v1/agent/check/pass/{cid}?note=" + urllib.parse.quote("hello world"))
    assert (r.status, r.body) == (200, b"")
    assert (agent.checks()[cid]["Status"], agent.checks()[cid]["Output"]) == ("passing", "hello world")
    assert agent.req("PUT", f"/v1/agent/check/warn/{cid}").status == 200
    assert (agent.checks()[cid]["Status"], agent.checks()[cid]["Output"]) == ("warning", "")
    assert agent.req("PUT", f"/v1/agent/check/fail/{cid}?note=down").status == 200
    assert (agent.checks()[cid]["Status"], agent.checks()[cid]["Output"]) == ("critical", "down")
    r = agent.req("PUT", f"/v1/agent/check/update/{cid}", {"status": "passing", "Output": "o"})
    assert (r.status, r.body) == (200, b"")
    assert (agent.checks()[cid]["Status"], agent.checks()[cid]["Output"]) == ("passing", "o")

    r = agent.req("PUT", f"/v1/agent/check/update/{cid}", {"Status": "bogus"})
    assert (r.status, r.text) == (400, "Invalid check status: 'bogus'")
    r = agent.req("PUT", f"/v1/agent/check/update/{cid}", {"Status": "passing", "Extra": 1})
    assert (r.status, r.text) == (400, 'Request decode failed: json: unknown field "Extra"')
    r = agent.req("GET", f"/v1/agent/check/pass/{cid}")
    assert (r.status, r.text, r.headers["allow"]) == (405, "method GET not allowed", "OPTIONS,PUT")
    r = agent.req("PUT", f"/v1/agent/check/pass/nope-{sid}")
    assert (r.status, r.text) == (500, f'CheckID "nope-{sid}" does not have associated TTL')
    assert agent.checks()[cid]["Status"] == "passing"


def test_check_output_is_truncated(agent):
    sid = "trunc-" + uid()
    body = {"Name": "trunc", "ID": sid, "Check": {"TTL": "30s", "OutputMaxSize": 10}}
    assert agent.register(body).status == 200
    assert agent.req("PUT", f"/v1/agent/check/pass/service:{sid}?note=" + "x" * 50).status == 200
    assert agent.checks()[f"service:{sid}"]["Output"] == "x" * 10 + " ... (captured 10 of 50 bytes)"


def test_non_ttl_check_cannot_be_updated(agent):
    sid = "http-" + uid()
    check = {"HTTP": "http://127.0.0.1:1/", "Interval": "10s", "Timeout": "1s"}
    body = {"Name": "http", "ID": sid, "Check": check}
    assert agent.register(body).status == 200
    assert agent.checks()[f"service:{sid}"]["Type"] == "http"
    r = agent.req("PUT", f"/v1/agent/check/pass/service:{sid}")
    assert (r.status, r.text) == (500, f'CheckID "service:{sid}" does not have associated TTL')


def test_ttl_expiry(agent):
    sid = "exp-" + uid()
    checks = [{"CheckID": f"{sid}-quiet", "TTL": "1s", "Status": "passing"},
              {"CheckID": f"{sid}-noted", "TTL": "1s"}]
    t0 = time.monotonic()
    assert agent.register({"Name": "exp", "ID": sid, "Checks": checks}).status == 200
    assert agent.req("PUT", f"/v1/agent/check/pass/{sid}-noted?note=last%20words").status == 200
    quiet = eventually(lambda: (c := agent.checks()[f"{sid}-quiet"])["Status"] == "critical" and c,
                       what="TTL expiry")
    assert time.monotonic() - t0 >= 0.9
    assert quiet["Output"] == "TTL expired"
    noted = eventually(lambda: (c := agent.checks()[f"{sid}-noted"])["Status"] == "critical" and c,
                       what="TTL expiry")
    assert noted["Output"] == "TTL expired (last output before timeout follows): last words"


def test_ttl_timer_restarts_on_each_update(agent):
    sid = "beat-" + uid()
    cid = f"service:{sid}"
    assert agent.register({"Name": "beat", "ID": sid, "Check": {"TTL": "1s"}}).status == 200
    end = time.monotonic() + 2.0
    while time.monotonic() < end:  # heartbeats well inside the TTL keep the check passing
        assert agent.req("PUT", f"/v1/agent/check/pass/{cid}").status == 200
        time.sleep(0.25)
        assert agent.checks()[cid]["Status"] == "passing"
    eventually(lambda: agent.checks()[cid]["Status"] == "critical", what="expiry after heartbeats stop")


def test_auto_check_ids_and_names(agent):
    one, many = "one-" + uid(), "many-" + uid()
    assert agent.register({"Name": "auto", "ID": one, "Check": {"TTL": "30s"}}).status == 200
    body = {"Name": "auto", "ID": many, "Check": {"TTL": "30s"},
            "Checks": [{"TTL": "30s", "CheckID": f"{many}-custom"}, {"TTL": "30s", "Name": "mine"}]}
    assert agent.register(body).status == 200
    checks = agent.checks()
    assert checks[f"service:{one}"]["Name"] == "Service 'auto' check"
    assert sorted(c for c, v in checks.items() if v["ServiceID"] == many) == sorted(
        [f"service:{many}:1", f"{many}-custom", f"service:{many}:3"])
    assert checks[f"service:{many}:3"]["Name"] == "mine"


def test_initial_status_and_reregistration_keeps_status(agent):
    sid = "keep-" + uid()
    cid = f"service:{sid}"
    body = {"Name": "keep", "ID": sid, "Check": {"TTL": "30s", "Status": "passing"}}
    assert agent.register(body).status == 200
    assert agent.checks()[cid]["Status"] == "passing"
    assert agent.req("PUT", f"/v1/agent/check/warn/{cid}?note=slow").status == 200
    # re-registering the same check ID keeps the live status and output, whatever Status says
    assert agent.register(body).status == 200
    assert (agent.checks()[cid]["Status"], agent.checks()[cid]["Output"]) == ("warning", "slow")


def test_repeated_check_id_in_one_request_takes_the_last(agent):
    sid = "dup-" + uid()
    checks = [{"TTL": "30s", "CheckID": f"{sid}-c"},
              {"TTL": "30s", "CheckID": f"{sid}-c", "Status": "passing"}]
    assert agent.register({"Name": "dup", "ID": sid, "Checks": checks}).status == 200
    mine = {c: v for c, v in agent.checks().items() if v["ServiceID"] == sid}
    assert list(mine) == [f"{sid}-c"] and mine[f"{sid}-c"]["Status"] == "passing"


@pytest.mark.parametrize("query,replaced", [("", True), ("=", True), ("=true", True),
                                            ("=false", False), ("=1", False)])
def test_replace_existing_checks(agent, query, replaced):
    sid = "repl-" + uid()
    two = [{"TTL": "30s", "CheckID": f"{sid}-a"}, {"TTL": "30s", "CheckID": f"{sid}-b"}]
    assert agent.register({"Name": "repl", "ID": sid, "Checks": two}).status == 200
    r = agent.register({"Name": "repl", "ID": sid, "Check": {"TTL": "30s", "CheckID": f"{sid}-c"}},
                       query="?replace-existing-checks" + query)
    assert r.status == 200
    ids = sorted(c for c, v in agent.checks().items() if v["ServiceID"] == sid)
    assert ids == ([f"{sid}-c"] if replaced else [f"{sid}-a", f"{sid}-b", f"{sid}-c"])


# ---------------------------------------------------------------------------------------------
# Health and catalog


def test_agent_health_by_id(agent):
    name = "ah-" + uid()
    for sid, status in (("p", "passing"), ("w", "warning"), ("c", "critical")):
        body = {"Name": name, "ID": f"{name}-{sid}", "Check": {"TTL": "30s", "Status": status}}
        assert agent.register(body).status == 200
    assert agent.register({"Name": name, "ID": f"{name}-none"}).status == 200
    for sid, code, word in (("p", 200, "passing"), ("w", 429, "warning"), ("c", 503, "critical"),
                            ("none", 200, "passing")):
        r = agent.req("GET", f"/v1/agent/health/service/id/{name}-{sid}")
        assert (r.status, r.json()["AggregatedStatus"], r.headers["x-consul-reason"]) == (code, word, word)
        assert r.json()["Service"]["ID"] == f"{name}-{sid}"
        r = agent.req("GET", f"/v1/agent/health/service/id/{name}-{sid}?format=text")
        assert (r.status, r.text) == (code, word)
    r = agent.req("GET", f"/v1/agent/health/service/id/{name}-gone")
    assert r.status == 404
    assert r.headers["x-consul-reason"] == f"ServiceId {name}-gone not found"
    assert r.json() == {"AggregatedStatus": "critical", "Service": None, "Checks": None}
    r = agent.req("GET", f"/v1/agent/health/service/name/{name}?format=text")
    assert (r.status, r.text) == (503, "critical")
    r = agent.req("GET", f"/v1/agent/health/service/name/{name}-gone")
    assert (r.status, r.json()) == (404, [])
    r = agent.req("GET", f"/v1/agent/health/service/name/{name}-gone?format=text")
    assert (r.status, r.text) == (404, f"ServiceName {name}-gone Not Found")
    assert r.headers["content-type"] == "text/plain"
    r = agent.req("GET", f"/v1/agent/health/service/id/{name}-gone?format=text")
    assert (r.status, r.json()) == (404, f"ServiceId {name}-gone not found")


@pytest.mark.parametrize("path,status,message", [
    ("/v1/agent/health/service/id/", 500, "Bad request: Missing serviceID"),
    ("/v1/agent/health/service/name/", 500, "Bad request: Missing service Name"),
    ("/v1/health/service/", 400, "Missing service name"),
    ("/v1/catalog/service/", 400, "Missing service name"),
    ("/v1/agent/service/", 404, "unknown service ID: "),
])
def test_empty_names(agent, path, status, message):
    r = agent.req("GET", path)
    assert (r.status, r.text) == (status, message)


def _health(agent: Agent, name: str, query: str = "") -> Resp:
    r = agent.req("GET", f"/v1/health/service/{name}{query}")
    assert r.status == 200, r
    return r


def test_health_service_and_catalog(agent):
    name = "hs-" + uid()
    for sid, status in (("b", "passing"), ("a", "warning"), ("c", "critical")):
        body = {"Name": name, "ID": f"{name}-{sid}", "Port": 9000, "Check": {"TTL": "30s", "Status": status}}
        assert agent.register(body).status == 200
    entries = eventually(lambda: len(_health(agent, name).json()) == 3 and _health(agent, name).json(),
                         what="catalog sync")
    assert [e["Service"]["ID"] for e in entries] == [f"{name}-a", f"{name}-b", f"{name}-c"]
    for e in entries:
        assert e["Checks"][0]["CheckID"] == "serfHealth"
        assert e["Checks"][1]["CheckID"] == f"service:{e['Service']['ID']}"
        assert e["Service"]["Port"] == 9000 and e["Node"]["Node"]
    r = eventually(lambda: (r := _health(agent, name, "?passing")).json() and r, what="passing filter")
    assert [e["Service"]["ID"] for e in r.json()] == [f"{name}-b"]
    assert int(r.headers["x-consul-index"]) > 0
    assert [e["Service"]["ID"] for e in _health(agent, name, "?passing=false").json()] == [
        f"{name}-a", f"{name}-b", f"{name}-c"]
    r = agent.req("GET", f"/v1/health/service/{name}?passing=maybe")
    assert (r.status, r.text) == (400, "Invalid value for ?passing")
    assert _health(agent, "nothing-" + name).json() == []

    r = agent.req("GET", f"/v1/catalog/service/{name}")
    assert r.status == 200 and int(r.headers["x-consul-index"]) > 0
    rows = r.json()
    assert [row["ServiceID"] for row in rows] == [f"{name}-a", f"{name}-b", f"{name}-c"]
    assert {row["ServiceName"] for row in rows} == {name}
    assert rows[0]["ServicePort"] == 9000 and rows[0]["ServiceAddress"] == "" and rows[0]["Address"]
    assert agent.req("GET", f"/v1/catalog/service/nothing-{name}").json() == []


def test_catalog_gets_output_only_changes_late(agent):
    sid = "out-" + uid()
    name = "out" + uid()
    assert agent.register({"Name": name, "ID": sid, "Check": {"TTL": "60s"}}).status == 200
    assert agent.req("PUT", f"/v1/agent/check/pass/service:{sid}?note=a").status == 200

    def catalog_check():
        entries = _health(agent, name).json()
        return entries and entries[0]["Checks"][1]

    eventually(lambda: catalog_check() and catalog_check()["Status"] == "passing", what="status sync")
    assert catalog_check()["Output"] == "a"
    assert agent.req("PUT", f"/v1/agent/check/pass/service:{sid}?note=b").status == 200
    time.sleep(0.3)  # a negative assertion: nothing to wait for but time
    assert agent.checks()[f"service:{sid}"]["Output"] == "b"
    assert catalog_check()["Output"] == "a"


def test_catalog_output_sync_after_interval():
    with FakeConsul(leader=FAKE_LEADER, check_update_interval=0.2) as f:
        body = {"Name": "o", "Check": {"TTL": "60s"}}
        assert fake_register(f, body).status == 200
        call(f.port, "PUT", "/v1/agent/check/pass/service:o?note=a")
        call(f.port, "PUT", "/v1/agent/check/pass/service:o?note=b")

        def out():
            return call(f.port, "GET", "/v1/health/service/o").json()[0]["Checks"][1]["Output"]

        assert out() == "a"
        eventually(lambda: out() == "b", what="deferred output sync")


def test_blocking_query(agent):
    name = "blk-" + uid()
    assert agent.register({"Name": name, "ID": f"{name}-1"}).status == 200
    r = eventually(lambda: (r := _health(agent, name)).json() and r, what="catalog sync")
    index = int(r.headers["x-consul-index"])

    t0 = time.monotonic()
    r = agent.req("GET", f"/v1/health/service/{name}?index={index}&wait=300ms")
    assert r.status == 200 and int(r.headers["x-consul-index"]) == index
    assert time.monotonic() - t0 >= 0.29

    result = {}

    def blocked():
        result["resp"] = agent.req("GET", f"/v1/catalog/service/{name}?index={index}&wait=20s")
        result["t"] = time.monotonic()

    waiter = threading.Thread(target=blocked)
    waiter.start()
    time.sleep(0.2)  # let the query block first; either order is correct, this one exercises the wait
    assert agent.register({"Name": name, "ID": f"{name}-2"}).status == 200
    t_change = time.monotonic()
    waiter.join(15)
    assert not waiter.is_alive()
    assert result["t"] - t_change < 5
    assert int(result["resp"].headers["x-consul-index"]) > index
    assert len(result["resp"].json()) == 2

    r = agent.req("GET", f"/v1/health/service/{name}?wait=10")
    assert (r.status, r.text) == (400, "Invalid wait time")
    r = agent.req("GET", f"/v1/health/service/{name}?index=abc")
    assert (r.status, r.text) == (400, "Invalid index")


def test_leader(agent):
    r = agent.req("GET", "/v1/status/leader")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    host, _, port = r.json().rpartition(":")
    assert host and port.isdigit()


def test_no_leader_until_set():
    with FakeConsul() as f:
        assert call(f.port, "GET", "/v1/status/leader").json() == ""
        r = call(f.port, "GET", "/v1/catalog/service/x")
        assert (r.status, r.text) == (500, "No cluster leader")
        # agent-local endpoints work without a leader
        assert fake_register(f, {"Name": "x"}).status == 200
        f.leader = "127.0.0.1:8300"
        assert call(f.port, "GET", "/v1/status/leader").json() == "127.0.0.1:8300"
        assert len(call(f.port, "GET", "/v1/catalog/service/x").json()) == 1


# ---------------------------------------------------------------------------------------------
# ACLs


def test_acl(acl_agent):
    a = acl_agent
    name = "acl" + uid()
    good = {"X-Consul-Token": a.token}
    r = a.register({"Name": name})
    assert (r.status, r.text) == (403, f"Permission denied: Missing service:write on {name}")
    assert r.headers["x-consul-default-acl-policy"] == "deny"
    r = a.register({"Name": name}, headers={"X-Consul-Token": "wrong"})
    assert (r.status, r.text) == (403, "ACL not found")
    # validation comes before the ACL decision
    assert (a.register({}, headers={"X-Consul-Token": "wrong"}).status) == 400
    # X-Consul-Token wins over Authorization; an empty one falls through to it
    r = a.register({"Name": name}, headers={"X-Consul-Token": "wrong", "Authorization": f"Bearer {a.token}"})
    assert r.status == 403
    r = a.register({"Name": name}, headers={"Authorization": a.token})  # no scheme: anonymous
    assert r.status == 403

    assert a.register({"Name": name, "ID": f"{name}-1", "Check": {"TTL": "30s"}}, headers=good).status == 200
    bearer = {"Authorization": f"Bearer {a.token}"}
    assert a.register({"Name": name, "ID": f"{name}-2"}, headers=bearer).status == 200
    odd_bearer = {"Authorization": f"bearer  {a.token}"}  # scheme in any case, extra spaces trimmed
    assert a.register({"Name": name, "ID": f"{name}-3"}, headers=odd_bearer).status == 200
    assert a.register({"Name": name, "ID": f"{name}-4"}, query=f"?token={a.token}").status == 200

    # reads: anonymous lists are filtered, single objects refused, unknown tokens refused
    assert a.services() == {}
    assert {f"{name}-{i}" for i in range(1, 5)} <= set(a.services(headers=good))
    r = a.req("GET", "/v1/agent/services", headers={"X-Consul-Token": "wrong"})
    assert (r.status, r.text) == (403, "ACL not found")
    r = a.req("GET", f"/v1/agent/service/{name}-1")
    assert (r.status, r.text) == (403, "Permission denied")
    r = a.req("GET", f"/v1/agent/service/{name}-gone")
    assert (r.status, r.text) == (404, f"unknown service ID: {name}-gone")
    r = a.req("GET", f"/v1/agent/health/service/id/{name}-1")
    assert (r.status, r.text) == (403, "Permission denied")
    assert a.req("GET", "/v1/status/leader", headers={"X-Consul-Token": "wrong"}).status == 200

    r = a.req("PUT", f"/v1/agent/check/pass/service:{name}-1")
    assert (r.status, r.text) == (403, f"Permission denied: Missing service:write on {name}")
    assert a.req("PUT", f"/v1/agent/check/pass/service:{name}-1", headers=good).status == 200
    r = a.req("PUT", f"/v1/agent/check/pass/{name}-nope", headers=good)
    assert (r.status, r.text) == (500, f'Unknown check "{name}-nope"')
    r = a.req("PUT", f"/v1/agent/service/deregister/{name}-1")
    assert (r.status, r.text) == (403, f"Permission denied: Missing service:write on {name}")
    assert a.req("PUT", f"/v1/agent/service/deregister/{name}-1", headers=good).status == 200
    r = a.req("PUT", f"/v1/agent/service/deregister/{name}-1", headers=good)
    assert (r.status, r.text) == (500, f'Unknown service "{name}-1"')


def test_acl_token_can_be_changed_at_runtime(fake):
    assert fake_register(fake, {"Name": "a"}).status == 200
    fake.acl_token = "t1"
    assert fake_register(fake, {"Name": "a"}).status == 403
    assert fake_register(fake, {"Name": "a"}, {"X-Consul-Token": "t1"}).status == 200
    fake.acl_token = None
    r = fake_register(fake, {"Name": "a"}, {"X-Consul-Token": "anything"})
    assert (r.status, r.headers["x-consul-default-acl-policy"]) == (200, "allow")


# ---------------------------------------------------------------------------------------------
# Reaping (DeregisterCriticalServiceAfter)


def test_reaper_removes_a_service_critical_for_too_long():
    timeline = ListTimeline()
    with FakeConsul(timeline, leader=FAKE_LEADER, reap_interval=0.05, deregister_min=0.3) as f:
        body = {"Name": "z", "ID": "zombie", "Check": {"TTL": "100ms", "Status": "passing",
                                                      "DeregisterCriticalServiceAfter": "10ms"}}
        assert fake_register(f, body).status == 200
        eventually(lambda: "zombie" not in f.services(), "reaping")
        assert "service:zombie" not in f.checks()
        kinds = [(e[2], e[3].get("service_id")) for e in timeline.events]
        assert ("ttl-expired", "zombie") in kinds and ("reap", "zombie") in kinds
        t_expired = next(e[0] for e in timeline.events if e[2] == "ttl-expired")
        t_reaped = next(e[0] for e in timeline.events if e[2] == "reap")
        assert t_reaped - t_expired >= 0.3  # raised to deregister_min, not the 10 ms asked for


def test_reaper_keeps_consuls_one_minute_minimum_by_default():
    with FakeConsul(leader=FAKE_LEADER, reap_interval=0.02) as f:
        check = {"TTL": "50ms", "DeregisterCriticalServiceAfter": "100ms"}
        body = {"Name": "z", "ID": "slow", "Check": check}
        assert fake_register(f, body).status == 200
        eventually(lambda: f.checks()["service:slow"]["Output"] == "TTL expired", what="expiry")
        time.sleep(0.5)  # many reaper rounds: the 100 ms was raised to 60 s
        assert "slow" in f.services()


# ---------------------------------------------------------------------------------------------
# Fault injection (fake only)


def test_fail_with_for_n_calls(fake):
    fake.fail_with(500, "rpc error: boom", paths=["register"], count=2)
    for _ in range(2):
        r = fake_register(fake, {"Name": "web"})
        assert (r.status, r.text) == (500, "rpc error: boom")
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert fake.services() == {}
    assert call(fake.port, "GET", "/v1/agent/services").status == 200  # other paths unaffected
    assert fake_register(fake, {"Name": "web"}).status == 200
    assert "web" in fake.services()
    regs = [c for c in fake.calls if c.kind == "register"]
    assert [(c.status, c.fault) for c in regs] == [(500, "fail_with"), (500, "fail_with"), (200, None)]


def test_fail_with_count_is_exact_under_concurrency(fake):
    fake.fail_with(503, "busy", paths=["/v1/agent/service/register"], count=5)
    statuses = []
    lock = threading.Lock()

    def worker(i):
        r = fake_register(fake, {"Name": f"s{i}"})
        with lock:
            statuses.append(r.status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(statuses) == [200] * 7 + [503] * 5
    assert len(fake.services()) == 7


def test_hang_and_release(fake):
    fake.hang(paths=["register"])
    with pytest.raises(TimeoutError):
        fake_register(fake, {"Name": "late"}, timeout=0.3)
    hung = fake.wait_call(lambda c: c.kind == "register", pending=True)
    assert hung.status is None and hung.fault == "hang" and not hung.done
    with pytest.raises(TimeoutError):
        fake.wait_call(lambda c: c.kind == "register", timeout=0.1)  # answered calls only
    assert call(fake.port, "GET", "/v1/agent/services").json() == {}  # others still answered
    fake.release()
    # the agent applies the write it was holding, though the client gave up on it
    done = fake.wait_call(lambda c: c.kind == "register")
    assert done is hung and done.status == 200
    assert "late" in fake.services()
    assert fake_register(fake, {"Name": "next"}, timeout=2).status == 200


def test_delay(fake):
    fake.delay(0.4, paths=["/v1/agent/services"])
    t0 = time.monotonic()
    assert call(fake.port, "GET", "/v1/agent/services").status == 200
    assert time.monotonic() - t0 >= 0.4
    assert call(fake.port, "GET", "/v1/agent/checks").status == 200
    fake.delay(0)
    assert call(fake.port, "GET", "/v1/agent/services").status == 200
    assert [(c.path, c.fault) for c in fake.calls] == [
        ("/v1/agent/services", "delay"), ("/v1/agent/checks", None), ("/v1/agent/services", None)]


def test_drop_connection(fake):
    fake.drop_connection(paths=["services"], count=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        call(fake.port, "GET", "/v1/agent/services")
    assert call(fake.port, "GET", "/v1/agent/services").status == 200


def test_garbage_response(fake):
    fake.garbage_response(paths=["/v1/agent/service/"])
    assert fake_register(fake, {"Name": "g"}).status == 200  # GETs only
    r = call(fake.port, "GET", "/v1/agent/service/g")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(r.body)
    fake.clear_faults()
    assert call(fake.port, "GET", "/v1/agent/service/g").json()["ID"] == "g"


def test_huge_response_is_streamed(fake):
    size = 50 * 1024 * 1024
    fake.huge_response(paths=["services"], size=size)
    tracemalloc.start()  # traces every thread of this process, the fake's handler included
    try:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request("GET", "/v1/agent/services")
            r = conn.getresponse()
            assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
            total, head = 0, b""
            while chunk := r.read(1 << 20):
                head = head or chunk[:16]
                total += len(chunk)
        finally:
            conn.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == size and head.startswith(b'{"Huge":"aaaa')
    assert peak < 8 * 1024 * 1024, f"peak allocation {peak >> 20} MiB while streaming {size >> 20} MiB"


def test_huge_response_with_length_and_early_close(fake):
    fake.huge_response(paths=["checks"], size=8 * 1024 * 1024, chunked=False)
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=HTTP_TIMEOUT)
    conn.request("GET", "/v1/agent/checks")
    r = conn.getresponse()
    assert r.getheader("Content-Length") == str(8 * 1024 * 1024)
    assert len(r.read(1000)) == 1000
    conn.close()  # a client enforcing its cap hangs up early: the fake must carry on
    assert call(fake.port, "GET", "/v1/agent/services").status == 200


def test_go_down_and_come_back_on_the_same_port(fake):
    port = fake.port
    assert call(port, "PUT", "/v1/agent/service/register", {"Name": "web"}).status == 200
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    kept.request("GET", "/v1/agent/services")
    assert kept.getresponse().read()

    fake.go_down()
    assert fake.is_down
    with pytest.raises(ConnectionRefusedError):
        call(port, "GET", "/v1/agent/services")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, BrokenPipeError)):
        kept.request("GET", "/v1/agent/services")
        kept.getresponse()
    kept.close()

    fake.come_back()
    assert fake.port == port
    assert "web" in call(port, "GET", "/v1/agent/services").json()

    index = int(call(port, "GET", "/v1/catalog/service/web").headers["x-consul-index"])
    fake.go_down()
    fake.come_back(keep_state=False)  # a dev agent restarting: empty, index starting over
    assert call(port, "GET", "/v1/agent/services").json() == {}
    assert int(call(port, "GET", "/v1/catalog/service/web").headers["x-consul-index"]) < index


def test_go_down_cuts_hung_requests(fake):
    fake.hang()
    errors = []

    def client():
        try:
            fake_register(fake, {"Name": "h"}, timeout=5)
        except OSError as e:  # RemoteDisconnected is a ConnectionResetError
            errors.append(e)

    t = threading.Thread(target=client)
    t.start()
    fake.wait_call(lambda c: c.kind == "register", pending=True)
    fake.go_down()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    fake.come_back()
    assert fake.services() == {}  # the dropped write was never applied
    assert fake.calls[0].status is None and fake.calls[0].done


# ---------------------------------------------------------------------------------------------
# Observation


class RecordingTimeline:
    """A stand-in with only record(), as the conftest Timeline is used."""

    def __init__(self):
        self.rows = []

    def record(self, source, kind, detail):
        self.rows.append((source, kind, detail))


def test_timeline_and_calls():
    tl = RecordingTimeline()
    with FakeConsul(tl, leader=FAKE_LEADER) as f:
        body = {"Name": "web", "ID": "web-1", "Check": {"TTL": "30s"}}
        assert fake_register(f, body).status == 200
        assert call(f.port, "PUT", "/v1/agent/check/pass/service:web-1").status == 200
        assert call(f.port, "PUT", "/v1/agent/check/pass/nope").status == 500
        assert call(f.port, "GET", "/v1/agent/services").status == 200
        assert call(f.port, "PUT", "/v1/agent/service/deregister/web-1").status == 200
        with pytest.raises(TimeoutError):
            f.wait_call(lambda c: c.kind == "leader", timeout=0.1)
    rows = [(s, k, d["status"], d["service_id"], d["check_id"]) for s, k, d in tl.rows]
    assert rows == [
        ("consul", "register", 200, "web-1", None),
        ("consul", "check-pass", 200, "web-1", "service:web-1"),
        ("consul", "check-pass", 500, None, "nope"),
        ("consul", "services", 200, None, None),
        ("consul", "deregister", 200, "web-1", None),
    ]
    assert tl.rows[1][2]["check_status"] == "passing"
    assert [c.kind for c in f.calls] == ["register", "check-pass", "check-pass", "services", "deregister"]
    assert f.calls[0].json()["Name"] == "web"


def test_wait_call_wakes_on_arrival(fake):
    start = len(fake.calls)
    threading.Timer(0.1, lambda: call(fake.port, "GET", "/v1/status/leader")).start()
    c = fake.wait_call(lambda c: c.kind == "leader", timeout=5, start=start)
    assert c.path == "/v1/status/leader"


# ---------------------------------------------------------------------------------------------
# Hostile input (fake only where the real agent has no limit)


def test_oversized_body_is_refused_and_logged(fake):
    r = fake_register(fake, b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert r.status == 413
    assert [(c.kind, c.status, c.body) for c in fake.calls] == [("register", 413, b"")]
    assert call(fake.port, "GET", "/v1/agent/services").status == 200


def test_non_utf8_body_and_note(agent):
    sid = "u8-" + uid()
    r = agent.register(b'{"Name":"bad\xff\xfeutf","ID":"' + sid.encode() + b'","Check":{"TTL":"30s"}}')
    assert r.status == 200
    assert agent.services()[sid]["Service"] == "bad\ufffd\ufffdutf"
    assert agent.req("PUT", f"/v1/agent/check/pass/service:{sid}?note=%ff%fe").status == 200
    assert agent.checks()[f"service:{sid}"]["Output"] == "\ufffd\ufffd"
    # an unpaired surrogate escape decodes to U+FFFD in Go
    r = agent.register('{"Name":"lone","ID":"%s-2","Tags":["a\\ud800b"],"Meta":{"k":"\\udfff"}}' % sid)
    assert r.status == 200
    assert agent.services()[f"{sid}-2"]["Tags"] == ["a\ufffdb"]
    assert agent.services()[f"{sid}-2"]["Meta"] == {"k": "\ufffd"}


def test_pretty_output(agent):
    r = agent.req("GET", "/v1/status/leader?pretty")
    assert r.body.endswith(b'"\n')
    agent.register({"Name": "pretty-" + uid()})
    r = agent.req("GET", "/v1/agent/services?pretty")
    assert r.body.startswith(b'{\n    "') and r.body.endswith(b"}\n")


def test_compact_output_by_default(fake):
    fake_register(fake, {"Name": "c", "Tags": ["<&>"]})
    r = call(fake.port, "GET", "/v1/agent/services")
    assert b"\n" not in r.body and b'"Tags":["\\u003c\\u0026\\u003e"]' in r.body
    assert r.json()["c"]["Tags"] == ["<&>"]


# ---------------------------------------------------------------------------------------------
# Go durations


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("1s", 10**9), ("1.5h", 5400 * 10**9), ("1h30m", 5400 * 10**9), (".5s", 5 * 10**8),
    ("5.s", 5 * 10**9), ("+5ms", 5 * 10**6), ("-2m", -120 * 10**9), ("5\u00b5s", 5000), ("5\u03bcs", 5000),
    ("3us", 3000), ("7ns", 7), ("1m0.5s", 60 * 10**9 + 5 * 10**8),
])
def test_parse_go_duration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text,message", [
    ("", 'time: invalid duration ""'),
    ("10", 'time: missing unit in duration "10"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("5 s", 'time: unknown unit " s" in duration "5 s"'),
    (" 5s", 'time: invalid duration " 5s"'),
    (".s", 'time: invalid duration ".s"'),
    ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
    ("10secs", 'time: unknown unit "secs" in duration "10secs"'),
    ("9999999999h", 'time: invalid duration "9999999999h"'),
])
def test_parse_go_duration_rejects(text, message):
    with pytest.raises(GoDurationError) as e:
        parse_go_duration(text)
    assert str(e.value) == message


def test_services_meta_equality_filter(agent):
    """The one ?filter= shape Pacer's client sends: both agents evaluate it."""
    import urllib.parse

    task = "T-" + uid()
    mine, other = "mine-" + uid(), "other-" + uid()
    assert agent.register({"Name": "web", "ID": mine, "Meta": {"pacer_task_id": task}}).status == 200
    assert agent.register({"Name": "web", "ID": other, "Meta": {"pacer_task_id": "x" + task}}).status == 200
    q = urllib.parse.quote(f'Meta["pacer_task_id"] == "{task}"')
    r = agent.req("GET", f"/v1/agent/services?filter={q}")
    assert r.status == 200, r
    assert list(r.json()) == [mine]
