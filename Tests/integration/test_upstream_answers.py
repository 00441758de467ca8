"""Hostile upstream answers (SPEC §3.2 "Upstream answers", issue 9 items 12-14): a
Content-Length that does not frame the body (response splitting), an upstream that sets the
gateway's own session cookie, and body bytes written after a bodiless answer (pool poisoning).
Each test fails on the build before the fix."""

from __future__ import annotations

import socket
import threading

import pytest

from session_support import COOKIE, session_gateways, set_cookies  # noqa: F401 (fixture)
from support import (LOOPBACK, assert_uniform_raw, raw_request, read_raw_request, read_response, simple_response,
                     status_handler)

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}

# What an upstream would like the client to read as the answer to its *next* request.
INJECTED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ninjected"


def pipelined(port: int, first: bytes, then_path: str = "/docs/after"):
    """Sends `first` and a second request in one write; returns both responses."""
    data = first + f"GET {then_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        return read_response(reader), read_response(reader)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# ---------------------------------------------------------------------------------------------
# Item 12: response splitting through Content-Length beside Transfer-Encoding

@pytest.mark.parametrize("framing", [
    "Transfer-Encoding: chunked\r\nContent-Length: 5",
    "Content-Length: 5\r\nTransfer-Encoding: chunked",
    "Transfer-Encoding: Chunked\r\nContent-Length: 5\r\nContent-Length: 5",
], ids=["te-then-cl", "cl-then-te", "mixed-case-te-two-cl"])
def test_content_length_beside_transfer_encoding_never_splits_the_client_connection(gateway_factory, upstreams,
                                                                                     framing):
    # RFC 9112 §6.3 (3): Transfer-Encoding wins and a proxy removes Content-Length before
    # forwarding. Forwarded, `Content-Length: 5` would end the client's answer after "hello" and
    # the rest of the de-chunked body would answer the client's next pipelined request.
    body = b"hello" + INJECTED
    up = upstreams.raw(status_handler({
        "/docs/split": f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{framing}\r\n\r\n".encode()
        + chunk(body) + b"0\r\n\r\n",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    first, second = pipelined(gw.port, b"GET /docs/split HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.status == 200
    assert first.header_all("Content-Length") == [], first.headers
    assert first.body == body
    assert second.status == 200 and second.body == b"default", "the next request got the upstream's injected bytes"


def test_http10_keep_alive_client_never_gets_a_content_length_that_came_beside_chunked(gateway_factory, upstreams):
    # For an HTTP/1.0 client the gateway cannot chunk: the body is delimited by closing the
    # connection, never by the upstream's Content-Length.
    body = b"hello" + INJECTED
    up = upstreams.raw(status_handler({
        "/docs/split": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        + chunk(body) + b"0\r\n\r\n",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    data = (b"GET /docs/split HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET /docs/after HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        first = read_response(reader)
        assert first.status == 200 and first.body == body
        if first.header("Content-Length") is not None:
            assert first.header("Content-Length") == str(len(body))
            second = read_response(reader)
            assert second.body == b"default"


@pytest.mark.parametrize("codings", [
    "Transfer-Encoding: gzip",
    "Transfer-Encoding: gzip, chunked",
    "Transfer-Encoding: chunked, gzip",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
], ids=["gzip", "gzip-then-chunked", "chunked-not-last", "chunked-twice"])
@pytest.mark.parametrize("length", [True, False], ids=["with-content-length", "without-content-length"])
def test_transfer_codings_other_than_one_chunked_are_502(gateway_factory, upstreams, codings, length):
    # The gateway can undo `chunked` only: a body in any other transfer coding would reach the
    # client without the coding's name (TE is hop-by-hop), i.e. as bytes it cannot read; with a
    # Content-Length beside it, split as above. nginx answers 502 as well.
    extra = "\r\nContent-Length: 5" if length else ""
    up = upstreams.raw(status_handler({
        "/docs/coded": f"HTTP/1.1 200 OK\r\n{codings}{extra}\r\n\r\n".encode() + chunk(b"hello" + INJECTED) + b"0\r\n\r\n",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    first, second = pipelined(gw.port, b"GET /docs/coded HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_uniform_raw(first, 502, "bad_gateway")
    assert second.status == 200 and second.body == b"default"


@pytest.mark.parametrize("value", ["5x", "+5", "0x5", "5, 6", "5 5", "-1", "99999999999999999999"])
def test_content_length_that_is_not_one_number_is_502(gateway_factory, upstreams, value):
    # RFC 9112 §6.3 (5): an invalid Content-Length is unrecoverable; a proxy answers 502.
    up = upstreams.raw(status_handler({
        "/docs/bad-length": f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nhello".encode(),
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    assert_uniform_raw(raw_request(gw.port, "GET", "/docs/bad-length"), 502, "bad_gateway")


def test_content_length_that_frames_the_body_still_reaches_the_client(gateway_factory, upstreams):
    up = upstreams.raw(status_handler({
        "/docs/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "/docs/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    first, second = pipelined(gw.port, b"GET /docs/ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.header_all("Content-Length") == ["5"] and first.body == b"hello"
    assert second.body == b"default"
    head = raw_request(gw.port, "HEAD", "/docs/head")
    assert head.status == 200 and head.header_all("Content-Length") == ["1234"]


# ---------------------------------------------------------------------------------------------
# Item 13: an upstream sets the gateway's session cookie

def test_upstream_cannot_set_or_clear_the_gateway_session_cookie(session_gateways, echo):
    echo.extra_headers = [
        ("Set-Cookie", f"{COOKIE}=attacker-chosen; Path=/; HttpOnly"),
        ("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0"),
        ("Set-Cookie", f" {COOKIE} =spaced"),
        ("Set-Cookie", f"={COOKIE}=nameless"),      # a browser sends it back as `gatehouse_session=nameless`
        ("Set-Cookie", "theme=dark; Path=/"),
        ("Set-Cookie", f"{COOKIE.upper()}=other-name"),  # names are case-sensitive: another cookie
        ("Set-Cookie", f"{COOKIE}_pref=1"),
    ]
    gw = session_gateways.start(upstream_url=echo.url)
    r, _ = gw.request("GET", "/public/page")
    assert r.status == 200
    assert r.header_all("Set-Cookie") == ["theme=dark; Path=/", f"{COOKIE.upper()}=other-name", f"{COOKIE}_pref=1"]
    # The gateway's own cookie is still issued at login.
    assert gw.login_cookie()


def test_without_sessions_an_upstream_cookie_of_that_name_passes(gateway_factory, echo):
    echo.extra_headers = [("Set-Cookie", f"{COOKIE}=app-owned; Path=/")]
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/c")
    assert r.header_all("Set-Cookie") == [f"{COOKIE}=app-owned; Path=/"]


# ---------------------------------------------------------------------------------------------
# Item 14: bytes after a bodiless answer poison the pool

def head_then_late_bytes_handler(delay: float):
    """Answers HEAD with `Content-Length: 8` and no body, then writes INJECTED `delay` seconds
    later; further requests on that connection are left to those bytes. On other connections
    a GET gets `real ans`."""
    def handler(upstream, conn, reader, number):
        poisoned = False
        while True:
            req = read_raw_request(reader)
            if req is None:
                return
            upstream.record(req[0])
            if req[0].startswith("HEAD "):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\n")
                poisoned = True
                threading.Timer(delay, _send_quietly, (conn, INJECTED)).start()
            elif not poisoned:
                conn.sendall(simple_response(b"real ans"))
    return handler


def _send_quietly(conn: socket.socket, data: bytes):
    try:
        conn.sendall(data)
    except OSError:
        pass


def test_bytes_written_after_a_head_answer_never_answer_another_clients_request(gateway_factory, upstreams):
    up = upstreams.raw(head_then_late_bytes_handler(0.7))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    head = raw_request(gw.port, "HEAD", "/docs/file")
    assert head.status == 200 and head.header("Content-Length") == "8"
    get = raw_request(gw.port, "GET", "/docs/other")
    assert get.status == 200 and get.body == b"real ans", "another client got the bytes written after a HEAD answer"
    assert up.requests == ["HEAD /docs/file HTTP/1.1", "GET /docs/other HTTP/1.1"]
    assert up.connections == 2


def test_head_answer_without_a_length_keeps_its_connection(gateway_factory, upstreams):
    up = upstreams.raw(status_handler({"/docs/h": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    assert raw_request(gw.port, "HEAD", "/docs/h").status == 200
    assert raw_request(gw.port, "GET", "/docs/x").body == b"default"
    assert up.connections == 1
