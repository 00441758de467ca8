"""Helpers for the end-to-end session-cookie tests (test_sessions*.py): users files hashed by
`gatehouse hash-password`, a gateway wrapper that adds the `sessions`, `cors`, `jwt` and
`server.public_origin` sections to the shared harness, Set-Cookie parsing, a keep-alive raw
client for the load test, and a real `redis-server` on a free loopback port.

Reuses support.py (GatewayProcess, EchoUpstream, raw_request, read_response, free_port,
assert_uniform_raw); everything talks to 127.0.0.1 only. Every wait here is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

import support
from support import LOOPBACK, GatewayProcess, raw_request, read_response, wait_until

COOKIE = "gatehouse_session"
PUBLIC_ORIGIN = "https://gate.example.test"
CORS_ORIGIN = "https://app.example.com"          # listed exactly in the global CORS policy
CORS_WILDCARD_ORIGIN = "https://tenant.example.com"  # matched by https://*.example.com
FOREIGN_ORIGIN = "https://evil.example.net"
ROUTE_CORS_ORIGIN = "https://route-only.example.org"  # allowed only by the /rc/** route's own block

CHALLENGE_PLAIN = 'Bearer realm="gatehouse"'
CHALLENGE_INVALID = 'Bearer realm="gatehouse", error="invalid_token"'
CHALLENGE_SCOPE = 'Bearer realm="gatehouse", error="insufficient_scope"'

# name -> password; roles come from sessions.login.roles (carol has none configured).
USERS = {"alice": "correct horse battery", "bob": "bob's p@ss=word&more", "carol": "carol-secret"}
ROLES = {"alice": ["admin", "ops"], "bob": ["reader"]}

DEFAULT_ROUTES = [
    {"name": "public", "match": {"path": "/public/**"}, "upstream": "api", "auth": "none"},
    {"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api", "require": {"roles_any": ["admin"]}},
    {"name": "route-cors", "match": {"path": "/rc/**"}, "upstream": "api",
     "cors": {"allow_origins": [ROUTE_CORS_ORIGIN], "allow_methods": ["GET", "POST"], "allow_credentials": True}},
    {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
]

DEFAULT_CORS = {
    "allow_origins": [CORS_ORIGIN, "https://*.example.com"],
    "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
    "allow_headers": ["Authorization", "Content-Type"],
    "expose_headers": ["X-Request-Id"],
    "allow_credentials": True,
    "max_age": "10m",
}


# ---------------------------------------------------------------------------------------------
# Users file

_hash_cache: dict[tuple[str, str, int], str] = {}


def hash_password(binary: str, password: str, cost: int = 5) -> str:
    """A bcrypt hash from `gatehouse hash-password --cost N` (password on stdin)."""
    key = (binary, password, cost)
    if key not in _hash_cache:
        out = subprocess.run([binary, "hash-password", "--cost", str(cost)], input=password + "\n",
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        value = out.stdout.strip()
        assert value.startswith(("$2b$", "$2y$")), value
        _hash_cache[key] = value
    return _hash_cache[key]


def write_users_file(binary: str, path: Path, users: dict[str, str], cost: int | dict[str, int] = 5) -> Path:
    """htpasswd lines `name:hash`; `cost` is one bcrypt cost or one per user."""
    lines = []
    for name, password in users.items():
        c = cost[name] if isinstance(cost, dict) else cost
        lines.append(f"{name}:{hash_password(binary, password, c)}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Set-Cookie

class SetCookie:
    """One parsed `Set-Cookie` value: name, value and attributes (names lowercased; flags -> True)."""

    def __init__(self, header: str):
        self.raw = header
        parts = [p.strip() for p in header.split(";")]
        self.name, _, self.value = parts[0].partition("=")
        self.name, self.value = self.name.strip(), self.value.strip()
        self.attrs: dict[str, str | bool] = {}
        self.attr_names: list[str] = []
        for part in parts[1:]:
            if not part:
                continue
            k, eq, v = part.partition("=")
            self.attrs[k.strip().lower()] = v.strip() if eq else True
            self.attr_names.append(k.strip().lower())

    def __repr__(self):
        return f"<SetCookie {self.raw!r}>"


def set_cookies(response, name: str | None = None) -> list[SetCookie]:
    """Every Set-Cookie of a RawResponse (or a requests.Response), optionally only `name`."""
    if hasattr(response, "header_all"):
        values = response.header_all("Set-Cookie")
    else:
        values = response.raw.headers.getlist("Set-Cookie") if hasattr(response.raw.headers, "getlist") \
            else [v for k, v in response.raw.headers.items() if k.lower() == "set-cookie"]
    out = [SetCookie(v) for v in values]
    return [c for c in out if name is None or c.name == name]


def forged_session_id(seed: str = "") -> str:
    """A well-formed (43 base64url characters) session id that no store knows."""
    return (uuid.uuid4().hex + uuid.uuid4().hex + "AbCdEfGhIjK-_" + seed)[:43]


# ---------------------------------------------------------------------------------------------
# The gateway

def session_config(port: int, admin_port: int | None, access_log: Path, *, upstream_url: str, sessions: dict,
                   routes: list | None = None, cors: dict | None | bool = True, jwt: dict | None = None,
                   server: dict | None = None, identity_headers: dict | None = None, extra: dict | None = None) -> dict:
    srv = {"listen": [f"{LOOPBACK}:{port}"], "workers": 2, "shutdown_grace": "2s",
           "public_origin": PUBLIC_ORIGIN}
    srv.update(server or {})
    config: dict = {"server": srv}
    if admin_port is not None:
        config["admin"] = {"listen": f"{LOOPBACK}:{admin_port}"}
    config["upstreams"] = {"api": {"targets": [upstream_url]}}
    if jwt is not None:
        config["jwt"] = jwt
    config["sessions"] = sessions
    if cors is True:
        config["cors"] = DEFAULT_CORS
    elif cors:
        config["cors"] = cors
    if identity_headers is not None:
        config["identity_headers"] = identity_headers
    config["routes"] = DEFAULT_ROUTES if routes is None else routes
    config["access_log"] = {"path": str(access_log), "format": "json"}
    config.update(extra or {})
    return config


def sessions_section(users_file: str = "users.htpasswd", *, cookie: dict | None = None, idle: str = "30m",
                     absolute: str = "12h", store: str = "memory", roles: dict | None = None,
                     max_failures: int = 5, failure_window: str = "15m", **extra) -> dict:
    section = {
        "cookie": {"name": COOKIE, "secure": False, "same_site": "Lax", "path": "/"} if cookie is None else cookie,
        "idle_timeout": idle,
        "absolute_timeout": absolute,
        "store": store,
        "login": {"path": "/login", "users_file": users_file, "roles": ROLES if roles is None else roles,
                  "max_failures": max_failures, "failure_window": failure_window},
    }
    section.update(extra)
    return section


class SessionGateway(GatewayProcess):
    """A gatehouse process with sessions on, and requests that carry the session cookie."""

    cookie_name = COOKIE

    def log_lines(self, path: Path | None = None) -> list[str]:
        """Complete lines only (the writer thread may be mid-write)."""
        path = path or self.access_log
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        complete, _, _ = text.rpartition("\n")
        return [line for line in complete.split("\n") if line]

    def request(self, method: str, path: str, *, cookie: str | None = None, token: str | None = None,
                headers: list[tuple[str, str]] | None = None, body: bytes = b"", request_id: str | None = None,
                host: str | None = "default", timeout: float = 10.0):
        """A raw request; returns (response, request_id)."""
        request_id = request_id or f"ses-{uuid.uuid4().hex}"
        hs = [("X-Request-Id", request_id)]
        if token is not None:
            hs.append(("Authorization", f"Bearer {token}"))
        if cookie is not None:
            hs.append(("Cookie", f"{self.cookie_name}={cookie}"))
        hs.extend(headers or [])
        if method in ("POST", "PUT", "PATCH") and not any(k.lower() == "content-length" for k, _ in hs) and not body:
            hs.append(("Content-Length", "0"))
        return raw_request(self.port, method, path, hs, body=body, host=host, timeout=timeout), request_id

    def login(self, username: str, password: str, *, as_json: bool = False, cookie: str | None = None,
              headers: list[tuple[str, str]] | None = None, request_id: str | None = None, timeout: float = 10.0):
        if as_json:
            body = json.dumps({"username": username, "password": password}).encode()
            ctype = "application/json"
        else:
            body = urlencode({"username": username, "password": password}).encode()
            ctype = "application/x-www-form-urlencoded"
        hs = [("Content-Type", ctype)] + list(headers or [])
        return self.request("POST", "/login", cookie=cookie, headers=hs, body=body, request_id=request_id,
                            timeout=timeout)

    def login_cookie(self, username: str = "alice", password: str | None = None, **kw) -> str:
        """Logs in and returns the new session id (asserts 200 and one Set-Cookie)."""
        password = USERS[username] if password is None else password
        resp, _ = self.login(username, password, **kw)
        assert resp.status == 200, f"login failed: {resp!r}\n{self.stderr()[-2000:]}"
        cookies = set_cookies(resp, self.cookie_name)
        assert len(cookies) == 1, resp.headers
        return cookies[0].value

    def keepalive(self, cookie: str | None, headers: list[tuple[str, str]] | None = None):
        return self.request("POST", "/keepalive", cookie=cookie, headers=headers)

    def logout(self, cookie: str | None, headers: list[tuple[str, str]] | None = None):
        return self.request("POST", "/logout", cookie=cookie, headers=headers)

    def wait_log_record(self, request_id: str, timeout: float = 3.0) -> dict:
        def find():
            for line in self.log_lines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("request_id") == request_id:
                    return rec
            return None
        return wait_until(find, timeout, message=f"access-log line of {request_id}")


class SessionGateways:
    """Starts session gateways (in one work directory, where the users file lives) and kills
    every one of them at close()."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.started: list[SessionGateway] = []

    def users(self, users: dict[str, str] | None = None, cost: int | dict[str, int] = 5,
              name: str = "users.htpasswd") -> str:
        write_users_file(self.binary, self.workdir / name, USERS if users is None else users, cost)
        return name

    def start(self, *, upstream_url: str, sessions: dict | None = None, name: str | None = None,
              wait: bool = True, port: int | None = None, admin: bool = True, **kw) -> SessionGateway:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.workdir / "users.htpasswd").exists():
            self.users()
        if sessions is None:
            sessions = sessions_section()
        name = name or f"sgw{len(self.started)}"
        port = port or support.free_port()
        admin_port = support.free_port() if admin else None
        log = self.workdir / f"{name}-access.log"
        config = session_config(port, admin_port, log, upstream_url=upstream_url, sessions=sessions, **kw)
        gw = SessionGateway(self.binary, self.workdir, config, port, admin_port, log, name=name)
        gw.config = config
        self.started.append(gw)
        gw.start(wait=wait)
        return gw

    def close(self, dump: bool = False):
        for gw in self.started:
            gw.kill()
            if dump:
                print(f"---- {gw.config_path.name} ----\n{gw.config_path.read_text()}")
                print(f"---- stderr of {gw.config_path.name} ----\n{gw.stderr()[-4000:]}")


@pytest.fixture
def session_gateways(gatehouse_bin, tmp_path, request):
    yield from support.closed_after(SessionGateways(gatehouse_bin, tmp_path), request)


# ---------------------------------------------------------------------------------------------
# Assertions

def upstream_record(upstream, request_id: str) -> dict | None:
    with upstream.lock:
        records = list(upstream.requests)
    for rec in records:
        if support.pairs_get(rec["headers"], "X-Request-Id") == request_id:
            return rec
    return None


def received(record: dict, name: str) -> list[str]:
    return [v for k, v in record["headers"] if k.strip().lower() == name.lower()]


def assert_refused(gw: SessionGateway, upstream, response, request_id: str, *, status: int = 401,
                   error: str = "unauthorized", reason: str | None = None, challenge: str | None = None,
                   decision: str = "deny") -> dict:
    """The uniform refusal, nothing forwarded, and (when given) the access-log reason."""
    support.assert_uniform_raw(response, status, error)
    assert response.header("X-Request-Id") == request_id
    if challenge is not None:
        assert response.header_all("WWW-Authenticate") == [challenge], response.headers
    record = gw.wait_log_record(request_id)
    if upstream is not None:
        assert upstream_record(upstream, request_id) is None, "a refused request reached the upstream"
    assert record["status"] == status, record
    assert record["decision"] == decision, record
    if reason is not None:
        assert record["reason"] == reason, record
    return record


def assert_no_secret_in_logs(gw: SessionGateway, *secrets: str):
    """SPEC §9: cookies and passwords never appear in the access log, stdout or stderr."""
    text = "\n".join(gw.log_lines()) + gw.stdout() + gw.stderr()
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:6]}…) appears in the gateway's output"


# ---------------------------------------------------------------------------------------------
# A keep-alive client (load test)

class KeepAliveClient:
    """One persistent HTTP/1.1 connection to the gateway; reconnects when the server closes it."""

    def __init__(self, port: int, timeout: float = 15.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.reader = None
        self.reconnects = 0

    def _connect(self):
        self.close()
        self.sock = socket.create_connection((LOOPBACK, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in range(2):
            fresh = self.sock is None
            if fresh:
                self._connect()
            try:
                self.sock.sendall(data)
                response = read_response(self.reader, method)
            except (ConnectionError, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed while idle: once more on a new one.
                self.close()
                if fresh or attempt == 1:
                    raise
                self.reconnects += 1
                continue
            if (response.header("Connection") or "").lower() == "close":
                self.close()
            return response
        raise AssertionError("unreachable")

    def close(self):
        for thing in (self.reader, self.sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
        self.reader = None
        self.sock = None


# ---------------------------------------------------------------------------------------------
# redis-server

class RedisServer:
    """A throwaway `redis-server` on 127.0.0.1:port (no persistence). stop() terminates it;
    start() again on the same port brings back an empty server."""

    def __init__(self, workdir: Path, port: int | None = None, password: str | None = None):
        self.password = password
        self.binary = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        self.workdir = workdir
        self.port = port or support.free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 10.0):
        if not self.binary or not self.cli:
            pytest.skip("redis-server / redis-cli not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.log)]
            + (["--requirepass", self.password] if self.password else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}: "
                                     f"{self.log.read_text() if self.log.exists() else ''}")
            if self.cmd("PING", check=False).strip() == "PONG":
                return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer PING on {self.port} within {timeout}s")

    def cmd(self, *args: str, check: bool = True) -> str:
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        out = subprocess.run([self.cli, "-h", LOOPBACK, "-p", str(self.port), *auth, *args], capture_output=True,
                             text=True, timeout=5)
        if check:
            assert out.returncode == 0, out.stderr
        return out.stdout

    def keys(self) -> list[str]:
        return [k for k in self.cmd("--raw", "KEYS", "*").splitlines() if k]

    def dump_all(self) -> str:
        """Every key with its type and content, as text (for "no raw id anywhere" checks)."""
        parts = []
        for key in self.keys():
            kind = self.cmd("--raw", "TYPE", key).strip()
            parts.append(f"{key} ({kind})")
            if kind == "hash":
                parts.append(self.cmd("--raw", "HGETALL", key))
            elif kind == "string":
                parts.append(self.cmd("--raw", "GET", key))
            elif kind == "set":
                parts.append(self.cmd("--raw", "SMEMBERS", key))
            elif kind == "list":
                parts.append(self.cmd("--raw", "LRANGE", key, "0", "-1"))
            elif kind == "zset":
                parts.append(self.cmd("--raw", "ZRANGE", key, "0", "-1", "WITHSCORES"))
        return "\n".join(parts)

    def pause(self):
        """SIGSTOP: the server keeps its connections open but answers nothing (a hung Redis)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
