"""A real browser as the CORS client (SPEC §6): headless Chromium loads a page from one origin
whose script `fetch()`es a target on another origin, and writes what the script could see
into the DOM, which Chromium dumps (`--dump-dom`). No WebDriver: one short-lived Chromium
process per fetch, each with its own empty profile (so no preflight cache survives between
runs), bounded by a timeout and killed with its whole process group.

Origins, all on loopback:
- the page server listens on 127.0.0.1:PA and is reached by two names, which Chromium treats
  as two origins: `http://localhost:PA` (the allowed one) and `http://127.0.0.1:PA` (another);
- the target (Flask-CORS reference or gatehouse) is `http://127.0.0.1:PB`, a third origin.

Install Chromium and the reference server with `bash Tests/integration/install_browser.sh`.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_TIMEOUT = 30  # seconds for one Chromium run, start to DOM dump
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


# ---------------------------------------------------------------------------------------------
# Chromium

def find_chromium() -> str | None:
    """$CHROMIUM_BIN, or the first Chromium on PATH."""
    explicit = os.environ.get("CHROMIUM_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return next(filter(None, (shutil.which(name) for name in BROWSER_NAMES)), None)


_RESULT = re.compile(r'<pre id="result">(.*?)</pre>', re.S)


def dump_dom(url: str, timeout: float = BROWSER_TIMEOUT) -> str:
    """Loads `url` in headless Chromium and returns the serialized DOM once the page is idle
    (virtual time lets the page's fetches finish, then stops the clock)."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("Chromium not found: run Tests/integration/install_browser.sh")
    with tempfile.TemporaryDirectory(prefix="gatehouse-chromium-") as profile:
        args = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise AssertionError(f"Chromium did not finish {url} within {timeout}s")
        finally:
            _kill_group(proc)  # helpers (zygote, crashpad) that outlive the browser process
    if proc.returncode != 0:
        raise AssertionError(f"Chromium exited with {proc.returncode} on {url}:\n{err[-3000:]}")
    return out


def _kill_group(proc: subprocess.Popen):
    """Kills the process group that this Popen started (start_new_session), by its id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------
# The page: one fetch, its outcome as JSON in <pre id=result>

@dataclass
class FetchSpec:
    """What the page's script does: `fetch(url, {method, headers, credentials, body})`, then
    reads the body and the named response headers."""
    url: str
    method: str = "GET"
    headers: dict = field(default_factory=dict)
    credentials: str = "same-origin"  # 'omit' | 'same-origin' | 'include'
    body: str | None = None
    read_headers: tuple = ()

    def init(self) -> dict:
        init = {"method": self.method, "headers": self.headers, "credentials": self.credentials,
                "cache": "no-store"}
        if self.body is not None:
            init["body"] = self.body
        return init


PAGE = """<!doctype html>
<meta charset="utf-8"><title>cors</title>
<pre id="result">pending</pre>
<script>
const spec = %s;
(async () => {
  const out = {origin: location.origin};
  try {
    const response = await fetch(spec.url, spec.init);
    out.status = response.status;
    out.type = response.type;
    out.headers = {};
    for (const name of spec.readHeaders) out.headers[name] = response.headers.get(name);
    try { out.body = await response.text(); out.bodyRead = true; }
    catch (e) { out.bodyRead = false; out.bodyError = e.name; }
  } catch (e) {
    out.error = e.name;
    out.message = e.message;
  }
  document.getElementById("result").textContent = JSON.stringify(out);
})();
</script>
"""


class PageServer:
    """Serves one generated page per fetch at /page/N on 127.0.0.1:PA."""

    def __init__(self):
        self._pages: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        pages = self._pages

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.allowed_origin = f"http://localhost:{self.port}"
        self.other_origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def add(self, spec: FetchSpec) -> str:
        path = f"/page/{next(self._ids)}"
        script_spec = {"url": spec.url, "init": spec.init(), "readHeaders": list(spec.read_headers)}
        # </ inside the JSON would end the script element.
        self._pages[path] = (PAGE % json.dumps(script_spec).replace("</", "<\\/")).encode()
        return path

    def fetch_from(self, origin: str, spec: FetchSpec) -> dict:
        """Loads a page on `origin` (allowed_origin or other_origin) that runs `spec`; returns
        the outcome: {status, type, headers, body, bodyRead} or {error: "TypeError", message}."""
        dom = dump_dom(origin + self.add(spec))
        match = _RESULT.search(dom)
        assert match, f"no result element in the dumped DOM:\n{dom[:2000]}"
        text = html.unescape(match.group(1))
        assert text != "pending", "the page's fetch did not settle within the virtual time budget"
        return json.loads(text)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def blocked(outcome: dict) -> bool:
    """Whether the browser refused to let the script see the response (a CORS failure)."""
    return outcome.get("error") == "TypeError" and "status" not in outcome


# ---------------------------------------------------------------------------------------------
# The reference: Flask + Flask-CORS, configured like the gateway tests below

def flask_cors_available() -> bool:
    try:
        import flask  # noqa: F401
        import flask_cors  # noqa: F401
        return True
    except ImportError:
        return False


class FlaskCORSReference:
    """A Flask app on 127.0.0.1:PB with Flask-CORS allowing exactly `allowed_origin`:

    - `/open/*`, `/private/*`: origin allowed, credentials, methods GET/HEAD/POST/PUT,
      headers Content-Type and X-Custom, X-Request-Id exposed (the gatehouse `cors:` block of
      the gateway tests); `/open/*` answers 200 JSON, `/private/*` 401 JSON.
    - `/nocred/*`: origin allowed, no credentials (a credentialed fetch must fail).
    - `/nocors/*`: no CORS at all.
    Every request it receives is recorded in `requests` (method, path, headers)."""

    def __init__(self, allowed_origin: str):
        from flask import Flask, jsonify, request
        from flask_cors import CORS
        from werkzeug.serving import make_server

        app = Flask("gatehouse-cors-reference")
        self.requests: list[dict] = []
        lock = threading.Lock()
        strict = {"origins": [allowed_origin], "supports_credentials": True,
                  "methods": ["GET", "HEAD", "POST", "PUT"], "allow_headers": ["Content-Type", "X-Custom"],
                  "expose_headers": ["X-Request-Id"], "max_age": 600}
        CORS(app, resources={r"/open/*": strict, r"/private/*": strict,
                             r"/nocred/*": {"origins": [allowed_origin]}})

        @app.before_request
        def record():
            with lock:
                self.requests.append({"method": request.method, "path": request.path,
                                      "headers": {k.lower(): v for k, v in request.headers.items()}})

        def answer(status: int):
            response = jsonify({"method": request.method, "path": request.path, "status": status,
                                "x_custom": request.headers.get("X-Custom")})
            response.status_code = status
            response.headers["X-Request-Id"] = "ref-1"
            return response

        for prefix in ("open", "nocred", "nocors"):
            app.add_url_rule(f"/{prefix}/<path:rest>", f"{prefix}", lambda rest: answer(200),
                             methods=["GET", "POST", "PUT"])
        app.add_url_rule("/private/<path:rest>", "private", lambda rest: answer(401), methods=["GET", "POST", "PUT"])

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
        self.server = make_server(LOOPBACK, 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://{LOOPBACK}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def preflights(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "OPTIONS"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# gatehouse

def gatehouse_binary() -> Path:
    """$GATEHOUSE_BIN (relative to the repository root unless absolute) or .build/debug/gatehouse."""
    path = Path(os.environ.get("GATEHOUSE_BIN", ".build/debug/gatehouse"))
    return path if path.is_absolute() else REPO_ROOT / path


@functools.cache
def gatehouse_supports_cors() -> bool:
    """Whether `gatehouse check` accepts a config with a `cors:` block — true once CORS lands,
    so that the gateway tests start running by themselves."""
    binary = gatehouse_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    config = {
        "server": {"listen": [f"{LOOPBACK}:1"]},
        "upstreams": {"echo": {"targets": [f"http://{LOOPBACK}:2"]}},
        "cors": {"allow_origins": ["http://localhost:3"], "allow_methods": ["GET"], "allow_credentials": True},
        "routes": [{"name": "open", "match": {"path": "/**"}, "upstream": "echo", "auth": "none"}],
    }
    with tempfile.TemporaryDirectory(prefix="gatehouse-cors-probe-") as folder:
        path = Path(folder) / "gatehouse.yaml"
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        try:
            result = subprocess.run([str(binary), "check", "--config", str(path)], capture_output=True,
                                    text=True, timeout=20, cwd=folder)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return result.returncode == 0


def gateway_cors_config(port: int, admin_port: int, upstream_url: str, allowed_origin: str, workdir: Path) -> dict:
    """The gateway of the browser tests, shaped like FlaskCORSReference: the global `cors:`
    block expresses its strict resources; routes `/open/**` (auth none), `/private/**` (auth
    required: 401 without a token), `/nocred/**` with its own block without credentials (it
    replaces the global one entirely), `/nocors/**` with `cors: false`."""
    secret = workdir / "hs256.key"
    secret.write_bytes(os.urandom(32).hex().encode() + b"\n")
    return {
        "server": {"listen": [f"{LOOPBACK}:{port}"], "workers": 1, "shutdown_grace": "1s"},
        "admin": {"listen": f"{LOOPBACK}:{admin_port}"},
        "upstreams": {"echo": {"targets": [upstream_url]}},
        "jwt": {"issuers": [{"name": "local", "algorithms": ["HS256"], "secret_file": secret.name}]},
        "cors": {"allow_origins": [allowed_origin], "allow_methods": ["GET", "HEAD", "POST", "PUT"],
                 "allow_headers": ["Content-Type", "X-Custom"], "expose_headers": ["X-Request-Id"],
                 "allow_credentials": True, "max_age": "10m"},
        "routes": [
            {"name": "open", "match": {"path": "/open/**"}, "upstream": "echo", "auth": "none"},
            {"name": "private", "match": {"path": "/private/**"}, "upstream": "echo", "auth": "required"},
            {"name": "nocred", "match": {"path": "/nocred/**"}, "upstream": "echo", "auth": "none",
             "cors": {"allow_origins": [allowed_origin], "allow_methods": ["GET", "HEAD", "POST"]}},
            {"name": "nocors", "match": {"path": "/nocors/**"}, "upstream": "echo", "auth": "none", "cors": False},
        ],
        "access_log": {"path": str(workdir / "access.log"), "format": "json"},
    }


# ---------------------------------------------------------------------------------------------
# Fixtures (imported by test_cors_browser.py)

@pytest.fixture(scope="module")
def page_server():
    if find_chromium() is None:
        pytest.skip("Chromium not installed: run Tests/integration/install_browser.sh")
    server = PageServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def flask_reference(page_server):
    if not flask_cors_available():
        pytest.skip("Flask-CORS not installed: run Tests/integration/install_browser.sh")
    reference = FlaskCORSReference(page_server.allowed_origin)
    yield reference
    reference.stop()


@pytest.fixture(scope="module")
def cors_gateway(page_server, tmp_path_factory):
    """gatehouse with the `cors:` block of gateway_cors_config in front of an echo upstream that
    sends its own permissive CORS headers (which the gateway must replace or drop)."""
    import support  # the shared integration helpers (echo upstream, gateway process)

    workdir = tmp_path_factory.mktemp("cors-gateway")
    upstream = support.EchoUpstream(name="echo")
    upstream.extra_headers = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")]
    port, admin_port = support.free_port(), support.free_port()
    config = gateway_cors_config(port, admin_port, upstream.url, page_server.allowed_origin, workdir)
    gateway = support.GatewayProcess(str(gatehouse_binary()), workdir, config, port, admin_port, None, name="cors")
    gateway.upstream = upstream
    gateway.url = f"http://{LOOPBACK}:{port}"
    try:
        gateway.start(wait=True)
        yield gateway
    finally:
        gateway.kill()
        upstream.stop()
