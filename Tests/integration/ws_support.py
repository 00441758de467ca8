"""Helpers for the WebSocket tunnel tests (test_websocket.py, SPEC §12): a real `websockets`
upstream server (echo, recording each handshake's headers), clients from the same library,
tokens, and a gateway with sessions, a JWT issuer and websocket routes.

Everything talks to 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import jwt as pyjwt
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import serve

import support
from session_support import PUBLIC_ORIGIN, sessions_section

ISSUER = "https://issuer.ws.test"
SECRET = b"websocket-tests-hs256-secret-0123456789abcdef"

ROUTES = [
    {"name": "live", "match": {"path": "/live/**"}, "upstream": "api", "websocket": True,
     "require": {"roles_any": ["reader", "admin"]}},
    {"name": "admin-live", "match": {"path": "/admin-live/**"}, "upstream": "api", "websocket": True,
     "require": {"roles_any": ["admin"]}},
    {"name": "open-live", "match": {"path": "/open/**"}, "upstream": "api", "websocket": True, "auth": "none"},
    {"name": "plain", "match": {"path": "/plain/**"}, "upstream": "api", "auth": "none"},
]


def token(roles=("reader",), lifetime: int = 600, sub: str = "alice", **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": sub, "iat": now, "exp": now + lifetime, "roles": list(roles), **claims}
    return pyjwt.encode(body, SECRET, algorithm="HS256")


class WebSocketUpstream:
    """A `websockets` server on a thread: echoes every message (text as text, binary as
    binary), answers `close:CODE` by closing with that code, `flood:N` by sending N bytes in
    64 KiB binary messages, and records each handshake's headers. `refuse` answers every
    handshake with that plain HTTP status instead."""

    def __init__(self, refuse: int | None = None, tls=None):
        self.refuse = refuse
        self.scheme = "https" if tls else "http"
        self.port = support.free_port()
        self.handshakes: list[list[tuple[str, str]]] = []
        self.connections = []
        self.lock = threading.Lock()

        def process_request(conn, request):
            with self.lock:
                self.handshakes.append(list(request.headers.raw_items()))
            if self.refuse:
                return conn.respond(self.refuse, "refused by the upstream\n")
            return None

        self.server = serve(self._handler, support.LOOPBACK, self.port, process_request=process_request,
                            max_size=None, compression=None, ping_interval=None, ssl=tls)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{support.LOOPBACK}:{self.port}"

    def _handler(self, ws):
        with self.lock:
            self.connections.append(ws)
        try:
            for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    ws.close(int(message[6:]), "bye")
                    return
                if isinstance(message, str) and message.startswith("flood:"):
                    total = int(message[6:])
                    chunk = bytes(65536)
                    sent = 0
                    while sent < total:
                        ws.send(chunk)
                        sent += len(chunk)
                    ws.send("flood done")
                    continue
                ws.send(message)
        except ConnectionClosed:
            pass

    def last_handshake(self) -> list[tuple[str, str]]:
        with self.lock:
            return self.handshakes[-1]

    def kill_connections(self):
        """Drops every open connection's socket without a close frame (the upstream dies)."""
        with self.lock:
            conns = list(self.connections)
        for ws in conns:
            ws.socket.close()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


def ws_connect(gw, path: str, *, token: str | None = None, cookie: str | None = None, origin: str | None = None,
               headers: list[tuple[str, str]] | None = None, **kw):
    hs = list(headers or [])
    if token:
        hs.append(("Authorization", f"Bearer {token}"))
    if cookie:
        hs.append(("Cookie", f"gatehouse_session={cookie}"))
    return connect(f"ws://{support.LOOPBACK}:{gw.port}{path}", additional_headers=hs, origin=origin,
                   max_size=None, compression=None, open_timeout=30, close_timeout=5, ping_interval=None, **kw)


def refused_status(gw, path: str, **kw) -> tuple[int, dict, bytes]:
    """The status, headers and body of a refused handshake."""
    try:
        with ws_connect(gw, path, **kw):
            raise AssertionError("the handshake was accepted")
    except InvalidStatus as refusal:
        response = refusal.response
        return response.status_code, {k.lower(): v for k, v in response.headers.raw_items()}, response.body


def wait_closed(ws, timeout: float) -> float:
    """Reads until the connection ends; returns the seconds it took."""
    start = time.monotonic()
    try:
        while True:
            ws.recv(timeout=timeout)
    except (ConnectionClosed, TimeoutError, OSError):
        pass
    elapsed = time.monotonic() - start
    assert elapsed < timeout, f"still open after {timeout}s"
    return elapsed


def jwt_section() -> dict:
    return {"leeway": "0s", "issuers": [{"name": "local", "issuer": ISSUER, "algorithms": ["HS256"],
                                         "secret_file": "hs256.key"}]}


def start_gateway(session_gateways, tmp_path, upstream, *, server: dict | None = None, sessions: dict | None = None,
                  routes: list | None = None, name: str | None = None, **kw):
    (tmp_path / "hs256.key").write_bytes(SECRET)
    srv = {"workers": 1}
    srv.update(server or {})
    return session_gateways.start(upstream_url=upstream.url, sessions=sessions or sessions_section(),
                                  jwt=jwt_section(), routes=routes or ROUTES, server=srv, name=name, **kw)


def tunnel_lines(gw) -> list[dict]:
    return [rec for rec in map(json.loads, gw.log_lines()) if rec.get("status") == 101]


def accept_key(key: str) -> str:
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


class IdleHandshakeUpstream:
    """A light upstream for many tunnels: one thread with a selector answers each handshake
    with a valid `101` and then keeps the socket open, silent (no thread per connection)."""

    def __init__(self):
        import selectors
        self.port = support.free_port()
        self.listener = socket.create_server((support.LOOPBACK, self.port), backlog=2048)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.sockets: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytes] = {}
        self.upgraded = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{support.LOOPBACK}:{self.port}"

    def _run(self):
        import selectors
        while self.running:
            for key, _ in self.selector.select(timeout=0.1):
                if key.fileobj is self.listener:
                    try:
                        conn, _ = self.listener.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self.sockets.append(conn)
                    self.buffers[conn] = b""
                    self.selector.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(conn)
                    conn.close()
                    continue
                if conn not in self.buffers:
                    continue   # upgraded: tunnel bytes are ignored
                self.buffers[conn] += data
                if b"\r\n\r\n" in self.buffers[conn]:
                    head = self.buffers.pop(conn).decode("latin-1")
                    key_value = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                                     if line.lower().startswith("sec-websocket-key:"))
                    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  f"Sec-WebSocket-Accept: {accept_key(key_value)}\r\n\r\n").encode())
                    self.upgraded += 1

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        for s in self.sockets:
            s.close()
        self.listener.close()


def raw_handshake(port: int, path: str, bearer: str, timeout: float = 10.0) -> socket.socket:
    """Opens a tunnel with a hand-written handshake; returns the socket after the `101` head."""
    s = socket.create_connection((support.LOOPBACK, port), timeout=timeout)
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Authorization: Bearer {bearer}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s
