"""Hostile request heads and bodies at the client edge (SPEC §3.2, issue 9 items 1, 7, 9 and
server.header_timeout): control bytes and obs-fold lines are refused before evhttp parses them,
every status line is HTTP/1.1 (or 1.0), a head that drips in is cut at header_timeout, and a
request refused on its head is answered without its body being read."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from support import (LOOPBACK, assert_uniform_raw, read_response, raw_exchange, wait_until)

ROUTES = [
    {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"},
    {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},  # auth: required, no credentials known
]

TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
def gw(gateway_factory, echo):
    return gateway_factory(upstreams={"api": echo}, routes=ROUTES,
                           server={"max_body_bytes": "16MiB", "header_timeout": "1s", "read_timeout": "30s"})


def clean_request_passes(gw, echo, before: int):
    """The positive signal after a refusal: a clean request is forwarded, and it is the only one."""
    r = requests.get(gw.url("/docs/after"), timeout=5)
    assert r.status_code == 200
    assert echo.request_count == before + 1, [q["target"] for q in echo.requests]


# ---------------------------------------------------------------------------------------------
# Item 1: control bytes and folded lines

FOLDED = [
    pytest.param(b"X-Foo: a\r\n b\rX-Auth-Subject: alice\r\n", id="fold-with-bare-cr-injection"),
    pytest.param(b"X-Foo: a\r\n \x0bb\r\n", id="vt-in-a-folded-line"),
    pytest.param(b"X-Foo: a\r\n\tb\r\n", id="htab-fold"),
    pytest.param(b"X-Foo: a\r\n b\r\n", id="plain-sp-fold"),
    pytest.param(b"X-Foo: a\rX-Auth-Subject: alice\r\n", id="bare-cr-in-a-value"),
    pytest.param(b"X-Foo: a\x0bb\r\n", id="vt-in-a-value"),
    pytest.param(b"X-Foo: a\x7fb\r\n", id="del-in-a-value"),
    pytest.param(b"X-Foo: a\x1bb\r\n", id="esc-in-a-value"),
]


@pytest.mark.parametrize("line", FOLDED)
def test_control_byte_or_folded_line_is_400_and_never_forwarded(gw, echo, line):
    data = b"GET /docs/x HTTP/1.1\r\nHost: x\r\n" + line + b"Connection: close\r\n\r\n"
    r = raw_exchange(gw.port, data)
    assert r.version == "HTTP/1.1"
    assert_uniform_raw(r, 400, "bad_request")
    assert r.header("Connection") == "close"
    assert echo.request_count == 0
    clean_request_passes(gw, echo, 0)


def test_folded_line_in_a_pipelined_request_is_refused_too(gw, echo):
    # The second head waits in the input buffer while the first is answered; evhttp reads it
    # later through a deferred callback. It is checked all the same.
    data = (b"GET /docs/first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /docs/second HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\rX-Auth-Subject: alice\r\n\r\n")
    first, second = raw_exchange(gw.port, data, count=2)
    assert first.status == 200
    assert_uniform_raw(second, 400, "bad_request")
    assert [q["path"] for q in echo.requests] == ["/docs/first"]


def test_chunked_trailer_fields_never_become_headers(gw, echo):
    data = (b"POST /docs/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Trailer-Injected: yes\r\n\r\n")
    r = raw_exchange(gw.port, data)
    assert r.status == 200
    names = [name.lower() for name, _ in r.json()["headers"]]
    assert "x-trailer-injected" not in names
    assert r.json()["body"] == "abc"


# ---------------------------------------------------------------------------------------------
# Item 7: the status line

@pytest.mark.parametrize("data", [
    pytest.param(b"GET /docs/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", id="nul-in-target"),
    pytest.param(b"GET\t/docs/a HTTP/1.1\r\nHost: x\r\n\r\n", id="htab-separator"),
    pytest.param(b"GARBAGE\r\n\r\n", id="garbage-line"),
])
def test_unparsable_request_line_is_answered_http11_with_the_uniform_error(gw, echo, data):
    r = raw_exchange(gw.port, data)
    assert r.version == "HTTP/1.1", r.version
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


# ---------------------------------------------------------------------------------------------
# server.header_timeout

def test_slowloris_head_is_closed_after_header_timeout_with_a_408_log_line(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"GET /docs/slow HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        started = time.monotonic()
        # One header line every 0.3 s (well within read_timeout) for up to 6 s: header_timeout
        # (1 s) must end it long before.
        for i in range(20):
            time.sleep(0.3)
            try:
                s.sendall(b"X-Drip-%d: v\r\n" % i)
                s.settimeout(0.01)
                data = s.recv(1024)
                if data == b"":
                    closed_after = time.monotonic() - started
                    break
                pytest.fail(f"the gateway answered a head that never ended: {data!r}")
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "a head dripping in for 6 s was still open"
    records = wait_until(lambda: [r for r in gw.log_records() if r["status"] == 408], 5, message="the 408 log line")
    assert records[0]["reason"] == "header_timeout"
    assert records[0]["decision"] == "error"
    assert echo.request_count == 0


def test_a_head_that_arrives_in_pieces_within_header_timeout_passes(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        for piece in (b"GET /docs/pieces HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n", b"\r\n"):
            s.sendall(piece)
            time.sleep(0.1)
        r = read_response(s.makefile("rb"))
    assert r.status == 200


# ---------------------------------------------------------------------------------------------
# Item 9: bodies are not read before the decision

def post_head(path: str, length: int, extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(length).encode() +
            b"\r\n" + extra + b"\r\n")


def test_refusal_arrives_before_the_body_is_sent(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(post_head("/api/upload", TEN_MIB))  # the head only; the body is never sent
        r = read_response(s.makefile("rb"))
    assert_uniform_raw(r, 401, "unauthorized")
    assert r.header("Connection") == "close"
    assert echo.request_count == 0
    rec = wait_until(lambda: [x for x in gw.log_records() if x["path"] == "/api/upload"], 5, message="the 401 log line")
    assert rec[0]["status"] == 401 and rec[0]["reason"] == "missing_credentials" and rec[0]["route"] == "api"


def test_no_100_continue_before_a_refusal(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(post_head("/api/upload", TEN_MIB, b"Expect: 100-continue\r\n"))
        reader = s.makefile("rb")
        status_line = reader.readline()
        assert status_line.startswith(b"HTTP/1.1 401 "), status_line
    assert echo.request_count == 0


def test_client_that_sent_part_of_the_body_reads_the_whole_refusal(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(post_head("/api/upload", TEN_MIB) + b"b" * (1024 * 1024))
        r = read_response(s.makefile("rb"))
        assert_uniform_raw(r, 401, "unauthorized")
        # Then the gateway's end of stream, not a reset.
        s.settimeout(5)
        assert s.recv(65536) == b""
    assert echo.request_count == 0


def test_no_route_is_404_before_the_body(gw, echo):
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(post_head("/nowhere", TEN_MIB))
        assert_uniform_raw(read_response(s.makefile("rb")), 404, "not_found")


def test_allowed_request_with_a_body_is_forwarded_whole(gw, echo):
    echo.brief = True
    r = requests.post(gw.url("/docs/upload"), data=b"u" * (2 * 1024 * 1024), headers={"Expect": "100-continue"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json()["body_length"] == 2 * 1024 * 1024
