"""A real OpenID provider for the OIDC tests (SPEC §14): django-oidc-provider 0.9 in the small
Django 5.2 project under oidc_provider/, served by Django's `runserver` on a free 127.0.0.1 port.

Set-up (no hand-written mock anywhere): the first provider of a test session runs `migrate` and
`manage.py gatehouse_provider setup` into a template SQLite file (users alice/bob, the clients
gatehouse-web, gatehouse and api-client, one RS256 key); every provider then serves its own copy
of that file, so tests that rotate keys, expire tokens or stop the provider never disturb others.

Quirks of django-oidc-provider 0.9 that the tests rely on or work around (checked by hand):
- The issuer is SITE_URL + "/openid" (the prefix the URLconf mounts it at), no trailing slash.
- The introspecting client needs the scope `token_introspection` and — with
  OIDC_INTROSPECTION_VALIDATE_AUDIENCE_SCOPE, on by default — the *audience of the token* (the
  client id it was issued to, here `api-client`) among its scopes; otherwise every answer is
  `{"active": false}`.
- Introspection answers `{"active": false}` with 200 for every failure, wrong client
  credentials included: a misconfigured gateway sees every token as inactive.
- The introspection answer's `exp`, `sub`, `aud` and `iat` are those of the token's *ID token*
  (10 minutes by default), not of the access token (1 hour); `scope` only with
  OIDC_INTROSPECTION_RESPONSE_SCOPE_ENABLE; tokens without an ID token (client_credentials) have
  no `sub`. `roles` is added by our processing hook (provider/hooks.py).
- Access tokens are opaque (uuid4 hex); ID tokens are RS256 JWTs signed with the *first* key
  in the table, and the JWKS lists every key: rotation is "create a new key, delete the old".
- An authorization code is deleted when exchanged: a replayed code gets `invalid_grant`.
- `/openid/end-session` redirects to an `end-session-prompt` page (a form), not straight back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

import support

PROJECT = Path(__file__).resolve().parent / "oidc_provider"
WEB_SECRET = "web-secret-0123456789abcdef"           # client gatehouse-web (browser login)
INTROSPECT_SECRET = "introspect-secret-0123456789"   # client gatehouse (introspection)
API_SECRET = "api-secret-0123456789abcdef"           # client api-client (password grant)
USERS = {"alice": "wonderland", "bob": "builder"}
ROLES = {"alice": ["admin"], "bob": ["reader"]}

_template_lock = threading.Lock()
_template: Path | None = None


def _manage(db: Path, *args: str, env: dict | None = None, timeout: float = 60) -> str:
    environment = {**os.environ, "OIDC_PROVIDER_DB": str(db), **(env or {})}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=environment,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def template_database(workdir: Path) -> Path:
    """The migrated and set-up SQLite file, made once per test session."""
    global _template
    with _template_lock:
        if _template is None or not _template.exists():
            db = workdir / "oidc-template.sqlite3"
            _manage(db, "migrate", "-v0")
            _manage(db, "gatehouse_provider", "setup", WEB_SECRET, INTROSPECT_SECRET, API_SECRET)
            _template = db
        return _template


class OIDCProvider:
    """One provider process with its own database. `issuer` is what its tokens carry."""

    def __init__(self, workdir: Path, template: Path, name: str = "idp", id_token_expire: int = 600,
                 token_expire: int = 3600):
        self.workdir = workdir
        self.name = name
        self.db = workdir / f"{name}.sqlite3"
        shutil.copy(template, self.db)
        self.port = support.free_port()
        self.env = {"OIDC_PROVIDER_SITE_URL": self.site_url, "OIDC_IDTOKEN_EXPIRE": str(id_token_expire),
                    "OIDC_TOKEN_EXPIRE": str(token_expire)}
        self.log_path = workdir / f"{name}-provider.log"
        self.proc: subprocess.Popen | None = None

    # -- addresses
    @property
    def site_url(self) -> str:
        return f"http://{support.LOOPBACK}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.site_url}/openid"

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    # -- process
    def start(self, timeout: float = 30.0) -> "OIDCProvider":
        log = open(self.log_path, "ab")
        environment = {**os.environ, "OIDC_PROVIDER_DB": str(self.db), **self.env}
        # --noreload: one process, so that stop() ends it; runserver is threaded.
        self.proc = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload",
                                      f"{support.LOOPBACK}:{self.port}"],
                                     cwd=PROJECT, env=environment, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        support.wait_until(self._answers, timeout, interval=0.1, message=f"the OIDC provider on {self.port}")
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the provider exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return requests.get(self.endpoint(".well-known/openid-configuration"), timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- set-up and changes, through the management command
    def manage(self, *args: str) -> str:
        return _manage(self.db, "gatehouse_provider", *args, env=self.env)

    def rotate_key(self) -> str:
        """A new signing key; the old ones removed. Returns the new kid."""
        return self.manage("rotate").strip().splitlines()[-1]

    def kids(self) -> list[str]:
        return self.manage("kids").split()

    def set_redirect_uris(self, client_id: str, *uris: str):
        self.manage("redirect", client_id, *uris)

    def expire(self, access_token: str):
        self.manage("expire", access_token)

    def revoke(self, access_token: str):
        self.manage("revoke", access_token)

    # -- protocol
    def discovery(self) -> dict:
        return requests.get(self.endpoint(".well-known/openid-configuration"), timeout=5).json()

    def password_grant(self, user: str = "alice", scope: str = "openid profile") -> dict:
        """Tokens for `user` issued to api-client: an opaque access token and an RS256 ID token
        (aud = api-client) — the JWT the gateway takes as a Bearer token in these tests."""
        r = requests.post(self.endpoint("token"), auth=("api-client", API_SECRET), timeout=10,
                          data={"grant_type": "password", "username": user, "password": USERS[user], "scope": scope})
        assert r.status_code == 200, r.text
        return r.json()

    def introspect(self, token: str, client: tuple[str, str] = ("gatehouse", INTROSPECT_SECRET)) -> dict:
        r = requests.post(self.endpoint("introspect"), auth=client, data={"token": token}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


class DoctoredDiscovery:
    """A tiny static server for the hostile case: it serves `document` (e.g. a real provider's
    discovery document with another `issuer`) at every path, and counts requests."""

    def __init__(self, document: dict):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        owner = self
        self.document = document
        self.requests: list[str] = []
        self.port = support.free_port()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.requests.append(self.path)
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((support.LOOPBACK, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://{support.LOOPBACK}:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout: float, message: str):
    return support.wait_until(predicate, timeout, interval=0.05, message=message)


def now() -> float:
    return time.time()
