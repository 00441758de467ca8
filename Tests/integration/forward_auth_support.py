"""Helpers for the forward-auth tests (test_forward_auth*.py, SPEC §11): a gateway with
`forward_auth`, `jwt` (HS256, a secret file) and `sessions`; decision requests written for each
style; and the real front proxies — Debian's nginx and Caddy — started from the shipped recipe
files in deploy/examples/forward-auth/ with only their ports and paths replaced.

Reuses session_support.py and support.py; everything talks to 127.0.0.1 only, every wait is
bounded, and every process started here is stopped by its fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import jwt_support
import support
from session_support import (COOKIE, PUBLIC_ORIGIN, SessionGateway, SessionGateways, session_config, sessions_section)
from support import LOOPBACK, free_port, port_accepts, raw_request, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES = REPO_ROOT / "deploy" / "examples" / "forward-auth"
FWD_PATH = "/_gatehouse/auth"
ISSUER = "https://issuer.fwd.test"
SECRET = b"forward-auth-test-secret-0123456789abcdef0123456789"
APP_ORIGIN = "https://app.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"
HOST = "api.example.test"
IDENTITY = ["X-Auth-Subject", "X-Auth-Roles", "X-Auth-Method", "X-Auth-Email"]

# The recipes' placeholders (deploy/examples/forward-auth/*): what the tests substitute.
RECIPE_PROXY = "127.0.0.1:8000"       # nginx's listen
RECIPE_CADDY_SITE = "http://:8000"    # Caddy's site (any host, bound to 127.0.0.1)
RECIPE_GATEHOUSE = "127.0.0.1:8080"
RECIPE_APP = "127.0.0.1:9000"
RECIPE_WWW = "/srv/gatehouse-login"

ROUTES = [
    {"name": "public", "match": {"path": "/public/**"}, "upstream": "api", "auth": "none"},
    {"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api", "require": {"roles_any": ["admin"]}},
    {"name": "app", "match": {"path": "/app/**", "methods": ["GET"]}, "upstream": "api",
     "login_redirect": "/login.html"},
    {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
]

CORS = {"allow_origins": [APP_ORIGIN], "allow_methods": ["GET", "POST", "PUT", "DELETE"],
        "allow_headers": ["Authorization", "Content-Type"], "expose_headers": ["X-Request-Id"],
        "allow_credentials": True, "max_age": "10m"}


def token(sub: str = "alice", roles=("reader",), lifetime: int = 600, secret: bytes = SECRET, **claims) -> str:
    """An HS256 token of the test issuer (PyJWT)."""
    body = jwt_support.claims_for(ISSUER, sub=sub, lifetime=lifetime, roles=list(roles), **claims)
    return jwt_support.mint_pyjwt(body, secret, "HS256")


def describe(style: str, method: str, uri: str, host: str = HOST, proto: str = "http"):
    """(decision method, decision target, description headers) for the original `method uri`."""
    if style == "forwarded":
        return "GET", FWD_PATH, [("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri),
                                 ("X-Forwarded-Host", host), ("X-Forwarded-Proto", proto)]
    if style == "original":
        return "GET", FWD_PATH, [("X-Original-Method", method), ("X-Original-URI", uri), ("X-Forwarded-Host", host)]
    if style == "envoy":
        return method, FWD_PATH + uri, []
    raise ValueError(style)


class ForwardAuthGateway(SessionGateway):
    style = "forwarded"

    def decide(self, method: str, uri: str, *, headers: list[tuple[str, str]] | None = None, token: str | None = None,
               cookie: str | None = None, host: str = HOST, style: str | None = None, request_id: str | None = None,
               body: bytes = b""):
        """A decision request describing `method uri` (returns (response, request_id))."""
        style = style or self.style
        decision_method, target, described = describe(style, method, uri, host)
        request_id = request_id or f"fwd-{uuid.uuid4().hex}"
        hs = [("X-Request-Id", request_id)] + described
        if token is not None:
            hs.append(("Authorization", f"Bearer {token}"))
        if cookie is not None:
            hs.append(("Cookie", f"{COOKIE}={cookie}"))
        hs.extend(headers or [])
        response = raw_request(self.port, decision_method, target, hs, body=body,
                               host=host if style == "envoy" else "default")
        return response, request_id


def start_gateway(gateways: SessionGateways, upstream_url: str, style: str = "forwarded", *,
                  forward_auth: dict | None = None, name: str | None = None, extra_issuers: list | None = None,
                 **kw) -> ForwardAuthGateway:
    """A gateway with `forward_auth` (the given style), the test issuer, sessions and CORS."""
    gateways.workdir.mkdir(parents=True, exist_ok=True)
    (gateways.workdir / "fwd-hs256.key").write_bytes(SECRET)
    if not (gateways.workdir / "users.htpasswd").exists():
        gateways.users()
    name = name or f"fwd{len(gateways.started)}"
    port, admin_port = free_port(), free_port()
    log = gateways.workdir / f"{name}-access.log"
    jwt = {"issuers": [{"name": "test", "issuer": ISSUER, "audiences": [jwt_support.AUDIENCE],
                        "algorithms": ["HS256"], "secret_file": "fwd-hs256.key"}] + list(extra_issuers or [])}
    config = session_config(port, admin_port, log, upstream_url=upstream_url, sessions=sessions_section(),
                            routes=kw.pop("routes", ROUTES), cors=CORS, jwt=jwt,
                            identity_headers={"claims": {"X-Auth-Email": "email"}}, **kw)
    config["forward_auth"] = {"style": style, **(forward_auth or {})}
    gw = ForwardAuthGateway(gateways.binary, gateways.workdir, config, port, admin_port, log, name=name)
    gw.style = style
    gw.config = config
    gateways.started.append(gw)
    gw.start()
    return gw


def identity(response) -> dict:
    """The identity headers of an answer: name -> list of values."""
    return {name: response.header_all(name) for name in IDENTITY}


# ---------------------------------------------------------------------------------------------
# The real front proxies, from the shipped recipes

class FrontProxy:
    """nginx or Caddy started from a recipe file on a free port; stopped by `stop()`."""

    def __init__(self, kind: str, workdir: Path, gateway_port: int, app_port: int):
        self.kind = kind
        self.workdir = workdir / kind
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.www = self.workdir / "www"
        self.www.mkdir(exist_ok=True)
        (self.www / "login.html").write_text("<html><body>Please log in (login page)</body></html>\n")
        recipe = (RECIPES / ("nginx.conf" if kind == "nginx" else "Caddyfile")).read_text()
        self.recipe = (recipe.replace(RECIPE_PROXY, f"{LOOPBACK}:{self.port}")
                       .replace(RECIPE_CADDY_SITE, f"http://:{self.port}")
                       .replace(RECIPE_GATEHOUSE, f"{LOOPBACK}:{gateway_port}")
                       .replace(RECIPE_APP, f"{LOOPBACK}:{app_port}")
                       .replace(RECIPE_WWW, str(self.www)))
        for placeholder in (RECIPE_PROXY, RECIPE_CADDY_SITE, RECIPE_GATEHOUSE, RECIPE_APP, RECIPE_WWW):
            assert placeholder not in self.recipe
        self.stderr_path = self.workdir / "stderr.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0):
        if self.kind == "nginx":
            argv = self._nginx_files()
            env = None
        else:
            argv, env = self._caddy_files()
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=self._err, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} did not start: {self.stderr()}")
            time.sleep(0.05)
        return self

    def _nginx_files(self) -> list[str]:
        """The recipe is an `http` block's content; nginx gets a main file around it that only
        keeps its own files (pid, logs, temp) in the scratch folder, as a non-root user."""
        (self.workdir / "recipe.conf").write_text(self.recipe)
        temp = self.workdir / "temp"
        temp.mkdir(exist_ok=True)
        main = f"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {self.workdir}/nginx.pid;
            error_log {self.workdir}/error.log info;
            events {{ worker_connections 256; }}
            http {{
                access_log {self.workdir}/access.log;
                client_body_temp_path {temp}/body;
                proxy_temp_path {temp}/proxy;
                fastcgi_temp_path {temp}/fastcgi;
                uwsgi_temp_path {temp}/uwsgi;
                scgi_temp_path {temp}/scgi;
                include {self.workdir}/recipe.conf;
            }}
            """
        (self.workdir / "nginx.conf").write_text(main)
        return ["nginx", "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf"), "-e", str(self.workdir / "error.log")]

    def _caddy_files(self):
        (self.workdir / "Caddyfile").write_text(self.recipe)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
        return ["caddy", "run", "--config", str(self.workdir / "Caddyfile"), "--adapter", "caddyfile"], env

    def stderr(self) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        error_log = self.workdir / "error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")[-4000:]
        return text[-6000:]

    def request(self, method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                host: str = HOST):
        request_id = f"px-{uuid.uuid4().hex}"
        hs = [("X-Request-Id", request_id)] + list(headers or [])
        if method in ("POST", "PUT") and not body:
            hs.append(("Content-Length", "0"))
        return raw_request(self.port, method, path, hs, body=body, host=host), request_id

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def front_proxies(tmp_path, request):
    started: list[FrontProxy] = []

    def start(kind: str, gateway_port: int, app_port: int) -> FrontProxy:
        if shutil.which("nginx" if kind == "nginx" else "caddy") is None:
            pytest.fail(f"{kind} is not installed (deploy/install-deps.sh with GATEHOUSE_TEST_DEPS=1)", pytrace=False)
        proxy = FrontProxy(kind, tmp_path, gateway_port, app_port)
        started.append(proxy)
        return proxy.start()

    yield start
    failed = support.call_failed(request)
    for proxy in started:
        proxy.stop()
        if failed:
            print(f"---- {proxy.kind} ----\n{proxy.recipe}\n---- {proxy.kind} stderr ----\n{proxy.stderr()}")
