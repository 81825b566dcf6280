"""A scriptable double of the local Consul agent's HTTP API, as Pacer's executor uses it.

The fake answers the way the real Consul 1.10 agent (the build in ``../shared/ext``) answers, down to
status codes and the plain-text error bodies; every behaviour listed under "Modelled" was measured
against that agent, and ``integration-tests/test_fake_consul.py`` runs the same assertions against
both the fake and the real binary when the binary is available.  Where the real agent is stricter
than a lazy double would be, the fake is strict too: Pacer's tests must not pass here and fail
there.

Modelled (Consul 1.10 behaviour)
--------------------------------
* Transport: HTTP/1.1 with keep-alive on 127.0.0.1, ``Date``, ``Vary: Accept-Encoding`` and
  ``X-Consul-Default-Acl-Policy: allow|deny`` on every routed answer; unknown paths (including
  endpoints not listed here) are 404 with an empty body.  Writes succeed with **200 and an empty
  body** (no Content-Type).  Errors are plain text (``text/plain; charset=utf-8``).  Wrong method:
  405, ``Allow: OPTIONS,PUT`` (or ``GET``), body ``method GET not allowed``; ``OPTIONS`` answers 200
  with ``Allow``.  JSON is compact, or indented like a dev agent with ``?pretty`` or
  ``FakeConsul(pretty=True)``.
* ``PUT /v1/agent/service/register[?replace-existing-checks]``: Go's strict decoder
  (unknown keys are 400 ``Request decode failed: json: unknown field "X"``; keys match
  case-insensitively; the snake_case aliases Consul accepts; type errors, where an error inside
  ``Check``/``Checks`` ends the decode at once and one in a plain field is reported only if none
  does; check durations parsed after the check, Interval first; only the first JSON value is read,
  so trailing bytes are ignored; an empty body is ``Request decode failed: EOF``; an unpaired
  surrogate escape becomes U+FFFD); then, in Consul's order: ``Missing service name``,
  ``Invalid service address`` (0.0.0.0, ::), ``Invalid Weights: ...``, ``Invalid Service Meta: ...``
  (64 pairs, key ``[A-Za-z0-9_-]`` <= 128, no ``consul-`` prefix, value <= 512 bytes),
  ``Invalid check: ...`` (TTL and Interval together, Interval needed by HTTP/TCP/gRPC/H2PING/script
  checks, TTL needed otherwise, alias checks), ``Status for checks must ...``; ACL; script checks
  are refused with 500 as on an agent without ``enable_script_checks``.  Durations are Go
  ``time.ParseDuration`` strings or numbers of nanoseconds.  ``replace-existing-checks`` replaces
  only when bare, empty or ``true``.
  Auto check IDs ``service:<id>`` / ``service:<id>:<n>``, auto name ``Service '<name>' check``.
  A new check starts ``critical`` unless ``Status`` is given; re-registering an existing check ID
  keeps its current status and output, whatever ``Status`` says.  An IPv4/IPv6 ``Address`` gets
  ``lan_ipv4``/``wan_ipv4`` (or ``_ipv6``) tagged addresses.  ``Checks: [null]`` makes the real
  agent panic and drop the connection; so does the fake.
* ``PUT /v1/agent/service/deregister/<id>``: removes the service and its checks.  An unknown ID is
  a **200 no-op** without ACLs and **500** ``Unknown service "<id>"`` with ACLs (what 1.10 does;
  ``../shared/PROTOCOLS.md`` §8.2 describes the newer 404, available with ``unknown_id_404=True``).
* ``PUT /v1/agent/check/{pass,warn,fail}/<id>?note=`` and ``PUT /v1/agent/check/update/<id>``
  (body ``{"Status","Output"}``, other statuses: 400 ``Invalid check status: '<s>'``): unknown check
  is **500** ``CheckID "<id>" does not have associated TTL`` (``Unknown check "<id>"`` with ACLs;
  404 with ``unknown_id_404=True``), a non-TTL check is 500 ``CheckID "<id>" does not have
  associated TTL``.  Output is cut to ``OutputMaxSize`` (default 4096) bytes as
  ``<head> ... (captured N of M bytes)``.
* TTL checks really expire: without pass/warn/fail/update for TTL they turn ``critical`` with
  output ``TTL expired``, or ``TTL expired (last output before timeout follows): <last>``.  Each
  update and each re-registration restarts the timer; an expiry fires once per restart.
* ``DeregisterCriticalServiceAfter``: values below ``deregister_min`` (Consul: 1 min) are raised to
  it; a reaper running every ``reap_interval`` (Consul: 30 s) deregisters a service whose check has
  been critical longer than that.  Both are constructor arguments so tests can run fast.
* Reads: ``GET /v1/agent/services`` (map by service ID of AgentService), ``/v1/agent/service/<id>``
  (404 ``unknown service ID: <id>``; ``ContentHash`` and ``X-Consul-ContentHash``; hash-based
  blocking with ``?hash=&wait=``), ``/v1/agent/checks``, ``/v1/agent/health/service/id/<id>`` and
  ``/name/<name>`` (200 passing, 429 warning, 503 critical, 404 unknown, ``X-Consul-Reason``,
  ``?format=text``, 500 ``Bad request: ...`` for an empty ID or name; the agent's own status,
  not the catalog's), ``/v1/health/service/<name>`` (``?passing`` as Go's ParseBool, ``?tag=``; the
  node's ``serfHealth`` check is listed first), ``/v1/catalog/service/<name>`` (``[]`` for unknown
  names), ``/v1/status/leader``.  Catalog and health reads carry ``X-Consul-Index`` (per service
  name, as Consul's state store does), ``X-Consul-KnownLeader``, ``X-Consul-LastContact`` and block
  on ``?index=&wait=`` (default 5 min, max 10 min, plus up to wait/16 jitter; ``Invalid index``,
  ``Invalid wait time``).  The catalog copy of a check follows status changes at once but output-only
  changes only after ``check_update_interval`` (Consul: 5 min), as anti-entropy does.
* Leader: ``/v1/status/leader`` is ``""`` until ``leader`` is set (a dev agent before its election);
  meanwhile catalog and health reads answer 500 ``No cluster leader``.
* ACLs (``acl_token=``): off by default.  When set, the agent runs with ``default_policy = deny``
  and that one token is the management token.  The request token comes from ``?token=``, else
  ``X-Consul-Token``, else ``Authorization: Bearer <t>`` (scheme case-insensitive), else anonymous.
  An unknown token is 403 ``ACL not found`` everywhere except ``/v1/status/leader``; anonymous
  writes are 403 ``Permission denied: Missing service:write on <service name>`` (after body
  validation, which comes first); anonymous single-object reads are 403 ``Permission denied``;
  anonymous list reads are filtered to ``{}`` / ``[]``.

Not modelled
------------
* HTTP, TCP, gRPC, H2PING, Docker and alias checks are stored and listed but never run: they keep
  their initial status until re-registered.  Interval/Timeout are parsed and validated only.
* Connect sidecars: ``Kind`` and ``Connect`` are accepted and ignored, a non-empty ``Proxy`` is
  refused with 400 (the real agent would register a proxy).
* Standalone check registration, maintenance mode, KV, sessions, ``?filter=`` beyond the
  ``Meta["k"] == "v"`` shape on ``/v1/agent/services`` (answered with 500, never ignored), ``?near``, ``?node-meta``, namespaces/partitions (rejected as unknown fields, as
  the OSS agent does), agent restarts with persisted state (``come_back(keep_state=False)`` gives
  a dev agent's empty restart).
* The delay of anti-entropy: the catalog is in step with the agent as soon as a write returns (the
  real agent is usually a few milliseconds behind; Pacer must not rely on either).
* Registration before a leader exists does not block here (the real dev agent blocks ~0.3 s).
* Messages of JSON syntax and type errors follow Go's wording (checked by differential fuzzing
  against the real agent); rare syntax errors may be worded differently, but the prefix
  ``Request decode failed: `` and the status are always exact.  Map iteration order, which makes
  the real agent's choice among several bad Meta pairs random, is sorted here.  Request bodies over
  ``MAX_REQUEST_BODY`` are refused with 413 (the real agent has no such limit).

Use
---
``FakeConsul(timeline=None, *, acl_token=None, leader="", reap_interval=30, deregister_min=60,
check_update_interval=300, unknown_id_404=False, pretty=False, port=0)``, then ``start()`` /
``stop()`` or a ``with`` block; ``url``, ``address`` and ``port`` say where it listens.
Call kinds: register, deregister, check-pass, check-warn, check-fail, check-update, services,
service, checks, agent-health, agent-health-name, health-service, catalog-service, leader, unknown.
Scripting (thread-safe; ``paths`` is None for every request, or a list whose items are path
prefixes such as ``"/v1/agent/service/register"`` or call kinds such as ``"register"``):
``acl_token``, ``leader``, ``fail_with(status, body, paths, count)``, ``drop_connection(paths,
count)``, ``hang(paths)`` / ``release()``, ``delay(seconds, paths)`` (``delay(0)`` clears),
``garbage_response(paths)``, ``huge_response(paths, size)``, ``clear_faults()``, ``go_down()`` /
``come_back(keep_state=True)``.  Faults act before the endpoint and its ACL check and change no
state, except that a hung or delayed request is processed normally once let go.
Observation: ``calls`` (every request, appended on arrival, completed with its status),
``wait_call(predicate, timeout, start, pending)`` (answered calls; ``pending=True`` for held
ones), ``services()``, ``checks()``, and the timeline: each request is recorded once answered as
``record("consul", kind, detail)`` with ``detail`` holding method, path, status, service_id,
check_id (and fault, check_status where relevant); TTL expiries and reaps are recorded as kinds
``ttl-expired`` and ``reap``, outages as ``down`` / ``up``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import ipaddress
import json
import random
import re
import socket
import threading
import time
import urllib.parse
import uuid
from typing import Any, Callable, Iterable, Optional

# ?filter=Meta["<key>"] == "<value>" (no escapes inside the quotes), the filter Pacer's client sends
_META_EQ_FILTER = re.compile(r'\s*Meta\["([^"\\]*)"\]\s*==\s*"([^"\\]*)"\s*')

__all__ = ["FakeConsul", "ConsulCall", "ListTimeline", "parse_go_duration", "GoDurationError"]

# ---------------------------------------------------------------------------------------------
# Limits and Consul's defaults (each one named, as the rest of Pacer does)

MAX_REQUEST_BODY = 4 * 1024 * 1024  # fake-only cap; the real agent reads any size
MAX_DISCARDED_BODY = 64 * 1024 * 1024  # read and dropped before a 413, so the client sees the answer
DISCARD_BLOCK = 64 * 1024
MAX_JSON_DEPTH_GO = 10000  # Go's encoding/json nesting limit
MAX_JSON_DEPTH_FAKE = 400  # deeper bodies would exhaust Python's recursion; Pacer never sends them
OUTPUT_MAX_SIZE_DEFAULT = 4096  # Consul's DefaultBufSize for check output
META_MAX_PAIRS = 64
META_KEY_MAX_LEN = 128
META_VALUE_MAX_LEN = 512
DEFAULT_REAP_INTERVAL = 30.0  # Consul checkReapInterval
DEFAULT_DEREGISTER_MIN = 60.0  # Consul check_deregister_interval_min
DEFAULT_CHECK_UPDATE_INTERVAL = 300.0  # Consul check_update_interval
BLOCKING_DEFAULT_WAIT = 300.0
BLOCKING_MAX_WAIT = 600.0
BLOCKING_JITTER_FRACTION = 16
DEFAULT_HUGE_SIZE = 50 * 1024 * 1024
HUGE_CHUNK = 64 * 1024
STOP_JOIN_TIMEOUT = 5.0
FIRST_RAFT_INDEX = 12  # a fresh dev agent's catalog index after registering itself

HEALTH_PASSING = "passing"
HEALTH_WARNING = "warning"
HEALTH_CRITICAL = "critical"
VALID_STATUSES = (HEALTH_PASSING, HEALTH_WARNING, HEALTH_CRITICAL)

TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"

# Go's encoder escapes these even inside strings (they never occur outside one)
_GO_JSON_ESCAPES = tuple((c, "\\u%04x" % ord(c)) for c in "<>&\u2028\u2029")

_GO_INT64_MAX = (1 << 63) - 1
_GO_INT64_MIN = -(1 << 63)

# ---------------------------------------------------------------------------------------------
# Go time.ParseDuration


class GoDurationError(ValueError):
    """A string Go's time.ParseDuration refuses; str() is Go's own message."""


_GO_UNITS_NS = {
    "ns": 1,
    "us": 1000,
    "\u00b5s": 1000,  # micro sign
    "\u03bcs": 1000,  # Greek mu
    "ms": 1000 * 1000,
    "s": 1000 * 1000 * 1000,
    "m": 60 * 1000 * 1000 * 1000,
    "h": 3600 * 1000 * 1000 * 1000,
}


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def parse_go_duration(text: str) -> int:
    """Parse like Go's time.ParseDuration and return nanoseconds; raise GoDurationError."""
    orig = text
    invalid = GoDurationError("time: invalid duration " + _go_quote(orig))
    neg = False
    if text and text[0] in "+-":
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if text == "":
        raise invalid
    total = 0
    while text:
        if text[0] not in ".0123456789":
            raise invalid
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", text)
        whole, frac = m.group(1), m.group(2)
        if whole == "" and not frac:
            raise invalid  # "." alone or ".s"
        text = text[m.end():]
        u = 0
        while u < len(text) and text[u] != "." and text[u] not in "0123456789":
            u += 1
        unit = text[:u]
        text = text[u:]
        if unit == "":
            raise GoDurationError("time: missing unit in duration " + _go_quote(orig))
        if unit not in _GO_UNITS_NS:
            raise GoDurationError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(orig)}")
        scale = _GO_UNITS_NS[unit]
        v = int(whole or "0")
        if v > _GO_INT64_MAX // scale:
            raise invalid
        v *= scale
        if frac:
            # Go truncates the fraction after scaling, like this integer arithmetic does
            v += int(frac) * scale // (10 ** len(frac))
        total += v
        if total > _GO_INT64_MAX:
            raise invalid
    return -total if neg else total


def _ns_to_seconds(ns: int) -> float:
    return ns / 1e9


# ---------------------------------------------------------------------------------------------
# Go-like JSON decoding: strict keys, case-insensitive matching, Go's error wording


class _DecodeFail(Exception):
    """The body is refused with 400 "Request decode failed: <str(self)>"."""


class _DropConnection(Exception):
    """The real agent panics on this input; net/http then closes the connection unanswered."""


class _Num(str):
    """A JSON number kept as its literal: Go decides by the target type whether it fits."""


class _Obj(list):
    """A JSON object as its (key, value) pairs in document order (duplicates kept, last wins)."""


def _reject_constant(name: str):
    raise _DecodeFail(f"invalid character {_go_char(name[0])} looking for beginning of value")


_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_Obj, parse_int=_Num, parse_float=_Num, parse_constant=_reject_constant
)


def _go_char(c: str) -> str:
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    inner = json.dumps(c, ensure_ascii=False)[1:-1]
    return "'" + inner + "'"


def _scan_brackets(text: str, end: int) -> tuple[int, str]:
    """(deepest nesting within text[:end], innermost bracket still open at end or ''), outside
    strings; stops early once deeper than Go's limit."""
    stack: list[str] = []
    deepest = 0
    in_str = esc = False
    for c in text[:end]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            stack.append(c)
            deepest = max(deepest, len(stack))
            if deepest > MAX_JSON_DEPTH_GO:
                break
        elif c in "]}" and stack:
            stack.pop()
    return deepest, (stack[-1] if stack else "")


def _go_syntax_message(text: str, err: json.JSONDecodeError) -> str:
    pos = err.pos
    if pos >= len(text) or err.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    c = text[pos]
    msg = err.msg
    if msg.startswith("Expecting value"):
        for lit in ("true", "false", "null"):
            if c == lit[0]:
                tail = text[pos:pos + len(lit)]
                if lit.startswith(tail):
                    return "unexpected EOF"
                for got, want in zip(tail, lit):
                    if got != want:
                        expecting = _go_char(want)
                        return f"invalid character {_go_char(got)} in literal {lit} (expecting {expecting})"
        return f"invalid character {_go_char(c)} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {_go_char(c)} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {_go_char(c)} after object key"
    if msg.startswith("Expecting ','"):
        if _scan_brackets(text, pos)[1] == "[":
            return f"invalid character {_go_char(c)} after array element"
        return f"invalid character {_go_char(c)} after object key:value pair"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        bad = text[pos + 1] if pos + 1 < len(text) else c
        return f"invalid character {_go_char(bad)} in string escape code"
    if msg.startswith("Invalid control character"):
        return f"invalid character {_go_char(c)} in string literal"
    return f"invalid character {_go_char(c)} looking for beginning of value"


def _parse_first_json_value(body: bytes) -> Any:
    """Decode the first JSON value of body like Go's json.Decoder.Decode (trailing bytes ignored)."""
    text = body.decode("utf-8", errors="replace")
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i == len(text):
        raise _DecodeFail("EOF")
    depth = _scan_brackets(text, len(text))[0]
    if depth > MAX_JSON_DEPTH_GO:
        opener = next(ch for ch in text[i:] if ch in "[{")
        raise _DecodeFail(f"invalid character {_go_char(opener)} exceeded max depth")
    if depth > MAX_JSON_DEPTH_FAKE:
        raise _DecodeFail(f"fake consul: JSON nested deeper than {MAX_JSON_DEPTH_FAKE} levels")
    try:
        value, _ = _JSON_DECODER.raw_decode(text, i)
    except json.JSONDecodeError as e:
        raise _DecodeFail(_go_syntax_message(text, e)) from None
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_string(v: str) -> str:
    """Go replaces an unpaired surrogate escape with U+FFFD; Python keeps it and cannot encode it."""
    return _LONE_SURROGATE.sub("\ufffd", v)


def _json_kind(v: Any) -> str:
    if isinstance(v, _Obj):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _Num):
        return "number"
    return "string"


def _fold(key: str) -> str:
    # Go matches JSON keys to struct fields with simple case folding (plus the long s)
    return key.lower().replace("\u017f", "s")


# Field kinds: string, int, bool, rawdur (an interface{} holding a duration, parsed later), strlist,
# strmap, header (map[string][]string), weights, tagged, check, checks, proxy, connect.  The last
# four have their own UnmarshalJSON in Consul: an error inside them is returned at once, while
# Go's decoder only saves the first error of a plain field and reports it at the end.
_GO_TYPE_NAMES = {
    "string": "string",
    "kind": "structs.ServiceKind",  # string types with a name of their own
    "checkid": "types.CheckID",
    "int": "int",
    "bool": "bool",
    "strlist": "[]string",
    "strmap": "map[string]string",
    "header": "map[string][]string",
    "weights": "structs.Weights",
    "tagged": "map[string]structs.ServiceAddress",
    "checks": "structs.CheckTypes",
}

# Go's names of the anonymous types behind Consul's custom decoders, as its messages print them
_REGISTER_VALUE_TYPE = (
    'struct { EnableTagOverrideSnake bool "json:\\"enable_tag_override\\""; TaggedAddressesSnake '
    'map[string]structs.ServiceAddress "json:\\"tagged_addresses\\""; *structs.Alias }'
)
_CHECK_VALUE_TYPE = (
    "struct { Interval interface {}; Timeout interface {}; TTL interface {}; "
    'DeregisterCriticalServiceAfter interface {}; Args []string "json:\\"args\\""; '
    'ScriptArgsSnake []string "json:\\"script_args\\""; DeregisterCriticalServiceAfterSnake interface {} '
    '"json:\\"deregister_critical_service_after\\""; DockerContainerIDSnake string '
    '"json:\\"docker_container_id\\""; TLSServerNameSnake string "json:\\"tls_server_name\\""; '
    'TLSSkipVerifySnake bool "json:\\"tls_skip_verify\\""; GRPCUseTLSSnake bool "json:\\"grpc_use_tls\\""; '
    'ServiceID string "json:\\"ServiceID\\""; ServiceIDSnake string "json:\\"service_id\\""; '
    "*structs.Alias }"
)
_PROXY_VALUE_TYPE = (
    'struct { DestinationServiceNameSnake string "json:\\"destination_service_name\\""; '
    'DestinationServiceIDSnake string "json:\\"destination_service_id\\""; LocalServiceAddressSnake string '
    '"json:\\"local_service_address\\""; LocalServicePortSnake int "json:\\"local_service_port\\""; '
    'LocalServiceSocketPathSnake string "json:\\"local_service_socket_path\\""; MeshGatewaySnake '
    'structs.MeshGatewayConfig "json:\\"mesh_gateway\\""; TransparentProxySnake '
    'structs.TransparentProxyConfig "json:\\"transparent_proxy\\""; *structs.Alias }'
)
_CONNECT_VALUE_TYPE = (
    'struct { SidecarServiceSnake *structs.ServiceDefinition "json:\\"sidecar_service\\""; *structs.Alias }'
)

# (JSON key as Go matches it, kind, attribute); aliases store under an attribute of their own
_REGISTER_FIELDS = [
    ("enable_tag_override", "bool", "_EnableTagOverrideSnake"),
    ("tagged_addresses", "tagged", "_TaggedAddressesSnake"),
    ("Kind", "kind", "Kind"),
    ("ID", "string", "ID"),
    ("Name", "string", "Name"),
    ("Tags", "strlist", "Tags"),
    ("Address", "string", "Address"),
    ("SocketPath", "string", "SocketPath"),
    ("TaggedAddresses", "tagged", "TaggedAddresses"),
    ("Meta", "strmap", "Meta"),
    ("Port", "int", "Port"),
    ("Check", "check", "Check"),
    ("Checks", "checks", "Checks"),
    ("Weights", "weights", "Weights"),
    ("Token", "string", "Token"),
    ("EnableTagOverride", "bool", "EnableTagOverride"),
    ("Proxy", "proxy", "Proxy"),
    ("Connect", "connect", "Connect"),
]

_CHECK_FIELDS = [
    ("Interval", "rawdur", "Interval"),
    ("Timeout", "rawdur", "Timeout"),
    ("TTL", "rawdur", "TTL"),
    ("DeregisterCriticalServiceAfter", "rawdur", "DeregisterCriticalServiceAfter"),
    ("args", "strlist", "_ArgsSnake"),
    ("script_args", "strlist", "_ScriptArgsSnake"),
    ("deregister_critical_service_after", "rawdur", "_DCSASnake"),
    ("docker_container_id", "string", "_DockerContainerIDSnake"),
    ("tls_server_name", "string", "_TLSServerNameSnake"),
    ("tls_skip_verify", "bool", "_TLSSkipVerifySnake"),
    ("grpc_use_tls", "bool", "_GRPCUseTLSSnake"),
    ("ServiceID", "string", "_ServiceID"),
    ("service_id", "string", "_ServiceIDSnake"),
    ("CheckID", "checkid", "CheckID"),
    ("Name", "string", "Name"),
    ("Status", "string", "Status"),
    ("Notes", "string", "Notes"),
    ("ScriptArgs", "strlist", "ScriptArgs"),
    ("HTTP", "string", "HTTP"),
    ("H2PING", "string", "H2PING"),
    ("Header", "header", "Header"),
    ("Method", "string", "Method"),
    ("Body", "string", "Body"),
    ("TCP", "string", "TCP"),
    ("AliasNode", "string", "AliasNode"),
    ("AliasService", "string", "AliasService"),
    ("DockerContainerID", "string", "DockerContainerID"),
    ("Shell", "string", "Shell"),
    ("GRPC", "string", "GRPC"),
    ("GRPCUseTLS", "bool", "GRPCUseTLS"),
    ("TLSServerName", "string", "TLSServerName"),
    ("TLSSkipVerify", "bool", "TLSSkipVerify"),
    ("SuccessBeforePassing", "int", "SuccessBeforePassing"),
    ("FailuresBeforeCritical", "int", "FailuresBeforeCritical"),
    ("ProxyHTTP", "string", "ProxyHTTP"),
    ("ProxyGRPC", "string", "ProxyGRPC"),
    ("OutputMaxSize", "int", "OutputMaxSize"),
]
_CHECK_DURATIONS = ("Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter")  # Consul's parse order

_CHECK_UPDATE_TYPE = "agent.checkUpdate"

_WEIGHTS_FIELDS = [("Passing", "int", "Passing"), ("Warning", "int", "Warning")]
_SERVICE_ADDRESS_FIELDS = [("Address", "string", "Address"), ("Port", "int", "Port")]
_CHECK_UPDATE_FIELDS = [("Status", "string", "Status"), ("Output", "string", "Output")]

_ZERO = {
    "string": "",
    "kind": "",
    "checkid": "",
    "int": 0,
    "bool": False,
    "rawdur": None,
    "strlist": None,
    "strmap": None,
    "header": None,
    "proxy": None,
    "connect": None,
    "weights": None,
    "tagged": None,
    "check": None,
    "checks": None,
}


class _GoDecoder:
    """Walk a parsed body against a Go struct description; keep Go's first error."""

    def __init__(self) -> None:
        self.error: Optional[str] = None

    @staticmethod
    def _message(value: Any, path: str, go_type: str, number_literal: bool = False) -> str:
        kind = _json_kind(value)
        if number_literal and isinstance(value, _Num):
            kind = f"number {value}"
        return f"json: cannot unmarshal {kind} into Go struct field {path} of type {go_type}"

    def _type_error(self, value: Any, path: str, go_type: str, number_literal: bool = False) -> None:
        if self.error is None:
            self.error = self._message(value, path, go_type, number_literal)

    def struct(self, obj: Any, fields: list, path_of: Callable[[str], str], top_type: str) -> dict:
        out = {attr: _ZERO[kind] for _, kind, attr in fields}
        if obj is None:
            return out
        if not isinstance(obj, _Obj):
            if self.error is None:
                self.error = f"json: cannot unmarshal {_json_kind(obj)} into Go value of type {top_type}"
            return out
        exact = {name: (kind, attr) for name, kind, attr in fields}
        folded: dict[str, tuple] = {}
        for name, kind, attr in fields:
            folded.setdefault(_fold(name), (name, kind, attr))
        for key, value in obj:
            if key in exact:
                name = key
                kind, attr = exact[key]
            elif _fold(key) in folded:
                name, kind, attr = folded[_fold(key)]
            else:
                if self.error is None:
                    self.error = f"json: unknown field {_go_quote(key)}"
                continue
            out[attr] = self.value(value, kind, path_of(name))
        return out

    def value(self, v: Any, kind: str, path: str) -> Any:
        if v is None:
            return _ZERO[kind]
        if kind in ("string", "kind", "checkid"):
            if isinstance(v, str) and not isinstance(v, _Num):
                return _go_string(v)
            self._type_error(v, path, _GO_TYPE_NAMES[kind])
            return ""
        if kind == "int":
            if isinstance(v, _Num) and re.fullmatch(r"-?[0-9]+", v):
                n = int(v)
                if _GO_INT64_MIN <= n <= _GO_INT64_MAX:
                    return n
            self._type_error(v, path, "int", number_literal=True)
            return 0
        if kind == "bool":
            if isinstance(v, bool):
                return v
            self._type_error(v, path, "bool")
            return False
        if kind == "rawdur":
            # parsed once the whole check is read, as Consul's UnmarshalJSON does
            return _go_string(v) if isinstance(v, str) and not isinstance(v, _Num) else v
        if kind == "strlist":
            if isinstance(v, list) and not isinstance(v, _Obj):
                return [self.value(x, "string", path) for x in v]
            self._type_error(v, path, "[]string")
            return None
        if kind in ("strmap", "header"):
            if isinstance(v, _Obj):
                inner = "string" if kind == "strmap" else "strlist"
                return {_go_string(k): self.value(x, inner, path) for k, x in v}
            self._type_error(v, path, _GO_TYPE_NAMES[kind])
            return None
        if kind == "proxy":
            if not isinstance(v, _Obj):
                raise _DecodeFail(self._message(v, ".Proxy", _PROXY_VALUE_TYPE))
            if v:
                raise _DecodeFail("fake consul does not model Proxy (Connect sidecars)")
            return {}
        if kind == "connect":
            if not isinstance(v, _Obj):
                raise _DecodeFail(self._message(v, ".Connect", _CONNECT_VALUE_TYPE))
            return {k: x for k, x in v}  # Consul 1.10 ignores unknown keys here
        if kind == "weights":
            if isinstance(v, _Obj):
                return self.struct(v, _WEIGHTS_FIELDS, lambda n: f"Weights.Weights.{n}", "structs.Weights")
            self._type_error(v, path, "structs.Weights")
            return None
        if kind == "tagged":
            if isinstance(v, _Obj):
                out = {}
                for k, x in v:
                    if x is not None and not isinstance(x, _Obj):
                        self._type_error(x, path, "structs.ServiceAddress")
                        continue
                    out[_go_string(k)] = self.struct(
                        x,
                        _SERVICE_ADDRESS_FIELDS,
                        lambda n: f"ServiceAddress.TaggedAddresses.{n}",
                        "structs.ServiceAddress",
                    )
                return out
            self._type_error(v, path, _GO_TYPE_NAMES[kind])
            return None
        if kind == "check":
            return _decode_check(v, ".Check")
        if kind == "checks":
            if isinstance(v, list) and not isinstance(v, _Obj):
                # a null element is a nil *CheckType, which the agent dereferences later
                return [None if x is None else _decode_check(x, ".Checks") for x in v]
            self._type_error(v, ".Checks", "structs.CheckTypes")
            return None
        raise AssertionError(kind)



def _go_duration_value(v: Any) -> int:
    """A duration held in an interface{}: a string for ParseDuration, a number of nanoseconds;
    Consul ignores any other JSON type."""
    if isinstance(v, _Num):
        f = float(v)
        if abs(f) >= 2.0**63:
            return _GO_INT64_MIN  # what Go's float->int64 conversion gives on amd64
        return int(f)
    if isinstance(v, str):
        try:
            return parse_go_duration(v)
        except GoDurationError as e:
            raise _DecodeFail(str(e)) from None
    return 0


def _decode_check(obj: Any, path: str) -> dict:
    """Consul's CheckType.UnmarshalJSON: its errors end the whole decode at once."""
    if not isinstance(obj, _Obj):
        raise _DecodeFail(_GoDecoder._message(obj, path, _CHECK_VALUE_TYPE))
    dec = _GoDecoder()
    c = dec.struct(obj, _CHECK_FIELDS, lambda n: path, _CHECK_VALUE_TYPE)
    if dec.error is not None:
        raise _DecodeFail(dec.error)
    for attr in _CHECK_DURATIONS:
        c[attr] = _go_duration_value(c[attr])
    # a snake_case alias fills its field only when that is unset
    if not c["DeregisterCriticalServiceAfter"]:
        c["DeregisterCriticalServiceAfter"] = _go_duration_value(c["_DCSASnake"])
    if not c["ScriptArgs"]:
        c["ScriptArgs"] = c["_ArgsSnake"] or c["_ScriptArgsSnake"]
    for attr in ("DockerContainerID", "TLSServerName", "TLSSkipVerify", "GRPCUseTLS"):
        if not c[attr]:
            c[attr] = c["_" + attr + "Snake"]
    return c


def _decode_struct(body: bytes, fields: list, top_type: str, path_of: Callable[[str], str]) -> dict:
    value = _parse_first_json_value(body)
    dec = _GoDecoder()
    out = dec.struct(value, fields, path_of, top_type)
    if dec.error is not None:
        raise _DecodeFail(dec.error)
    return out


# ---------------------------------------------------------------------------------------------
# Agent state


@dataclasses.dataclass
class _Service:
    id: str
    name: str
    tags: list
    meta: dict
    port: int
    address: str
    tagged: dict
    weights: dict
    enable_tag_override: bool
    kind: str
    socket_path: str
    create_index: int = 0
    modify_index: int = 0

    def same_as(self, other: "_Service") -> bool:
        """Equal but for the catalog indexes: re-registering it changes nothing in the catalog."""
        fields = (f.name for f in dataclasses.fields(self) if not f.name.endswith("_index"))
        return all(getattr(self, n) == getattr(other, n) for n in fields)


@dataclasses.dataclass
class _Check:
    id: str
    name: str
    status: str
    notes: str
    output: str
    service_id: str
    type: str
    ttl: Optional[float]  # seconds, TTL checks only
    deregister_after: float  # seconds after the raise to the minimum, 0 = never
    output_max_size: int
    ttl_deadline: Optional[float] = None  # monotonic time of the next expiry
    last_output: str = ""  # output of the last TTL update, quoted on expiry
    critical_since: Optional[float] = None
    catalog_status: str = ""
    catalog_output: str = ""
    output_sync_at: Optional[float] = None  # deferred catalog sync of an output-only change
    create_index: int = 0
    modify_index: int = 0


def _check_type(c: dict) -> str:
    if c["ScriptArgs"]:
        return "docker" if c["DockerContainerID"] else "script"
    for attr, name in (("HTTP", "http"), ("TCP", "tcp"), ("GRPC", "grpc"), ("H2PING", "h2ping")):
        if c[attr]:
            return name
    if c["AliasService"]:
        return "alias"
    return "ttl"


def _check_is_empty(c: dict) -> bool:
    return not any(v for k, v in c.items() if not k.startswith("_"))


def _validate_check(c: dict) -> Optional[str]:
    interval_check = bool(c["ScriptArgs"] or c["HTTP"] or c["TCP"] or c["GRPC"] or c["H2PING"])
    alias = bool(c["AliasService"])
    if c["Interval"] > 0 and c["TTL"] > 0:
        return "Interval and TTL cannot both be specified"
    if interval_check and c["Interval"] <= 0:
        return "Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"
    if alias and c["TTL"] > 0:
        return "TTL must be not be set for Alias checks"
    if not interval_check and not alias and c["TTL"] <= 0:
        return "TTL must be > 0 for TTL checks"
    if c["OutputMaxSize"] < 0:
        return "MaxOutputMaxSize must be positive"
    return None


_META_KEY_RE = re.compile(r"[a-zA-Z0-9_-]+")


def _validate_meta(meta: dict) -> Optional[str]:
    if len(meta) > META_MAX_PAIRS:
        return f"Node metadata cannot contain more than {META_MAX_PAIRS} key/value pairs"
    for key in sorted(meta):
        value = meta[key]
        err = None
        if key == "":
            err = "Key cannot be blank"
        elif not _META_KEY_RE.fullmatch(key):
            err = "Key contains invalid characters"
        elif len(key.encode()) > META_KEY_MAX_LEN:
            err = f"Key is too long (limit: {META_KEY_MAX_LEN} characters)"
        elif key.startswith("consul-"):
            err = "Key prefix 'consul-' is reserved for internal use"
        elif len(value.encode()) > META_VALUE_MAX_LEN:
            err = f"Value is too long (limit: {META_VALUE_MAX_LEN} characters)"
        if err:
            return f"Couldn't load metadata pair ('{key}', '{value}'): {err}"
    return None


def _is_unspecified_ip(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.strip("[]")).is_unspecified
    except ValueError:
        return False


def _auto_tagged_addresses(address: str, port: int, tagged: dict) -> dict:
    out = dict(tagged)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return out
    family = "ipv4" if ip.version == 4 else "ipv6"
    for net in ("lan", "wan"):
        out.setdefault(f"{net}_{family}", {"Address": address, "Port": port})
    return out


def _truncate_output(output: str, max_size: int) -> str:
    raw = output.encode("utf-8", errors="surrogateescape")
    if len(raw) <= max_size:
        return output
    head = raw[:max_size].decode("utf-8", errors="replace")
    return f"{head} ... (captured {max_size} of {len(raw)} bytes)"


def _go_parse_bool(s: str) -> Optional[bool]:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _sorted_map(d: Optional[dict]) -> dict:
    return {k: d[k] for k in sorted(d)} if d else {}


# ---------------------------------------------------------------------------------------------
# Observation


@dataclasses.dataclass
class ConsulCall:
    """One HTTP request as the fake saw it; status stays None until it is answered (or dropped)."""

    method: str
    path: str  # percent-decoded, without the query
    query: dict  # name -> list of values
    headers: dict  # lower-case name -> first value
    body: bytes
    kind: str
    service_id: Optional[str]
    check_id: Optional[str]
    t_start: float  # time.monotonic()
    status: Optional[int] = None
    fault: Optional[str] = None
    t_end: Optional[float] = None
    done: bool = False
    epoch: int = dataclasses.field(default=0, repr=False)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class ListTimeline:
    """Recorder used when no Timeline is given: events are (monotonic time, source, kind, detail)."""

    def __init__(self) -> None:
        self.events: list = []
        self._lock = threading.Lock()

    def record(self, source: str, kind: str, detail: dict) -> None:
        with self._lock:
            self.events.append((time.monotonic(), source, kind, dict(detail)))


# ---------------------------------------------------------------------------------------------
# Faults


class _Matcher:
    def __init__(self, paths: Optional[Iterable[str]]):
        if isinstance(paths, str):
            paths = [paths]
        self.items = None if paths is None else list(paths)

    def __call__(self, path: str, kind: str) -> bool:
        if self.items is None:
            return True
        return any(path.startswith(p) if p.startswith("/") else p == kind for p in self.items)


@dataclasses.dataclass
class _FailRule:
    matcher: _Matcher
    status: Optional[int]  # None: drop the connection
    body: bytes
    headers: dict
    remaining: Optional[int]


@dataclasses.dataclass
class _HangRule:
    matcher: _Matcher
    released: bool = False


@dataclasses.dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: Optional[str] = None
    headers: list = dataclasses.field(default_factory=list)
    stream_size: Optional[int] = None  # huge response: this many bytes generated on the fly
    chunked: bool = False


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


_HUGE_HEAD = b'{"Huge":"'
_HUGE_TAIL = b'"}'
_HUGE_FILLER = b"a" * HUGE_CHUNK


def _huge_pieces(size: int):
    """A JSON-looking body of exactly size bytes, one chunk at a time (never held whole)."""
    yield _HUGE_HEAD
    left = size - len(_HUGE_HEAD) - len(_HUGE_TAIL)
    while left > 0:
        n = min(left, HUGE_CHUNK)
        yield _HUGE_FILLER[:n]
        left -= n
    yield _HUGE_TAIL


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, fake: "FakeConsul"):
        self.fake = fake
        super().__init__(addr, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # headers and body go out in separate writes: without this a kept-alive client waits
    # for its delayed ACK (~40 ms) on every answer; the real Mesos and Consul turn Nagle off too
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.fake._conn_opened(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._conn_closed(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the call log and the timeline say it all

    def _any(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _any


class _BadRequest(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


def _discard(h: _Handler, n: int) -> None:
    while n > 0:
        data = h.rfile.read(min(n, DISCARD_BLOCK))
        if not data:
            return
        n -= len(data)


def _read_body(h: _Handler) -> bytes:
    """The request body, at most MAX_REQUEST_BODY bytes; a larger one is read and dropped (up to
    MAX_DISCARDED_BODY) and refused with _BodyTooLarge."""
    te = (h.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        chunks, total = [], 0
        while True:
            line = h.rfile.readline(1024)
            if not line:
                raise _BadRequest("truncated chunked body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while h.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                if total > MAX_REQUEST_BODY:
                    raise _BodyTooLarge()
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BODY:
                if total > MAX_DISCARDED_BODY:
                    raise _BodyTooLarge()
                chunks = []
                _discard(h, size)
            else:
                data = h.rfile.read(size)
                if len(data) != size:
                    raise _BadRequest("truncated chunk")
                chunks.append(data)
            h.rfile.readline(1024)
    length = h.headers.get("Content-Length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError:
        raise _BadRequest("bad Content-Length") from None
    if n < 0:
        raise _BadRequest("bad Content-Length")
    if n > MAX_REQUEST_BODY:
        if n <= MAX_DISCARDED_BODY:
            _discard(h, n)
        raise _BodyTooLarge()
    data = h.rfile.read(n)
    if len(data) != n:
        raise _BadRequest("truncated body")
    return data


# Routes: (pattern, prefix?, allowed method, kind).  The longest matching pattern wins, as in Go's mux.
_ROUTES = [
    ("/v1/agent/service/register", False, "PUT", "register"),
    ("/v1/agent/service/deregister/", True, "PUT", "deregister"),
    ("/v1/agent/service/", True, "GET", "service"),
    ("/v1/agent/services", False, "GET", "services"),
    ("/v1/agent/checks", False, "GET", "checks"),
    ("/v1/agent/check/pass/", True, "PUT", "check-pass"),
    ("/v1/agent/check/warn/", True, "PUT", "check-warn"),
    ("/v1/agent/check/fail/", True, "PUT", "check-fail"),
    ("/v1/agent/check/update/", True, "PUT", "check-update"),
    ("/v1/agent/health/service/id/", True, "GET", "agent-health"),
    ("/v1/agent/health/service/name/", True, "GET", "agent-health-name"),
    ("/v1/health/service/", True, "GET", "health-service"),
    ("/v1/catalog/service/", True, "GET", "catalog-service"),
    ("/v1/status/leader", False, "GET", "leader"),
]


def _route(path: str) -> Optional[tuple]:
    best = None
    for pattern, prefix, method, kind in _ROUTES:
        if (path.startswith(pattern) if prefix else path == pattern):
            if best is None or len(pattern) > len(best[0]):
                best = (pattern, prefix, method, kind)
    if best is None:
        return None
    pattern, prefix, method, kind = best
    return method, kind, (path[len(pattern):] if prefix else "")


def _note(call: "ConsulCall") -> str:
    return call.query.get("note", [""])[0]


def _peek_service_id(body: bytes) -> Optional[str]:
    """Best-effort ID (or Name) of a register body, for the call log only."""
    try:
        obj = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    found = {}
    for k, v in obj.items():
        if _fold(k) in ("id", "name") and isinstance(v, str):
            found[_fold(k)] = v
    return found.get("id") or found.get("name")


# ---------------------------------------------------------------------------------------------
# The fake agent


class FakeConsul:
    """A Consul 1.10 agent double on 127.0.0.1; see the module docstring for what it models."""

    def __init__(
        self,
        timeline: Any = None,
        *,
        acl_token: Optional[str] = None,
        leader: str = "",
        node_name: str = "fake-consul-node",
        datacenter: str = "dc1",
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        deregister_min: float = DEFAULT_DEREGISTER_MIN,
        check_update_interval: float = DEFAULT_CHECK_UPDATE_INTERVAL,
        unknown_id_404: bool = False,
        pretty: bool = False,
        port: int = 0,
    ) -> None:
        self.timeline = timeline if timeline is not None else ListTimeline()
        self.calls: list[ConsulCall] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._acl_token = acl_token
        self._leader = leader
        self.node_name = node_name
        self.node_id = str(uuid.uuid4())
        self.datacenter = datacenter
        self.reap_interval = reap_interval
        self.deregister_min = deregister_min
        self.check_update_interval = check_update_interval
        self.unknown_id_404 = unknown_id_404
        self.pretty = pretty
        self._services: dict[str, _Service] = {}
        self._checks: dict[str, _Check] = {}
        self._reset_indexes()
        self._fail_rules: list[_FailRule] = []
        self._hangs: list[_HangRule] = []
        self._delays: list[tuple] = []
        self._garbage: Optional[_Matcher] = None
        self._huge: Optional[tuple] = None
        self._port = port
        self._server: Optional[_Server] = None
        self._server_thread: Optional[threading.Thread] = None
        self._conns: set = set()
        self._handler_threads: set = set()
        self._epoch = 0  # bumped by go_down(): requests of an older epoch are dropped
        self._down = True
        self._stopping = False
        self._started = False
        self._ticker: Optional[threading.Thread] = None
        self._next_reap = 0.0
        self._endpoints = {
            "register": self._ep_register,
            "deregister": self._ep_deregister,
            "check-pass": lambda call, cid: self._ttl_update(call, cid, HEALTH_PASSING, _note(call)),
            "check-warn": lambda call, cid: self._ttl_update(call, cid, HEALTH_WARNING, _note(call)),
            "check-fail": lambda call, cid: self._ttl_update(call, cid, HEALTH_CRITICAL, _note(call)),
            "check-update": self._ep_check_update,
            "services": lambda call, _: self._agent_list(call, self.services),
            "service": self._ep_service,
            "checks": lambda call, _: self._agent_list(call, self.checks),
            "agent-health": self._ep_agent_health,
            "agent-health-name": self._ep_agent_health_name,
            "health-service": self._ep_health_service,
            "catalog-service": self._ep_catalog_service,
            "leader": self._ep_leader,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeConsul":
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._next_reap = time.monotonic() + self.reap_interval
        self._listen()
        self._ticker = threading.Thread(target=self._tick_loop, name="fake-consul-ticker", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if not self._started or self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._shutdown_listener()
        if self._ticker is not None:
            self._ticker.join(STOP_JOIN_TIMEOUT)
        for t in list(self._handler_threads):
            t.join(STOP_JOIN_TIMEOUT)

    def __enter__(self) -> "FakeConsul":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-consul-http", daemon=True
        )
        with self._lock:
            self._server = server
            self._server_thread = thread
            self._down = False
        thread.start()

    def _shutdown_listener(self) -> None:
        with self._lock:
            server, thread = self._server, self._server_thread
            self._server = self._server_thread = None
            self._down = True
            self._epoch += 1
            conns = list(self._conns)
            self._cond.notify_all()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(STOP_JOIN_TIMEOUT)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def go_down(self) -> None:
        """Stop listening and cut every open connection; the port then refuses connections."""
        with self._lock:
            if self._down:
                return
        self._shutdown_listener()
        self.timeline.record("consul", "down", {"port": self._port})

    def come_back(self, keep_state: bool = True) -> None:
        """Listen again on the same port.  keep_state=False is a dev agent's restart: no services,
        no checks and the catalog index starting over (clients must reset a lower X-Consul-Index)."""
        with self._lock:
            if not self._down or self._stopping:
                return
            if not keep_state:
                self._services.clear()
                self._checks.clear()
                self._reset_indexes()
        self._listen()
        self.timeline.record("consul", "up", {"port": self._port, "keep_state": keep_state})

    @property
    def is_down(self) -> bool:
        return self._down

    def _conn_opened(self, h: _Handler) -> None:
        with self._lock:
            self._conns.add(h.connection)
            self._handler_threads.add(threading.current_thread())

    def _conn_closed(self, h: _Handler) -> None:
        with self._lock:
            self._conns.discard(h.connection)
            self._handler_threads.discard(threading.current_thread())

    # -- scripting ---------------------------------------------------------------------------

    @property
    def acl_token(self) -> Optional[str]:
        return self._acl_token

    @acl_token.setter
    def acl_token(self, token: Optional[str]) -> None:
        with self._lock:
            self._acl_token = token or None

    @property
    def leader(self) -> str:
        return self._leader

    @leader.setter
    def leader(self, value: str) -> None:
        with self._lock:
            self._leader = value
            self._cond.notify_all()

    def fail_with(
        self,
        status: int,
        body: str | bytes = "",
        paths: Optional[Iterable[str]] = None,
        count: Optional[int] = None,
        headers: Optional[dict] = None,
    ) -> None:
        """Answer matching requests with status and a plain-text body, without touching state;
        count limits it to the next N matching requests (None: until clear_faults())."""
        data = body.encode() if isinstance(body, str) else bytes(body)
        with self._lock:
            self._fail_rules.append(_FailRule(_Matcher(paths), status, data, dict(headers or {}), count))

    def drop_connection(self, paths: Optional[Iterable[str]] = None, count: Optional[int] = None) -> None:
        """Close matching requests' connections without answering (as the agent does on a panic)."""
        with self._lock:
            self._fail_rules.append(_FailRule(_Matcher(paths), None, b"", {}, count))

    def hang(self, paths: Optional[Iterable[str]] = None) -> None:
        """Read matching requests and answer nothing until release(); then they are processed
        normally (a registration that the client gave up on still lands, as on a slow agent)."""
        with self._lock:
            self._hangs.append(_HangRule(_Matcher(paths)))

    def release(self) -> None:
        """Let every hung request go on, and stop hanging new ones."""
        with self._lock:
            for rule in self._hangs:
                rule.released = True
            self._hangs.clear()
            self._cond.notify_all()

    def delay(self, seconds: float, paths: Optional[Iterable[str]] = None) -> None:
        """Hold matching requests for seconds before processing them; delay(0) removes all delays."""
        with self._lock:
            if not seconds:
                self._delays.clear()
            else:
                self._delays.append((float(seconds), _Matcher(paths)))

    def garbage_response(self, paths: Optional[Iterable[str]] = None) -> None:
        """Answer matching GETs with 200, Content-Type application/json and a body that is not JSON."""
        with self._lock:
            self._garbage = _Matcher(paths)

    def huge_response(
        self, paths: Optional[Iterable[str]] = None, size: int = DEFAULT_HUGE_SIZE, chunked: bool = True
    ) -> None:
        """Answer matching requests with 200 and a JSON-looking body of size bytes, generated while
        it is sent (chunked like Go's server does for large bodies, or with Content-Length)."""
        with self._lock:
            self._huge = (_Matcher(paths), int(size), chunked)

    def clear_faults(self) -> None:
        with self._lock:
            self._fail_rules.clear()
            self._delays.clear()
            self._garbage = None
            self._huge = None
        self.release()

    # -- observation -------------------------------------------------------------------------

    def wait_call(
        self,
        predicate: Optional[Callable[[ConsulCall], bool]] = None,
        timeout: float = 5.0,
        start: int = 0,
        pending: bool = False,
    ) -> ConsulCall:
        """First answered call from index start on that satisfies predicate; with pending=True
        also one still being held (hang, delay, blocking query).  Raises TimeoutError listing
        what did arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self.calls[start:]:
                    if (call.done or pending) and (predicate is None or predicate(call)):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.path, c.status) for c in self.calls[start:]]
                    raise TimeoutError(f"no matching Consul call within {timeout}s; calls: {seen}")
                self._cond.wait(left)

    def services(self) -> dict:
        """Snapshot of /v1/agent/services as the agent holds it (ACLs ignored)."""
        with self._lock:
            return {sid: self._agent_service(s) for sid, s in sorted(self._services.items())}

    def checks(self) -> dict:
        """Snapshot of /v1/agent/checks (ACLs ignored)."""
        with self._lock:
            return {cid: self._agent_check(c) for cid, c in sorted(self._checks.items())}

    # -- indexes and catalog bookkeeping ------------------------------------------------------

    def _reset_indexes(self) -> None:
        with self._cond:
            self._index = FIRST_RAFT_INDEX
            self._name_index: dict[str, int] = {}
            self._extinction_index = 0
            self._cond.notify_all()

    def _bump(self, *names: str) -> int:
        self._index += 1
        for n in names:
            self._name_index[n] = self._index
        self._cond.notify_all()
        return self._index

    def _name_query_index(self, name: str) -> int:
        if any(s.name == name for s in self._services.values()):
            return self._name_index.get(name, self._index)
        return self._extinction_index or self._index

    def _service_name(self, service_id: str) -> str:
        s = self._services.get(service_id)
        return s.name if s else ""

    def _set_status(self, c: _Check, status: str, output: str, now: float) -> None:
        """Change a check as the agent does and sync the catalog copy as anti-entropy would."""
        if status == HEALTH_CRITICAL and c.status != HEALTH_CRITICAL:
            c.critical_since = now
        elif status != HEALTH_CRITICAL:
            c.critical_since = None
        c.status, c.output = status, output
        if c.catalog_status != status:
            c.catalog_status, c.catalog_output = status, output
            c.output_sync_at = None
            c.modify_index = self._bump(self._service_name(c.service_id))
        elif c.catalog_output != output and c.output_sync_at is None:
            c.output_sync_at = now + self.check_update_interval
        self._cond.notify_all()

    def _remove_service(self, service_id: str) -> None:
        s = self._services.pop(service_id)
        for c in self._checks_of(service_id):
            del self._checks[c.id]
        self._bump(s.name)
        if not any(o.name == s.name for o in self._services.values()):
            self._extinction_index = self._index

    # -- background: TTL expiry, reaping, deferred output sync --------------------------------

    def _tick_loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                events = self._tick(time.monotonic())
                if not events:
                    self._cond.wait(max(0.0, self._next_wakeup() - time.monotonic()))
            for kind, detail in events:  # outside the lock: the recorder may have its own
                self.timeline.record("consul", kind, detail)

    def _next_wakeup(self) -> float:
        times = [self._next_reap]
        for c in self._checks.values():
            if c.ttl_deadline is not None:
                times.append(c.ttl_deadline)
            if c.output_sync_at is not None:
                times.append(c.output_sync_at)
        return min(times)

    def _tick(self, now: float) -> list:
        events = []
        for c in list(self._checks.values()):
            if c.ttl_deadline is not None and c.ttl_deadline <= now:
                c.ttl_deadline = None
                output = "TTL expired"
                if c.last_output:
                    output += " (last output before timeout follows): " + c.last_output
                self._set_status(c, HEALTH_CRITICAL, output, now)
                events.append(("ttl-expired", {"service_id": c.service_id, "check_id": c.id}))
            if c.output_sync_at is not None and c.output_sync_at <= now:
                c.output_sync_at = None
                if c.catalog_output != c.output:
                    c.catalog_output = c.output
                    c.modify_index = self._bump(self._service_name(c.service_id))
        if now >= self._next_reap:
            self._next_reap = now + self.reap_interval
            for c in list(self._checks.values()):
                if (
                    c.deregister_after > 0
                    and c.critical_since is not None
                    and now - c.critical_since > c.deregister_after
                    and c.service_id in self._services
                ):
                    self._remove_service(c.service_id)
                    events.append(("reap", {"service_id": c.service_id, "check_id": c.id}))
        return events

    # -- request handling ---------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        method = h.command
        split = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(split.path, errors="replace")
        query: dict[str, list] = {}
        for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True, errors="replace"):
            query.setdefault(k, []).append(v)
        headers = {}
        for k, v in h.headers.items():
            headers.setdefault(k.lower(), v)
        with self._lock:
            epoch = self._epoch
        reply: Optional[_Reply] = None
        body = b""
        try:
            body = _read_body(h)
        except _BodyTooLarge:
            reply = _Reply(413, b"fake consul: request body over MAX_REQUEST_BODY", TEXT_PLAIN)
        except _BadRequest:
            reply = _Reply(400, b"400 Bad Request", TEXT_PLAIN)
        if reply is not None:
            h.close_connection = True  # the rest of the stream cannot be trusted
        route = _route(path)
        kind = route[1] if route else "unknown"
        rest = route[2] if route else ""
        service_id = check_id = None
        if kind == "register":
            service_id = _peek_service_id(body)
        elif kind in ("deregister", "service", "agent-health"):
            service_id = rest
        elif kind.startswith("check-"):
            check_id = rest
            with self._lock:
                c = self._checks.get(rest)
                service_id = c.service_id if c else None
        call = ConsulCall(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            kind=kind,
            service_id=service_id,
            check_id=check_id,
            t_start=time.monotonic(),
            epoch=epoch,
        )
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        extra: dict = {}
        if reply is None:
            try:
                reply = self._apply_faults(call)
                if reply is None:
                    reply, extra = self._handle(call, route)
            except _DropConnection:
                reply = None
        if reply is None:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._finish_call(call, reply.status if reply else None, extra)
        if reply is not None:
            self._write(h, method, reply)

    def _finish_call(self, call: ConsulCall, status: Optional[int], extra: dict) -> None:
        with self._cond:
            call.status = status
            call.t_end = time.monotonic()
            call.done = True
            self._cond.notify_all()
        detail = {
            "method": call.method,
            "path": call.path,
            "status": status,
            "service_id": call.service_id,
            "check_id": call.check_id,
        }
        if call.fault:
            detail["fault"] = call.fault
        detail.update(extra)
        self.timeline.record("consul", call.kind, detail)

    def _gone(self, call: ConsulCall) -> bool:
        """The agent went down (or stopped) since this request arrived."""
        return self._epoch != call.epoch or self._stopping

    def _apply_faults(self, call: ConsulCall) -> Optional[_Reply]:
        """A reply for an injected failure, None to go on normally; raises _DropConnection."""
        with self._cond:
            hang = next((r for r in self._hangs if r.matcher(call.path, call.kind)), None)
            if hang is not None:
                call.fault = "hang"
                self._cond.wait_for(lambda: hang.released or self._gone(call))
                if self._gone(call):
                    raise _DropConnection()
            for seconds, matcher in list(self._delays):
                if matcher(call.path, call.kind):
                    call.fault = call.fault or "delay"
                    self._cond.wait_for(lambda: self._gone(call), timeout=seconds)
                    if self._gone(call):
                        raise _DropConnection()
                    break
            for rule in self._fail_rules:
                if rule.remaining == 0 or not rule.matcher(call.path, call.kind):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                if rule.status is None:
                    call.fault = "drop"
                    raise _DropConnection()
                call.fault = "fail_with"
                reply = _Reply(rule.status, rule.body, TEXT_PLAIN if rule.body else None)
                reply.headers = list(rule.headers.items())
                return reply
            if call.method == "GET" and self._garbage is not None and self._garbage(call.path, call.kind):
                call.fault = "garbage"
                return _Reply(200, b"<html>this is not JSON\x00\xff{\"Service\":", APPLICATION_JSON)
            if self._huge is not None and self._huge[0](call.path, call.kind):
                call.fault = "huge"
                return _Reply(200, b"", APPLICATION_JSON, stream_size=self._huge[1], chunked=self._huge[2])
        return None

    def _write(self, h: _Handler, method: str, reply: _Reply) -> None:
        try:
            h.send_response_only(reply.status)
            h.send_header("Date", h.date_time_string())
            h.send_header("Vary", "Accept-Encoding")
            for k, v in reply.headers:
                h.send_header(k, v)
            if reply.content_type:
                h.send_header("Content-Type", reply.content_type)
            if h.close_connection:
                h.send_header("Connection", "close")
            if reply.stream_size is not None:
                self._write_stream(h, method, reply)
                return
            h.send_header("Content-Length", str(len(reply.body)))
            h.end_headers()
            if method != "HEAD" and reply.body:
                h.wfile.write(reply.body)
        except OSError:
            h.close_connection = True

    def _write_stream(self, h: _Handler, method: str, reply: _Reply) -> None:
        size = max(reply.stream_size, len(_HUGE_HEAD) + len(_HUGE_TAIL))
        if reply.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        if method == "HEAD":
            return
        for piece in _huge_pieces(size):
            if reply.chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                h.wfile.write(piece)
        if reply.chunked:
            h.wfile.write(b"0\r\n\r\n")

    # -- JSON output ---------------------------------------------------------------------------

    def _json_reply(
        self, call: ConsulCall, obj: Any, status: int = 200, headers: Optional[list] = None
    ) -> _Reply:
        if self.pretty or "pretty" in call.query:
            text = json.dumps(obj, indent=4, ensure_ascii=False) + "\n"
        else:
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        for raw, esc in _GO_JSON_ESCAPES:
            text = text.replace(raw, esc)
        return _Reply(status, text.encode("utf-8", errors="replace"), APPLICATION_JSON, list(headers or []))

    @staticmethod
    def _text(status: int, message: str) -> _Reply:
        return _Reply(status, message.encode("utf-8", errors="replace"), TEXT_PLAIN)

    def _agent_service(self, s: _Service, content_hash: Optional[str] = None) -> dict:
        d: dict = {}
        if s.kind:
            d["Kind"] = s.kind
        d.update(
            {
                "ID": s.id,
                "Service": s.name,
                "Tags": list(s.tags),
                "Meta": _sorted_map(s.meta),
                "Port": s.port,
                "Address": s.address,
                "SocketPath": s.socket_path,
            }
        )
        if s.tagged:
            d["TaggedAddresses"] = _sorted_map(s.tagged)
        d["Weights"] = dict(s.weights)
        d["EnableTagOverride"] = s.enable_tag_override
        if content_hash is not None:
            d["ContentHash"] = content_hash
        d["Datacenter"] = self.datacenter
        return d

    def _content_hash(self, s: _Service) -> str:
        digest = hashlib.sha256(json.dumps(self._agent_service(s), sort_keys=True).encode()).hexdigest()
        return format(int(digest[:16], 16), "x")

    def _agent_check(self, c: _Check) -> dict:
        s = self._services.get(c.service_id)
        return {
            "Node": self.node_name,
            "CheckID": c.id,
            "Name": c.name,
            "Status": c.status,
            "Notes": c.notes,
            "Output": c.output,
            "ServiceID": c.service_id,
            "ServiceName": s.name if s else "",
            "ServiceTags": list(s.tags) if s else [],
            "Type": c.type,
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": 0,
            "ModifyIndex": 0,
        }

    def _agent_health_check(self, c: _Check) -> dict:
        # /v1/agent/health/service/* lists checks with an empty Type and a zeroed Definition
        d = self._agent_check(c)
        del d["ExposedPort"]
        d["ServiceTags"] = None
        d["Type"] = ""
        d["Definition"] = {
            "Interval": "0s",
            "Timeout": "0s",
            "DeregisterCriticalServiceAfter": "0s",
            "HTTP": "",
            "Header": None,
            "Method": "",
            "Body": "",
            "TLSServerName": "",
            "TLSSkipVerify": False,
            "TCP": "",
        }
        return d

    def _catalog_check(self, c: _Check) -> dict:
        d = self._agent_check(c)
        d["Status"] = c.catalog_status
        d["Output"] = c.catalog_output
        d["CreateIndex"] = c.create_index
        d["ModifyIndex"] = c.modify_index
        return d

    def _serf_check(self) -> dict:
        return {
            "Node": self.node_name,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": HEALTH_PASSING,
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": FIRST_RAFT_INDEX - 1,
            "ModifyIndex": FIRST_RAFT_INDEX - 1,
        }

    def _node_tagged(self) -> dict:
        return {"lan": "127.0.0.1", "lan_ipv4": "127.0.0.1", "wan": "127.0.0.1", "wan_ipv4": "127.0.0.1"}

    def _catalog_node(self) -> dict:
        return {
            "ID": self.node_id,
            "Node": self.node_name,
            "Address": "127.0.0.1",
            "Datacenter": self.datacenter,
            "TaggedAddresses": self._node_tagged(),
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": FIRST_RAFT_INDEX - 1,
            "ModifyIndex": FIRST_RAFT_INDEX,
        }

    @staticmethod
    def _proxy() -> dict:
        return {"Mode": "", "MeshGateway": {}, "Expose": {}}

    def _health_service(self, s: _Service) -> dict:
        d: dict = {}
        if s.kind:
            d["Kind"] = s.kind
        d.update({"ID": s.id, "Service": s.name, "Tags": list(s.tags), "Address": s.address})
        if s.tagged:
            d["TaggedAddresses"] = _sorted_map(s.tagged)
        d["Meta"] = _sorted_map(s.meta) if s.meta else None
        if s.port:
            d["Port"] = s.port
        d.update(
            {
                "Weights": dict(s.weights),
                "EnableTagOverride": s.enable_tag_override,
                "Proxy": self._proxy(),
                "Connect": {},
                "CreateIndex": s.create_index,
                "ModifyIndex": s.modify_index,
            }
        )
        return d

    def _catalog_service(self, s: _Service) -> dict:
        d = {
            "ID": self.node_id,
            "Node": self.node_name,
            "Address": "127.0.0.1",
            "Datacenter": self.datacenter,
            "TaggedAddresses": self._node_tagged(),
            "NodeMeta": {"consul-network-segment": ""},
            "ServiceKind": s.kind,
            "ServiceID": s.id,
            "ServiceName": s.name,
            "ServiceTags": list(s.tags),
            "ServiceAddress": s.address,
        }
        if s.tagged:
            d["ServiceTaggedAddresses"] = _sorted_map(s.tagged)
        d.update(
            {
                "ServiceWeights": dict(s.weights),
                "ServiceMeta": _sorted_map(s.meta),
                "ServicePort": s.port,
                "ServiceSocketPath": s.socket_path,
                "ServiceEnableTagOverride": s.enable_tag_override,
                "ServiceProxy": self._proxy(),
                "ServiceConnect": {},
                "CreateIndex": s.create_index,
                "ModifyIndex": s.modify_index,
            }
        )
        return d

    # -- ACL -----------------------------------------------------------------------------------

    @staticmethod
    def _request_token(call: ConsulCall) -> str:
        q = call.query.get("token", [""])[0]
        if q:
            return q
        h = call.headers.get("x-consul-token", "")
        if h:
            return h
        auth = call.headers.get("authorization", "")
        parts = auth.split(" ")
        if len(parts) > 1 and parts[0].lower() == "bearer":
            value = " ".join(parts[1:]).strip()
            return value.split(" ")[0].strip()
        return ""

    def _resolve(self, call: ConsulCall) -> tuple[Optional[_Reply], bool]:
        """(403 reply for an unknown token or None, whether the caller may do everything)."""
        if self._acl_token is None:
            return None, True
        token = self._request_token(call)
        if token == "":
            return None, False
        if token != self._acl_token:
            return self._text(403, "ACL not found"), False
        return None, True

    @staticmethod
    def _denied_write(name: str) -> _Reply:
        return FakeConsul._text(403, f"Permission denied: Missing service:write on {name}")

    # -- endpoints -----------------------------------------------------------------------------

    def _handle(self, call: ConsulCall, route: Optional[tuple]) -> tuple[_Reply, dict]:
        if route is None:
            return _Reply(404), {}  # Go's mux: empty body, no Consul headers
        method, kind, rest = route
        policy = "deny" if self._acl_token is not None else "allow"
        acl_header = ("X-Consul-Default-Acl-Policy", policy)
        if call.method == "OPTIONS":
            return _Reply(200, headers=[("Allow", f"OPTIONS,{method}"), acl_header]), {}
        if call.method != method:
            reply = self._text(405, f"method {call.method} not allowed")
            reply.headers = [("Allow", f"OPTIONS,{method}"), acl_header]
            return reply, {}
        meta_filter = None
        if "filter" in call.query and kind == "services":
            # the one filter shape Pacer sends, evaluated as go-bexpr does
            meta_filter = _META_EQ_FILTER.fullmatch(call.query["filter"][0])
        if meta_filter is not None:
            key, value = meta_filter.group(1), meta_filter.group(2)
            reply, extra = self._agent_list(
                call, lambda: {k: v for k, v in self.services().items() if (v.get("Meta") or {}).get(key) == value})
        elif "filter" in call.query and kind in ("services", "checks", "health-service", "catalog-service"):
            msg = "Failed to create boolean expression evaluator: fake consul models only Meta[\"k\"] == \"v\""
            reply, extra = self._text(500, msg), {}
        else:
            reply, extra = self._endpoints[kind](call, rest)
        reply.headers.append(acl_header)
        return reply, extra

    def _ep_register(self, call: ConsulCall, rest: str) -> tuple[_Reply, dict]:
        try:
            d = _decode_struct(call.body, _REGISTER_FIELDS, _REGISTER_VALUE_TYPE, lambda n: "." + n)
        except _DecodeFail as e:
            return self._text(400, f"Request decode failed: {e}"), {}
        if d["_EnableTagOverrideSnake"]:
            d["EnableTagOverride"] = True
        if not d["TaggedAddresses"]:
            d["TaggedAddresses"] = d["_TaggedAddressesSnake"]
        name = d["Name"]
        if not name:
            return self._text(400, "Missing service name"), {}
        if _is_unspecified_ip(d["Address"]):
            return self._text(400, "Invalid service address"), {}
        weights = d["Weights"]
        if weights is not None:
            if weights["Passing"] <= 0:
                return self._text(400, "Invalid Weights: Passing must be greater than 0"), {}
            if weights["Warning"] < 0:
                return self._text(400, "Invalid Weights: Warning must be greater or equal than 0"), {}
        meta_error = _validate_meta(d["Meta"] or {})
        if meta_error:
            return self._text(400, f"Invalid Service Meta: {meta_error}"), {}
        check_defs = []
        if d["Check"] is not None and not _check_is_empty(d["Check"]):
            check_defs.append(d["Check"])
        for c in d["Checks"] or []:
            if c is None:
                raise _DropConnection()
            check_defs.append(c)
        for c in check_defs:
            err = _validate_check(c)
            if err:
                return self._text(400, f"Invalid check: {err}"), {}
        for c in check_defs:
            if c["Status"] and c["Status"] not in VALID_STATUSES:
                return self._text(400, "Status for checks must 'passing', 'warning', 'critical'"), {}
        service_id = d["ID"] or name
        extra = {"service_id": service_id, "name": name}
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, extra
            if not full:
                return self._denied_write(name), extra
            if any(c["ScriptArgs"] for c in check_defs):
                msg = (
                    "Scripts are disabled on this agent from remote calls; "
                    "to enable, configure 'enable_script_checks' to true"
                )
                return self._text(500, msg), extra
            replace = call.query.get("replace-existing-checks", [None])[0] in ("", "true")
            self._apply_register(d, service_id, check_defs, replace)
        return _Reply(200), extra

    def _apply_register(self, d: dict, service_id: str, check_defs: list, replace: bool) -> None:
        now = time.monotonic()
        weights = d["Weights"] or {"Passing": 1, "Warning": 1}
        tagged = {k: dict(v) for k, v in (d["TaggedAddresses"] or {}).items()}
        svc = _Service(
            id=service_id,
            name=d["Name"],
            tags=list(d["Tags"] or []),
            meta=dict(d["Meta"] or {}),
            port=d["Port"],
            address=d["Address"],
            tagged=_auto_tagged_addresses(d["Address"], d["Port"], tagged),
            weights={"Passing": weights["Passing"], "Warning": weights["Warning"]},
            enable_tag_override=d["EnableTagOverride"],
            kind=d["Kind"],
            socket_path=d["SocketPath"],
        )
        old = self._services.get(service_id)
        if old is not None and old.same_as(svc):
            svc.create_index, svc.modify_index = old.create_index, old.modify_index
        else:
            names = [svc.name] + ([old.name] if old is not None and old.name != svc.name else [])
            idx = self._bump(*names)
            svc.create_index = old.create_index if old is not None else idx
            svc.modify_index = idx
        self._services[service_id] = svc
        before = dict(self._checks)  # "existing" means before this request, even for repeated IDs
        new_ids = []
        for i, c in enumerate(check_defs):
            cid = c["CheckID"]
            if not cid:
                cid = f"service:{service_id}" + (f":{i + 1}" if len(check_defs) > 1 else "")
            new_ids.append(cid)
            ttl = _ns_to_seconds(c["TTL"]) if c["TTL"] > 0 else None
            dcsa = _ns_to_seconds(c["DeregisterCriticalServiceAfter"])
            if dcsa > 0:
                dcsa = max(dcsa, self.deregister_min)
            existing = before.get(cid)
            status = c["Status"] or HEALTH_CRITICAL
            output = ""
            if existing is not None:
                status, output = existing.status, existing.output
            chk = _Check(
                id=cid,
                name=c["Name"] or f"Service '{svc.name}' check",
                status=status,
                notes=c["Notes"],
                output=output,
                service_id=service_id,
                type=_check_type(c),
                ttl=ttl,
                deregister_after=dcsa if dcsa > 0 else 0.0,
                output_max_size=c["OutputMaxSize"] or OUTPUT_MAX_SIZE_DEFAULT,
                ttl_deadline=now + ttl if ttl else None,
                critical_since=now if status == HEALTH_CRITICAL else None,
                catalog_status=status,
                catalog_output=output,
            )
            if existing is not None and (
                existing.catalog_status,
                existing.catalog_output,
                existing.name,
                existing.notes,
                existing.service_id,
            ) == (status, output, chk.name, chk.notes, service_id):
                chk.create_index, chk.modify_index = existing.create_index, existing.modify_index
            else:
                idx = self._bump(svc.name)
                chk.create_index = existing.create_index if existing is not None else idx
                chk.modify_index = idx
            self._checks[cid] = chk
        if replace:
            stale = [c.id for c in self._checks_of(service_id) if c.id not in new_ids]
            for cid in stale:
                del self._checks[cid]
            if stale:
                self._bump(svc.name)
        self._cond.notify_all()

    def _unknown_id(self, what: str, ident: str) -> Optional[_Reply]:
        """Consul's answer for an unknown service or check ID (None: deregistration is a no-op)."""
        if self.unknown_id_404:
            hint = f"Ensure that the {what} ID is passed, not the {what} name."
            return self._text(404, f'Unknown {what} ID "{ident}". {hint}')
        if self._acl_token is not None:
            return self._text(500, f'Unknown {what} "{ident}"')
        if what == "check":
            return self._text(500, f'CheckID "{ident}" does not have associated TTL')
        return None

    def _ep_deregister(self, call: ConsulCall, service_id: str) -> tuple[_Reply, dict]:
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            s = self._services.get(service_id)
            if s is None:
                if not service_id and not self.unknown_id_404:
                    return self._text(500, "ServiceID missing"), {}
                return self._unknown_id("service", service_id) or _Reply(200), {}
            if not full:
                return self._denied_write(s.name), {}
            self._remove_service(service_id)
        return _Reply(200), {}

    def _ttl_update(self, call: ConsulCall, check_id: str, status: str, output: str) -> tuple[_Reply, dict]:
        extra = {"check_status": status}
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, extra
            c = self._checks.get(check_id)
            if c is None:
                return self._unknown_id("check", check_id), extra
            if not full:
                return self._denied_write(self._service_name(c.service_id)), extra
            if c.ttl is None:
                return self._text(500, f'CheckID "{check_id}" does not have associated TTL'), extra
            now = time.monotonic()
            output = _truncate_output(output, c.output_max_size)
            c.last_output = output
            c.ttl_deadline = now + c.ttl
            self._set_status(c, status, output, now)
        return _Reply(200), extra

    def _ep_check_update(self, call: ConsulCall, check_id: str) -> tuple[_Reply, dict]:
        try:
            d = _decode_struct(
                call.body, _CHECK_UPDATE_FIELDS, _CHECK_UPDATE_TYPE, lambda n: "checkUpdate." + n
            )
        except _DecodeFail as e:
            return self._text(400, f"Request decode failed: {e}"), {}
        if d["Status"] not in VALID_STATUSES:
            return self._text(400, f"Invalid check status: '{d['Status']}'"), {}
        return self._ttl_update(call, check_id, d["Status"], d["Output"])

    def _agent_list(self, call: ConsulCall, snapshot: Callable[[], dict]) -> tuple[_Reply, dict]:
        """/v1/agent/services and /v1/agent/checks: an anonymous caller sees an empty map."""
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            out = snapshot() if full else {}
        return self._json_reply(call, out), {}

    def _blocking_params(self, call: ConsulCall) -> tuple[Optional[_Reply], int, float]:
        wait_s = BLOCKING_DEFAULT_WAIT
        wait = call.query.get("wait", [""])[0]
        if wait:
            try:
                wait_s = parse_go_duration(wait) / 1e9
            except GoDurationError:
                return self._text(400, "Invalid wait time"), 0, 0.0
        index = 0
        raw = call.query.get("index", [""])[0]
        if raw:
            if not re.fullmatch(r"[0-9]+", raw) or int(raw) >= 1 << 64:
                return self._text(400, "Invalid index"), 0, 0.0
            index = int(raw)
        wait_s = min(wait_s, BLOCKING_MAX_WAIT)
        wait_s += random.uniform(0, wait_s / BLOCKING_JITTER_FRACTION)
        return None, index, wait_s

    def _ep_service(self, call: ConsulCall, service_id: str) -> tuple[_Reply, dict]:
        bad, _, wait_s = self._blocking_params(call)
        if bad:
            return bad, {}
        want_hash = call.query.get("hash", [""])[0]
        deadline = time.monotonic() + wait_s
        with self._cond:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            while True:
                s = self._services.get(service_id)
                if s is None:
                    return self._text(404, f"unknown service ID: {service_id}"), {}
                if not full:
                    return self._text(403, "Permission denied"), {}
                h = self._content_hash(s)
                left = deadline - time.monotonic()
                if not want_hash or h != want_hash or left <= 0:
                    break
                if self._gone(call):
                    raise _DropConnection()
                self._cond.wait(left)
            obj = self._agent_service(s, content_hash=h)
        return self._json_reply(call, obj, headers=[("X-Consul-Contenthash", h)]), {}

    def _checks_of(self, service_id: str) -> list:
        return sorted((c for c in self._checks.values() if c.service_id == service_id), key=lambda c: c.id)

    def _instances(self, name: str) -> list:
        return sorted((s for s in self._services.values() if s.name == name), key=lambda s: s.id)

    def _aggregate(self, service_ids: list) -> str:
        statuses = {c.status for c in self._checks.values() if c.service_id in service_ids}
        for s in (HEALTH_CRITICAL, HEALTH_WARNING):
            if s in statuses:
                return s
        return HEALTH_PASSING

    _AGG_CODES = {HEALTH_PASSING: 200, HEALTH_WARNING: 429, HEALTH_CRITICAL: 503}

    def _agent_health_entry(self, s: _Service) -> dict:
        return {
            "AggregatedStatus": self._aggregate([s.id]),
            "Service": self._agent_service(s),
            "Checks": [self._agent_health_check(c) for c in self._checks_of(s.id)],
        }

    def _agent_health_reply(self, call: ConsulCall, status: str, obj: Any) -> tuple[_Reply, dict]:
        headers = [("X-Consul-Reason", status)]
        if call.query.get("format", [""])[0] == "text":
            reply = _Reply(self._AGG_CODES[status], status.encode(), "text/plain", headers)
        else:
            reply = self._json_reply(call, obj, self._AGG_CODES[status], headers)
        return reply, {"health": status}

    def _agent_health_missing(
        self, call: ConsulCall, reason: str, obj: Any, by_id: bool
    ) -> tuple[_Reply, dict]:
        headers = [("X-Consul-Reason", reason)]
        if call.query.get("format", [""])[0] != "text":
            return self._json_reply(call, obj, 404, headers), {}
        if by_id:  # Consul 1.10 quirk: the by-ID form answers a JSON string here
            return self._json_reply(call, reason, 404, headers), {}
        return _Reply(404, reason.encode(), "text/plain", headers), {}

    def _ep_agent_health(self, call: ConsulCall, service_id: str) -> tuple[_Reply, dict]:
        if not service_id:
            return self._text(500, "Bad request: Missing serviceID"), {}
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            s = self._services.get(service_id)
            if s is None:
                obj = {"AggregatedStatus": HEALTH_CRITICAL, "Service": None, "Checks": None}
                return self._agent_health_missing(call, f"ServiceId {service_id} not found", obj, True)
            if not full:
                return self._text(403, "Permission denied"), {}
            entry = self._agent_health_entry(s)
        return self._agent_health_reply(call, entry["AggregatedStatus"], entry)

    def _ep_agent_health_name(self, call: ConsulCall, name: str) -> tuple[_Reply, dict]:
        if not name:
            return self._text(500, "Bad request: Missing service Name"), {}
        with self._lock:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            if not full:
                return self._text(403, "Permission denied"), {}
            found = self._instances(name)
            if not found:
                return self._agent_health_missing(call, f"ServiceName {name} Not Found", [], False)
            entries = [self._agent_health_entry(s) for s in found]
            status = self._aggregate([s.id for s in found])
        return self._agent_health_reply(call, status, entries)

    def _catalog_read(
        self, call: ConsulCall, name: str, build: Callable[[list], Any], passing_filter: bool
    ) -> tuple[_Reply, dict]:
        bad, min_index, wait_s = self._blocking_params(call)
        if bad:
            return bad, {}
        dc = call.query.get("dc", [""])[0]
        if dc and dc != self.datacenter:
            return self._text(500, "No path to datacenter"), {}
        if "stale" in call.query and "consistent" in call.query:
            return self._text(400, "Cannot specify ?stale with ?consistent, conflicting semantics."), {}
        if not name:
            return self._text(400, "Missing service name"), {}
        passing = False
        if passing_filter and "passing" in call.query:
            raw = call.query["passing"][0]
            parsed = True if raw == "" else _go_parse_bool(raw)
            if parsed is None:
                with self._lock:
                    headers = self._index_headers(self._name_query_index(name))
                reply = self._text(400, "Invalid value for ?passing")
                reply.headers = headers
                return reply, {}
            passing = parsed
        tags = call.query.get("tag", [])
        deadline = time.monotonic() + wait_s
        with self._cond:
            denied, full = self._resolve(call)
            if denied:
                return denied, {}
            if not self._leader:
                return self._text(500, "No cluster leader"), {}
            while min_index > 0 and self._name_query_index(name) <= min_index:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self._gone(call):
                    raise _DropConnection()
                self._cond.wait(left)
            index = self._name_query_index(name)
            found = [s for s in self._instances(name) if all(t in s.tags for t in tags)] if full else []
            if passing:
                found = [s for s in found if self._catalog_passing(s.id)]
            obj = build(found)
        return self._json_reply(call, obj, headers=self._index_headers(index)), {"index": index}

    def _catalog_passing(self, service_id: str) -> bool:
        return all(c.catalog_status == HEALTH_PASSING for c in self._checks_of(service_id))

    def _index_headers(self, index: int) -> list:
        return [
            ("X-Consul-Effective-Consistency", "leader"),
            ("X-Consul-Index", str(index)),
            ("X-Consul-Knownleader", "true" if self._leader else "false"),
            ("X-Consul-Lastcontact", "0"),
            ("X-Consul-Query-Backend", "blocking-query"),
        ]

    def _ep_health_service(self, call: ConsulCall, name: str) -> tuple[_Reply, dict]:
        def build(found: list) -> list:
            return [
                {
                    "Node": self._catalog_node(),
                    "Service": self._health_service(s),
                    "Checks": [self._serf_check()] + [self._catalog_check(c) for c in self._checks_of(s.id)],
                }
                for s in found
            ]

        return self._catalog_read(call, name, build, passing_filter=True)

    def _ep_catalog_service(self, call: ConsulCall, name: str) -> tuple[_Reply, dict]:
        return self._catalog_read(call, name, lambda found: [self._catalog_service(s) for s in found], False)

    def _ep_leader(self, call: ConsulCall, rest: str) -> tuple[_Reply, dict]:
        with self._lock:
            leader = self._leader
        return self._json_reply(call, leader), {}
