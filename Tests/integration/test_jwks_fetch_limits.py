"""Hostile JWKS servers (SPEC §3.2 Key fetches): a JWKS fetch reads at most 64 KiB of response
head and 1 MiB of body, and fails 10 s after it started however steadily bytes trickle in; a
failed fetch is retried with the usual backoff, so a stalled fetch never freezes the key set.

The JWKS server is jwt_support.JWKSServer with a `respond` hook that writes raw bytes. Every
test waits for positive signals (the failure counter, the gateway's log line, /readyz) and is
bounded in time; the hostile writers stop when the gateway hangs up or the test ends.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from jwt_support import assert_refused, server_tls_context, wait_for
# gateways and upstream come from conftest.py.
from test_jwt_jwks import (assert_passes, keys, pki, servers, start_gateway, token_for,  # noqa: F401 (fixtures)
                           wait_ready)

MiB = 1 << 20


def _peak_rss_kib(gw) -> int:
    with open(f"/proc/{gw.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _failures(gw) -> float:
    return gw.metric("gatehouse_jwks_refresh_failures_total")


class Hostile:
    """Raw answers for JWKSServer.respond; counts what it wrote and stops at `stop`."""

    def __init__(self):
        self.stop = threading.Event()
        self.written = 0
        self.calls = 0

    def _write(self, handler, data: bytes) -> bool:
        try:
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False
        self.written += len(data)
        return True

    def huge_head(self, total: int = 300 * MiB):
        """A status line, then header lines until `total` bytes or the client hangs up."""
        def respond(handler):
            self.calls += 1
            line = b"X-Pad: " + b"a" * 8183 + b"\r\n"       # 8 KiB a line
            chunk = line * 8
            if not self._write(handler, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"):
                return
            while self.written < total and not self.stop.is_set():
                if not self._write(handler, chunk):
                    return
        return respond

    def trickle(self, body: bytes, seconds_per_byte: float = 1.0, once: bool = True):
        """A head announcing `body`, then the body one byte per `seconds_per_byte`."""
        def respond(handler):
            self.calls += 1
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n").encode()
            if not self._write(handler, head):
                return
            for i in range(len(body)):
                if self.stop.wait(seconds_per_byte) or not self._write(handler, body[i:i + 1]):
                    return
        return respond

    def big_body(self, size: int, framing: str):
        """A `size`-byte body, framed by Content-Length, chunked, or the connection's close."""
        def respond(handler):
            self.calls += 1
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if framing == "content-length":
                head += f"Content-Length: {size}\r\n"
            elif framing == "chunked":
                head += "Transfer-Encoding: chunked\r\n"
            head += "Connection: close\r\n\r\n"
            if not self._write(handler, head.encode()):
                return
            piece = b" " * (64 << 10)
            sent = 0
            while sent < size and not self.stop.is_set():
                data = piece[:min(len(piece), size - sent)]
                framed = b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data
                if not self._write(handler, framed):
                    return
                sent += len(data)
            if framing == "chunked":
                self._write(handler, b"0\r\n\r\n")
        return respond


@pytest.fixture
def hostile():
    h = Hostile()
    yield h
    h.stop.set()


def test_a_jwks_answer_with_300_mib_of_headers_is_refused_early(gateways, upstream, servers, keys, hostile):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    server.respond = hostile.huge_head()
    gw = start_gateway(gateways, upstream, server.url())
    before = gw.rss_kib()
    wait_for(lambda: _failures(gw) >= 1, 30, "the fetch with a huge head to fail")
    server.respond = None                       # the retry (1 s later) is served normally
    assert hostile.written < 64 * MiB, f"the gateway read {hostile.written >> 20} MiB of response head"
    growth = _peak_rss_kib(gw) - before
    assert growth < 32 << 10, f"peak RSS grew by {growth >> 10} MiB"
    assert "response head malformed or over 64 KiB" in gw.stderr(), gw.stderr()[-2000:]
    wait_ready(gw, 10)
    assert_passes(gw, upstream, token_for(keys["k1"]))


@pytest.mark.parametrize("framing", ["content-length", "chunked", "close"])
def test_a_jwks_body_over_1_mib_is_refused(gateways, upstream, servers, keys, hostile, framing):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    server.respond = hostile.big_body(2 * MiB, framing)
    gw = start_gateway(gateways, upstream, server.url())
    before = gw.rss_kib()
    wait_for(lambda: _failures(gw) >= 1, 30, "the fetch with a 2 MiB body to fail")
    server.respond = None
    assert gw.admin_get("/readyz").status == 503
    assert "response body over 1 MiB" in gw.stderr(), gw.stderr()[-2000:]
    assert _peak_rss_kib(gw) - before < 32 << 10
    wait_ready(gw, 10)
    assert_passes(gw, upstream, token_for(keys["k1"]))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_jwks_body_trickled_byte_by_byte_fails_at_the_deadline_and_the_retry_succeeds(
        gateways, upstream, servers, keys, hostile, pki, scheme):
    """evhttp's timeout is one of inactivity: a byte a second renews it for ever. The fetch's
    own deadline (10 s from its start) cancels it (over TLS too); the next attempt, served
    normally, makes the gateway ready."""
    tls = server_tls_context(*pki["good"]) if scheme == "https" else None
    server = servers(document={"keys": [keys["k1"].public_jwk]}, tls=tls)
    server.respond = hostile.trickle(json.dumps(server.document).encode())
    env = {"SSL_CERT_FILE": str(pki["ca"])} if tls else None
    gw = start_gateway(gateways, upstream, server.url(), env=env)
    wait_for(lambda: hostile.calls >= 1, 10, "the first fetch")
    assert gw.admin_get("/readyz").status == 503
    wait_for(lambda: "no complete response within 10 s" in gw.stderr(), 25, "the fetch deadline to end the trickle")
    server.respond = None
    wait_ready(gw, 10)
    assert hostile.calls == 1
    assert 5 <= hostile.written < 200, hostile.written   # the head, and some bytes of the body
    assert_passes(gw, upstream, token_for(keys["k1"]))


def test_a_stalled_refresh_does_not_freeze_key_rotation(gateways, upstream, servers, keys, hostile):
    """After start-up: a new key is published, the on-demand refresh its first token triggers
    is trickled and stalls, and the retry after the deadline picks the new key up."""
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw, 10)
    server.set_keys(keys["k1"], keys["k2"])
    server.respond = hostile.trickle(json.dumps(server.document).encode())
    fetches = server.fetches
    response, rid = gw.get("/api/x", token_for(keys["k2"], sub="rotated"))
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    wait_for(lambda: server.fetches > fetches and hostile.calls >= 1, 10, "the on-demand refresh")
    server.respond = None
    wait_for(lambda: "no complete response within 10 s" in gw.stderr(), 25, "the stalled refresh to end")
    deadline = time.monotonic() + 10
    while True:
        response, rid = gw.get("/api/x", token_for(keys["k2"], sub="rotated"))
        if response.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status == 200, response
    assert_passes(gw, upstream, token_for(keys["k1"]))
