"""Helpers for the black-box integration tests of gatehouse.

Everything here talks to real sockets on 127.0.0.1: the gateway binary, Python upstreams
(a ThreadingHTTPServer echo and raw-socket servers that misbehave on purpose) and a raw HTTP
client for the requests that `requests` would normalize away (bad paths, absolute-form
targets, oversize heads, HTTP/1.0, pipelining).

Only the standard library is used here; the fixtures in conftest.py wire it together.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

LOOPBACK = "127.0.0.1"

# SPEC §3.1: the fixed message of each `error`.
UNIFORM_MESSAGES = {
    "bad_request": "Bad request",
    "unauthorized": "Invalid or missing auth token",
    "invalid_credentials": "Invalid username or password",
    "forbidden": "You are not authorized to access this resource.",
    "csrf_rejected": "Cross-origin request rejected",
    "cors_rejected": "CORS request rejected",
    "not_found": "Not found",
    "payload_too_large": "Payload too large",
    "too_many_requests": "Too many requests",
    "headers_too_large": "Request headers too large",
    "bad_gateway": "Bad gateway",
    "service_unavailable": "Service unavailable",
    "gateway_timeout": "Gateway timeout",
}

# SPEC §9: every field of a JSON access-log line (`trace_id` of §15.3 is on every line too).
ACCESS_LOG_FIELDS = (
    "ts", "request_id", "trace_id", "client", "method", "path", "status", "bytes_sent", "duration_ms",
    "route", "upstream", "upstream_status", "upstream_ms", "auth", "subject", "decision",
    "reason", "user_agent",
)


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Ports

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A loopback port that nothing listens on right now (never the same one twice per run)."""
    with _port_lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
            s.close()
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port found")


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# YAML

def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(str(value))


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for nested dicts and lists; lists of scalars in flow style."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if _is_scalar(value):
                lines.append(f"{pad}{key}: {_yaml_scalar(value)}")
            elif isinstance(value, dict) and not value:
                lines.append(f"{pad}{key}: {{}}")
            elif isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
                lines.append(f"{pad}{key}: [{', '.join(_yaml_scalar(v) for v in value)}]")
            else:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(value, indent + 2))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            if _is_scalar(item):
                lines.append(f"{pad}- {_yaml_scalar(item)}")
            else:
                body = to_yaml(item, indent + 2).split("\n")
                lines.append(f"{pad}- {body[0].lstrip()}")
                lines.extend(body[1:])
    else:
        lines.append(f"{pad}{_yaml_scalar(obj)}")
    return "\n".join(line for line in lines if line != "")


# ---------------------------------------------------------------------------------------------
# Raw HTTP client

class RawResponse:
    """A parsed HTTP response; header lookups are case-insensitive."""

    def __init__(self, version: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<RawResponse {self.status} {self.headers!r} {self.body[:200]!r}>"


class IncompleteBody(Exception):
    """The connection ended before the body that the head announced was complete."""

    def __init__(self, response: RawResponse, expected: int | None):
        super().__init__(f"body ended after {len(response.body)} bytes, expected {expected}")
        self.response = response


def read_response(reader, method: str = "GET") -> RawResponse:
    """Reads one response from a buffered binary reader (skipping 1xx interim responses)."""
    while True:
        status_line = reader.readline(65536)
        if not status_line:
            raise ConnectionError("connection closed before a response")
        parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: list[tuple[str, str]] = []
        while True:
            line = reader.readline(65536)
            if not line:
                raise ConnectionError("connection closed inside a response head")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        if 100 <= status < 200:
            continue
        break
    response = RawResponse(version, status, reason, headers, b"")
    if method == "HEAD" or status in (204, 304):
        return response
    te = response.header("Transfer-Encoding")
    length = response.header("Content-Length")
    if te and "chunked" in te.lower():
        chunks = []
        while True:
            size_line = reader.readline(65536)
            if not size_line:
                response.body = b"".join(chunks)
                raise IncompleteBody(response, None)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while reader.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass
                break
            data = reader.read(size)
            chunks.append(data)
            if len(data) < size:
                response.body = b"".join(chunks)
                raise IncompleteBody(response, None)
            reader.readline(65536)
        response.body = b"".join(chunks)
    elif length is not None:
        expected = int(length)
        response.body = reader.read(expected)
        if len(response.body) < expected:
            raise IncompleteBody(response, expected)
    else:
        response.body = reader.read()
    return response


def raw_exchange(port: int, data: bytes, method: str = "GET", timeout: float = 5.0, count: int = 1):
    """Sends raw bytes, reads `count` responses. Returns one RawResponse (or a list if count > 1)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = sock.makefile("rb")
        responses = [read_response(reader, method) for _ in range(count)]
        reader.close()
    return responses[0] if count == 1 else responses


def raw_request(port: int, method: str, target: str, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", version: str = "HTTP/1.1", host: str | None = "default",
                timeout: float = 5.0) -> RawResponse:
    """A request written byte for byte as given (target not normalized, headers in order)."""
    lines = [f"{method} {target} {version}"]
    if host == "default":
        host = f"{LOOPBACK}:{port}"
    if host is not None:
        lines.append(f"Host: {host}")
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers or []):
        lines.append(f"Content-Length: {len(body)}")
    if version == "HTTP/1.1" and not any(n.lower() == "connection" for n, _ in headers or []):
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return raw_exchange(port, data, method=method, timeout=timeout)


def assert_uniform_error(status: int, headers_get, body: bytes, expected_status: int, expected_error: str):
    """SPEC §3.1: exactly four keys, the fixed message, request_id == X-Request-Id, JSON, no-store."""
    assert status == expected_status, f"status {status}, body {body[:300]!r}"
    content_type = headers_get("Content-Type")
    assert content_type is not None and content_type.split(";")[0].strip().lower() == "application/json", content_type
    assert headers_get("Cache-Control") == "no-store"
    request_id = headers_get("X-Request-Id")
    assert request_id, "every response carries X-Request-Id"
    doc = json.loads(body)
    assert set(doc) == {"status", "error", "message", "request_id"}, doc
    assert doc["status"] == expected_status and type(doc["status"]) is int
    assert doc["error"] == expected_error
    assert doc["message"] == UNIFORM_MESSAGES[expected_error]
    assert doc["request_id"] == request_id
    return doc


def assert_uniform_raw(response: RawResponse, expected_status: int, expected_error: str):
    return assert_uniform_error(response.status, response.header, response.body, expected_status, expected_error)


def assert_uniform_requests(response, expected_status: int, expected_error: str):
    return assert_uniform_error(response.status_code, response.headers.get, response.content,
                                expected_status, expected_error)


def pairs_get(pairs, name: str):
    """First value of `name` in a list of [name, value] pairs (case-insensitive), or None."""
    for k, v in pairs:
        if k.lower() == name.lower():
            return v
    return None


def pairs_all(pairs, name: str) -> list[str]:
    return [v for k, v in pairs if k.lower() == name.lower()]


# ---------------------------------------------------------------------------------------------
# Upstreams

class EchoUpstream:
    """An HTTP/1.1 keep-alive upstream that answers every request with a JSON echo of it:
    `server`, `method`, `path`, `query` (None without `?`), `target` (raw), `headers` (a list of
    [name, value] in received order and case), `body` (latin-1), `body_length`, `connection`
    (the number of the connection it came on).

    Query keys starting `gh_` steer it (they pass through the gateway unchanged):
    `gh_sleep=SECONDS` before answering, `gh_status=CODE`, `gh_chunked=1` for a chunked body.
    `extra_headers` (a list of pairs) are added to every response; `delay` applies to all.
    """

    def __init__(self, name: str = "echo", port: int = 0, delay: float = 0.0):
        self.name = name
        self.delay = delay
        self.brief = False  # True: leave the body itself out of the echo (large uploads)
        self.extra_headers: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.connections = 0
        self.received = threading.Event()
        self._sockets: list[socket.socket] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are separate writes
            server_version = "echo-upstream"
            sys_version = ""

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with upstream.lock:
                    upstream.connections += 1
                    self.connection_number = upstream.connections
                    upstream._sockets.append(self.connection)

            def __getattr__(self, name):
                if name.startswith("do_"):
                    return self._answer
                raise AttributeError(name)

            def _read_body(self) -> bytes:
                te = self.headers.get("Transfer-Encoding", "")
                if "chunked" in te.lower():
                    out = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(out)
                        out.append(self.rfile.read(size))
                        self.rfile.readline()
                length = self.headers.get("Content-Length")
                return self.rfile.read(int(length)) if length else b""

            def _answer(self):
                body = self._read_body()
                target = self.path
                brief = upstream.brief
                path, sep, query = target.partition("?")
                record = {
                    "server": upstream.name,
                    "method": self.command,
                    "target": target,
                    "path": path,
                    "query": query if sep else None,
                    "version": self.request_version,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "body": "" if brief else body.decode("latin-1"),
                    "body_length": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "connection": self.connection_number,
                }
                with upstream.lock:
                    upstream.requests.append(record)
                upstream.received.set()
                params = parse_qs(query) if sep else {}
                pause = float(params.get("gh_sleep", [upstream.delay])[0])
                if pause:
                    time.sleep(pause)
                status = int(params.get("gh_status", ["200"])[0])
                chunked = params.get("gh_chunked", ["0"])[0] == "1"
                payload = json.dumps(record).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream", upstream.name)
                for k, v in upstream.extra_headers:
                    self.send_header(k, v)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if chunked:
                    half = len(payload) // 2
                    for part in (payload[:half], payload[half:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                pass  # the gateway resets connections on purpose in some tests

        self.server = Server((LOOPBACK, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def read_raw_request(reader):
    """Reads one request head (and its Content-Length body) from a buffered reader.
    Returns (request_line, headers, body) or None at EOF."""
    line = reader.readline(65536)
    while line in (b"\r\n", b"\n"):
        line = reader.readline(65536)
    if not line:
        return None
    headers = []
    while True:
        h = reader.readline(65536)
        if not h:
            return None
        if h in (b"\r\n", b"\n"):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    length = 0
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
    body = reader.read(length) if length else b""
    return line.decode("latin-1").rstrip("\r\n"), headers, body


class RawUpstream:
    """A raw-socket upstream: `handler(upstream, conn, reader, number)` runs on its own thread for
    each accepted connection. Counts connections and lets handlers record requests."""

    def __init__(self, handler, name: str = "raw", backlog: int = 64, accept: bool = True):
        self.name = name
        self.handler = handler
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[str] = []
        self.bodies: list[bytes] = []
        self.events: list[str] = []
        self._conns: list[socket.socket] = []
        self._stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        if accept:
            threading.Thread(target=self._accept_loop, daemon=True).start()

    def record(self, request_line: str, body: bytes = b""):
        with self.lock:
            self.requests.append(request_line)
            self.bodies.append(body)

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
                self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn, number), daemon=True).start()

    def _run(self, conn, number):
        reader = conn.makefile("rb")
        try:
            self.handler(self, conn, reader, number)
        except OSError:
            pass
        finally:
            try:
                reader.close()
                conn.close()
            except OSError:
                pass

    def stop(self):
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def simple_response(body: bytes, keep_alive: bool = True, extra: str = "") -> bytes:
    conn = "keep-alive" if keep_alive else "close"
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {conn}\r\n{extra}\r\n").encode() + body


def stale_close_idle_handler(idle_close: float):
    """Answers one request per connection with `Connection: keep-alive`, then closes the
    connection after `idle_close` seconds of idleness (like a short upstream keepalive_timeout)."""
    def handler(upstream, conn, reader, number):
        req = read_raw_request(reader)
        if req is None:
            return
        upstream.record(req[0], req[2])
        conn.sendall(simple_response(f"conn {number}: {req[0]}".encode()))
        time.sleep(idle_close)
        # Anything that arrived while we slept is dropped unanswered: the close races it.
    return handler


def stale_drop_second_handler(upstream, conn, reader, number):
    """Answers the first request on a connection with keep-alive; reads the second request on the
    same connection and closes without a byte of response — the classic race of an upstream
    closing an idle kept-alive connection just as the proxy reuses it."""
    first = read_raw_request(reader)
    if first is None:
        return
    upstream.record(first[0], first[2])
    conn.sendall(simple_response(f"conn {number}: {first[0]}".encode()))
    second = read_raw_request(reader)
    if second is None:
        return
    with upstream.lock:
        upstream.events.append(f"dropped on conn {number}: {second[0]}")
    conn.shutdown(socket.SHUT_RDWR)


def garbage_handler(upstream, conn, reader, number):
    """Answers garbage that is not HTTP, then closes."""
    req = read_raw_request(reader)
    if req is None:
        return
    upstream.record(req[0])
    conn.sendall(b"THIS IS NOT HTTP AT ALL\r\n\r\nnonsense\r\n")
    conn.shutdown(socket.SHUT_RDWR)


def silent_close_handler(upstream, conn, reader, number):
    """Reads the request and closes without answering."""
    req = read_raw_request(reader)
    if req is None:
        return
    upstream.record(req[0])
    conn.shutdown(socket.SHUT_RDWR)


def stall_body_handler(total: int, sent: int, stall: float):
    """Announces `total` body bytes, sends `sent` of them, then goes silent for `stall` seconds."""
    def handler(upstream, conn, reader, number):
        req = read_raw_request(reader)
        if req is None:
            return
        upstream.record(req[0])
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
                     + b"x" * sent)
        time.sleep(stall)
    return handler


def truncating_handler(total: int, sent: int):
    """Announces `total` body bytes, sends `sent` of them, then closes the connection."""
    def handler(upstream, conn, reader, number):
        req = read_raw_request(reader)
        if req is None:
            return
        upstream.record(req[0])
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
                     + b"y" * sent)
        conn.shutdown(socket.SHUT_RDWR)
    return handler


def response_headers_handler(head: str, body: bytes):
    """Answers every request on a keep-alive connection with a fixed raw head and body."""
    def handler(upstream, conn, reader, number):
        while True:
            req = read_raw_request(reader)
            if req is None:
                return
            upstream.record(req[0])
            conn.sendall(head.encode("latin-1") + b"\r\n" + body)
    return handler


class BigBody:
    """A deterministic, non-repeating body of `size` bytes and its SHA-256."""

    def __init__(self, size: int, seed: bytes = b"gatehouse-stream"):
        self.size = size
        self.data = hashlib.shake_256(seed).digest(size)
        self.sha256 = hashlib.sha256(self.data).hexdigest()


def streaming_handler(body: BigBody, slice_size: int = 256 * 1024):
    """Answers with `body` (Content-Length), written as fast as the gateway takes it."""
    def handler(upstream, conn, reader, number):
        while True:
            req = read_raw_request(reader)
            if req is None:
                return
            upstream.record(req[0])
            if req[0].startswith("GET /stream/small"):
                conn.sendall(simple_response(b"small"))
                continue
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Length: {body.size}\r\n\r\n".encode())
            view = memoryview(body.data)
            for offset in range(0, body.size, slice_size):
                conn.sendall(view[offset:offset + slice_size])
            with upstream.lock:
                upstream.events.append("sent all")
    return handler


class BlackholeUpstream:
    """A listener whose accept queue is full and never drained: a connect to it hangs (the
    kernel drops the SYN), which is how a connect timeout looks on loopback."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._fillers: list[socket.socket] = []
        # Fill the accept queue (backlog 0 admits one or two): later SYNs are dropped.
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect((LOOPBACK, self.port))
            except BlockingIOError:
                pass
            self._fillers.append(s)
        time.sleep(0.05)

    def connect_hangs(self) -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.3)
        try:
            s.connect((LOOPBACK, self.port))
            return False
        except (socket.timeout, TimeoutError):
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        for s in self._fillers:
            s.close()
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# The gateway process

class GatewayProcess:
    """One `gatehouse run` process with its config file, stdout/stderr files and access log.
    `env`: variables set in the inherited environment (e.g. SSL_CERT_FILE); None removes one."""

    env: dict | None = None

    def __init__(self, binary: str, workdir: Path, config: dict | str, port: int, admin_port: int | None,
                 access_log: Path | None, name: str = "gateway"):
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.admin_port = admin_port
        self.access_log = access_log
        self.config_path = workdir / f"{name}.yaml"
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.write_config(config)

    # -- config
    def write_config(self, config: dict | str):
        text = config if isinstance(config, str) else to_yaml(config) + "\n"
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    # -- process
    def start(self, wait: bool = True, timeout: float = 15.0):
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([self.binary, "run", "--config", str(self.config_path)],
                                     cwd=self.workdir, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=self._environment())
        if wait:
            self.wait_ready(timeout)
        return self

    def _environment(self) -> dict | None:
        if not self.env:
            return None
        merged = {**os.environ, **self.env}
        return {name: value for name, value in merged.items() if value is not None}

    def wait_ready(self, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gatehouse exited with {self.proc.returncode} before listening; "
                                     f"stderr:\n{self.stderr()}")
            if port_accepts(self.port) and (self.admin_port is None or port_accepts(self.admin_port)):
                return
            time.sleep(0.02)
        raise AssertionError(f"gatehouse did not listen on {self.port} within {timeout}s; stderr:\n{self.stderr()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config: dict | str):
        self.write_config(config)
        self.send_signal(signal.SIGHUP)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # -- output
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.admin_port}{path}"

    def log_lines(self, path: Path | None = None) -> list[str]:
        path = path or self.access_log
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        # Only complete lines: the gateway's log writer may be in the middle of the last one.
        complete = text[: text.rfind("\n") + 1]
        return [line for line in complete.split("\n") if line]

    def log_records(self, path: Path | None = None) -> list[dict]:
        return [json.loads(line) for line in self.log_lines(path)]

    def wait_log_record(self, request_id: str, timeout: float = 3.0) -> dict:
        """The JSON access-log record of `request_id` (the writer flushes within ~100 ms)."""
        def find():
            for rec in self.log_records():
                if rec.get("request_id") == request_id:
                    return rec
            return None
        return wait_until(find, timeout, message=f"access-log line of {request_id}")

    def wait_stderr(self, needle: str, timeout: float = 3.0, start: int = 0) -> str:
        return wait_until(lambda: needle in self.stderr()[start:] and self.stderr(), timeout,
                          message=f"{needle!r} in gatehouse stderr")


def close_delimited_handler(body: bytes):
    """Answers without Content-Length or chunking: the body ends when the connection closes."""
    def handler(upstream, conn, reader, number):
        req = read_raw_request(reader)
        if req is None:
            return
        upstream.record(req[0], req[2])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n" + body)
        conn.shutdown(socket.SHUT_RDWR)
    return handler


def trickle_handler(chunks: list[bytes], interval: float):
    """Answers with a chunked body, one chunk every `interval` seconds."""
    def handler(upstream, conn, reader, number):
        req = read_raw_request(reader)
        if req is None:
            return
        upstream.record(req[0], req[2])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in chunks:
            time.sleep(interval)
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.sendall(b"0\r\n\r\n")
        time.sleep(0.2)
    return handler


def status_handler(head_by_path: dict[str, bytes]):
    """Keep-alive upstream answering each path with a fixed raw response (head and body)."""
    def handler(upstream, conn, reader, number):
        while True:
            req = read_raw_request(reader)
            if req is None:
                return
            upstream.record(req[0], req[2])
            path = req[0].split(" ")[1].split("?")[0]
            conn.sendall(head_by_path.get(path, simple_response(b"default")))
    return handler


def call_failed(request) -> bool:
    """True when the body of `request`'s test failed (conftest's pytest_runtest_makereport keeps
    each phase's report on the test item): fixtures use it to show a gateway's stderr then."""
    report = getattr(request.node, "rep_call", None)
    return report is not None and report.failed


def closed_after(resource, request):
    """A fixture's body for a `resource` with `close(dump=...)`: yields it, then closes it,
    dumping what it holds (configs, stderr) when the test failed. Use: `yield from closed_after(x, request)`."""
    yield resource
    resource.close(dump=call_failed(request))
