"""Streamed responses with backpressure (SPEC §7.1): a large upstream body read slowly by the
client goes through the gateway without being buffered whole."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import pytest

from support import LOOPBACK, BigBody, raw_request, read_response, streaming_handler

BODY_SIZE = 64 * 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 16 * 1024
CLIENT_RATE = 8 * 1024 * 1024  # bytes per second: far slower than loopback
DEADLINE_S = 25


@pytest.fixture(scope="module")
def big_body() -> BigBody:
    return BigBody(BODY_SIZE)


class RssSampler(threading.Thread):
    def __init__(self, gw, interval=0.05):
        super().__init__(daemon=True)
        self.gw, self.interval = gw, interval
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append(self.gw.rss_kib())
            except (FileNotFoundError, ProcessLookupError):
                return
            self.stop.wait(self.interval)


@pytest.mark.slow
def test_large_body_streams_to_a_slow_client_with_bounded_memory_and_arrives_byte_exact(gateway_factory, upstreams, big_body):
    up = upstreams.raw(streaming_handler(big_body))
    gw = gateway_factory(upstreams={"api": up}, server={"workers": 1},
                         routes=[{"name": "stream", "match": {"path": "/stream/**"}, "upstream": "api", "auth": "none"}])
    for _ in range(3):  # warm up the worker, its pool and the allocator
        assert raw_request(gw.port, "GET", "/stream/small").body == b"small"
    time.sleep(0.2)
    baseline = gw.rss_kib()
    sampler = RssSampler(gw)
    sampler.start()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect((LOOPBACK, gw.port))
    upstream_done_at_quarter = None
    try:
        sock.sendall(b"GET /stream/big HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        reader = sock.makefile("rb", buffering=0)
        head = b""
        while b"\r\n\r\n" not in head:
            byte = reader.read(1)
            assert byte, "connection closed inside the response head"
            head += byte
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert status_line.split(" ")[1] == "200", head
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        if "content-length" in headers:
            assert int(headers["content-length"]) == BODY_SIZE

        digest = hashlib.sha256()
        received = 0
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        assert not chunked, "an upstream Content-Length body is forwarded with its length"
        started = time.monotonic()
        while received < BODY_SIZE:
            data = sock.recv(min(64 * 1024, BODY_SIZE - received))
            if not data:
                break
            digest.update(data)
            received += len(data)
            if upstream_done_at_quarter is None and received >= BODY_SIZE // 4:
                upstream_done_at_quarter = "sent all" in up.events
            elapsed = time.monotonic() - started
            assert elapsed < DEADLINE_S, f"only {received} bytes after {elapsed:.1f}s"
            ahead = received / CLIENT_RATE - elapsed
            if ahead > 0:
                time.sleep(ahead)
    finally:
        sock.close()
        sampler.stop.set()
        sampler.join(2)

    assert received == BODY_SIZE
    assert digest.hexdigest() == big_body.sha256
    peak = max(sampler.samples)
    print(f"RSS baseline {baseline} KiB, peak {peak} KiB, {len(sampler.samples)} samples")
    assert len(sampler.samples) > 20
    assert peak - baseline < RSS_GROWTH_LIMIT_KIB, (
        f"gateway RSS grew by {(peak - baseline) / 1024:.1f} MiB (baseline {baseline / 1024:.1f} MiB, "
        f"peak {peak / 1024:.1f} MiB) while streaming {BODY_SIZE >> 20} MiB")
    assert upstream_done_at_quarter is False, "the upstream finished sending before the client read a quarter: no backpressure"
    rec = [r for r in gw.log_records() if r["path"] == "/stream/big"]
    assert rec and rec[0]["status"] == 200 and rec[0]["bytes_sent"] == BODY_SIZE


def test_client_that_aborts_mid_stream_leaves_the_upstream_pool_clean(gateway_factory, upstreams, big_body):
    up = upstreams.raw(streaming_handler(big_body))
    gw = gateway_factory(upstreams={"api": up}, server={"workers": 1},
                         routes=[{"name": "stream", "match": {"path": "/stream/**"}, "upstream": "api", "auth": "none"}])
    assert raw_request(gw.port, "GET", "/stream/small").body == b"small"
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"GET /stream/big HTTP/1.1\r\nHost: s\r\n\r\n")
        received = 0
        while received < 1024 * 1024:
            data = s.recv(65536)
            assert data
            received += len(data)
    # The half-read upstream connection must not be reused: the next answers are whole and right.
    for _ in range(3):
        r = raw_request(gw.port, "GET", "/stream/small", timeout=5)
        assert r.status == 200 and r.body == b"small"
    assert gw.running()


def test_paused_upstream_read_is_not_mistaken_for_an_upstream_timeout(gateway_factory, upstreams):
    body = BigBody(8 * 1024 * 1024, seed=b"paused")
    up = upstreams.raw(streaming_handler(body))
    gw = gateway_factory(upstreams={"api": {"targets": [up.url], "timeout": "500ms"}}, server={"workers": 1},
                         routes=[{"name": "stream", "match": {"path": "/stream/**"}, "upstream": "api", "auth": "none"}])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect((LOOPBACK, gw.port))
    try:
        sock.sendall(b"GET /stream/big HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        time.sleep(1.5)  # the client reads nothing: the gateway stops reading the upstream, which is not silent
        reader = sock.makefile("rb")
        r = read_response(reader)
    finally:
        sock.close()
    assert r.status == 200
    assert hashlib.sha256(r.body).hexdigest() == body.sha256
