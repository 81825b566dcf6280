"""The real Consul agent for integration tests, and a recording proxy in front
of it, so that tests written against fakes.consul.FakeConsul run unchanged
against the real thing.

RealConsul extracts ../shared/ext/consul-linux-amd64.tar.xz (once per
session), runs `consul agent -dev` on 127.0.0.1 with free ports, waits for a
leader (registrations before it block), and stops the agent by pid.

RecordingProxy forwards every request to a real agent and records it in the
test's Timeline exactly as the fake does (source "consul", kinds "register",
"deregister", "check-update", "service", ... with method, path, status,
service_id, check_id), once the real agent has answered, so the timeline shows
what the executor could know and when. It exposes the fake's observation API
(calls, wait_call, services, checks) for the assertions tests share.
"""

import http.client
import http.server
import json
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import urllib.parse
from pathlib import Path

from harness import free_port, require_ext_file, wait_for

# A dev agent elects itself in 0.1-0.25 s; allow a slow CI machine much more.
LEADER_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PROXY_BODY_MAX = 64 * 1024 * 1024

_binary_lock = threading.Lock()
_binary_path = None


def consul_binary(tmp_root):
    """Extracts the Consul binary from $PACER_EXT_DIR once per session."""
    global _binary_path
    with _binary_lock:
        if _binary_path is None or not _binary_path.exists():
            tarball = require_ext_file("consul-*.tar.xz")
            dest = Path(tmp_root) / "consul-bin"
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball, "r:xz") as tf:
                member = next(m for m in tf.getmembers() if Path(m.name).name == "consul")
                member.name = "consul"
                tf.extract(member, dest)
            _binary_path = dest / "consul"
        return _binary_path


def _http(port, method, path, body=None, token=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"X-Consul-Token": token} if token else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


ANONYMOUS_TOKEN_ID = "00000000-0000-0000-0000-000000000002"


class RealConsul:
    """A real `consul agent -dev` on loopback. Start with start(); stop() by pid."""

    def __init__(self, binary, workdir, acl_token=None):
        self.binary, self.workdir, self.acl_token = Path(binary), Path(workdir), acl_token
        self.port = None
        self.proc = None
        self.log = None

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [str(self.binary), "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
                "-http-port", str(self.port), "-dns-port", "-1", "-grpc-port", "-1",
                "-serf-lan-port", str(free_port()), "-serf-wan-port", str(free_port()),
                "-server-port", str(free_port()), "-data-dir", str(self.workdir / "data"),
                "-log-level", "warn"]
        if self.acl_token:
            cfg = self.workdir / "acl.hcl"
            cfg.write_text('acl { enabled = true\n default_policy = "deny"\n tokens { master = "%s"\n agent = "%s" } }\n'
                           % (self.acl_token, self.acl_token))
            args += ["-hcl", cfg.read_text().replace("\n", " ")]
        self.log = open(self.workdir / "consul.log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def leader():
            if self.proc.poll() is not None:
                raise AssertionError(f"consul exited with {self.proc.returncode}: "
                                     f"{(self.workdir / 'consul.log').read_text()[-2000:]}")
            try:
                status, body = _http(self.port, "GET", "/v1/status/leader", timeout=1.0)
            except OSError:
                return False
            return status == 200 and body.strip() not in (b"", b'""')

        wait_for(leader, LEADER_TIMEOUT, "the Consul dev agent to elect itself")
        if self.acl_token:
            # The new leader creates the anonymous token a moment after the election; until then an
            # anonymous request is refused with "ACL not found" instead of the default policy.
            def acl_ready():
                try:
                    status, _ = _http(self.port, "GET", "/v1/acl/token/" + ANONYMOUS_TOKEN_ID,
                                      token=self.acl_token, timeout=1.0)
                    anon, _ = _http(self.port, "GET", "/v1/agent/services", timeout=1.0)
                except OSError:
                    return False
                return status == 200 and anon == 200

            wait_for(acl_ready, LEADER_TIMEOUT, "the Consul dev agent to create its anonymous ACL token")
        return self

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the dev agent exits 1 on SIGTERM: that is normal
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None


def classify(method, path, body):
    """(kind, service_id, check_id, check_status) of a Consul agent API call, as the fake names them."""
    p = urllib.parse.urlsplit(path).path
    unq = urllib.parse.unquote
    if p == "/v1/agent/service/register":
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {}
        sid = doc.get("ID") or doc.get("Name") if isinstance(doc, dict) else None
        return "register", sid, None, None
    m = re.fullmatch(r"/v1/agent/service/deregister/(.+)", p)
    if m:
        return "deregister", unq(m.group(1)), None, None
    m = re.fullmatch(r"/v1/agent/check/(pass|warn|fail|update)/(.+)", p)
    if m:
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}.get(m.group(1))
        if m.group(1) == "update":
            try:
                status = json.loads(body or b"{}").get("Status")
            except (ValueError, AttributeError):
                status = None
        return f"check-{m.group(1)}", None, unq(m.group(2)), status
    if p == "/v1/agent/services":
        return "services", None, None, None
    m = re.fullmatch(r"/v1/agent/service/(.+)", p)
    if m:
        return "service", unq(m.group(1)), None, None
    if p == "/v1/agent/checks":
        return "checks", None, None, None
    if p == "/v1/status/leader":
        return "leader", None, None, None
    m = re.fullmatch(r"/v1/agent/health/service/id/(.+)", p)
    if m:
        return "agent-health", unq(m.group(1)), None, None
    if p.startswith("/v1/agent/health/service/name/"):
        return "agent-health-name", None, None, None
    if p.startswith("/v1/health/service/"):
        return "health-service", None, None, None
    if p.startswith("/v1/catalog/service/"):
        return "catalog-service", None, None, None
    return "other", None, None, None


class ProxyCall:
    def __init__(self, method, path, body, kind, service_id, check_id, status):
        self.method, self.path, self.body = method, path, body
        self.kind, self.service_id, self.check_id, self.status = kind, service_id, check_id, status


class RecordingProxy:
    """Forwards to a real Consul agent at upstream_port and records each call."""

    def __init__(self, upstream_port, timeline):
        self.upstream_port, self.timeline = upstream_port, timeline
        self.calls = []
        self._cond = threading.Condition()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("x-consul-token", "authorization", "content-type")}
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read(PROXY_BODY_MAX)
                    status, rheaders = resp.status, resp.getheaders()
                finally:
                    conn.close()
                kind, sid, cid, cstatus = classify(self.command, self.path, body)
                detail = {"method": self.command, "path": self.path, "status": status}
                if sid:
                    detail["service_id"] = sid
                if cid:
                    detail["check_id"] = cid
                if cstatus:
                    detail["check_status"] = cstatus
                with proxy._cond:
                    proxy.calls.append(ProxyCall(self.command, self.path, body, kind, sid, cid, status))
                    proxy.timeline.record("consul", kind, detail)
                    proxy._cond.notify_all()
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="consul-proxy", daemon=True)

    def start(self):
        self._thread.start()
        return self

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_call(self, predicate=None, timeout=5.0, start=0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self.calls[start:]:
                    if predicate is None or predicate(c):
                        return c
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching Consul call within {timeout}s")
                self._cond.wait(left)

    def services(self):
        status, body = _http(self.upstream_port, "GET", "/v1/agent/services")
        assert status == 200, body
        return json.loads(body)

    def checks(self):
        status, body = _http(self.upstream_port, "GET", "/v1/agent/checks")
        assert status == 200, body
        return json.loads(body)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
