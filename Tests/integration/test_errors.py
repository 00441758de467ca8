"""The uniform error (SPEC §3.1) for every refusal and failure the gateway makes itself —
404, 400 (path policy, malformed requests), 401, 413, 431, 502, 503, 504 — and the rule that
a refused request never reaches the upstream."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from support import (LOOPBACK, EchoUpstream, IncompleteBody, assert_uniform_raw, assert_uniform_requests,
                     free_port, garbage_handler, pairs_get, raw_exchange, raw_request, read_response, silent_close_handler,
                     stall_body_handler, truncating_handler)

ROUTES = [
    {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"},
    {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},  # auth: required (default)
]


@pytest.fixture
def gw(gateway_factory, echo):
    """A gateway in front of the echo upstream: /docs/** public, /api/** auth required, limits small."""
    return gateway_factory(upstreams={"api": echo}, routes=ROUTES,
                           server={"max_header_bytes": "4KiB", "max_body_bytes": "1KiB"})


# ---------------------------------------------------------------------------------------------
# 404

@pytest.mark.parametrize("method,path", [("GET", "/"), ("GET", "/nothing/here"), ("POST", "/docsx"),
                                         ("DELETE", "/admin"), ("GET", "/healthz"), ("GET", "/metrics")],
                         ids=["root", "unknown", "prefix-is-not-a-segment", "delete", "admin-healthz", "admin-metrics"])
def test_unmatched_request_is_404_not_found_and_never_forwarded(gw, echo, method, path):
    r = requests.request(method, gw.url(path), data=b"x" if method == "POST" else None, timeout=5)
    assert_uniform_requests(r, 404, "not_found")
    assert echo.request_count == 0


def test_error_body_carries_the_clients_valid_request_id(gw):
    r = requests.get(gw.url("/nope"), headers={"X-Request-Id": "trace-me.42"}, timeout=5)
    doc = assert_uniform_requests(r, 404, "not_found")
    assert doc["request_id"] == "trace-me.42"


def test_error_body_is_exactly_the_documented_json(gw):
    r = requests.get(gw.url("/nope"), headers={"X-Request-Id": "exact-1"}, timeout=5)
    assert r.json() == {"status": 404, "error": "not_found", "message": "Not found", "request_id": "exact-1"}
    assert r.headers["Content-Length"] == str(len(r.content))


# ---------------------------------------------------------------------------------------------
# 400: path policy (SPEC §4.1)

STRICT_REFUSED = [
    ("/docs/a%2Fb", "encoded-slash"),
    ("/docs/a%2fb", "encoded-slash-lower"),
    ("/docs/a%5Cb", "encoded-backslash"),
    ("/docs/a\\b", "raw-backslash"),
    ("/docs/a%25b", "encoded-percent"),
    ("/docs/a%252Fb", "double-encoded-slash"),
    ("/docs/a;b", "semicolon"),
    ("/docs/a;jsessionid=1", "matrix-param"),
    ("/docs/a%00b", "encoded-nul"),
    ("/docs/a%1fb", "encoded-control"),
    ("/docs/a%0Ab", "encoded-newline"),
    ("/docs/a%7Fb", "encoded-del"),
    ("/docs/../../etc/passwd", "climbing-dotdot"),
    ("/..", "root-dotdot"),
    ("/docs/%2e%2e/%2e%2e/etc", "climbing-encoded-dotdot"),
    ("/docs/%2E%2E/..%2F", "mixed-climb"),
    ("docs/x", "no-leading-slash"),
]


@pytest.mark.parametrize("target", [t for t, _ in STRICT_REFUSED], ids=[i for _, i in STRICT_REFUSED])
def test_strict_path_policy_refuses_with_400(gw, echo, target):
    r = raw_request(gw.port, "GET", target)
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


def test_raw_control_character_in_the_path_is_refused(gw, echo):
    r = raw_exchange(gw.port, b"GET /docs/a\x01b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


@pytest.mark.parametrize("target", ["/docs/../api/x", "/docs/%2e%2e/api/x", "/docs/./%2E%2e/api/x", "//docs/..//api/x",
                                    "/docs/a/../../api/x"],
                         ids=["dotdot", "encoded-dotdot", "mixed", "double-slashes", "two-levels"])
def test_path_that_normalizes_into_a_protected_route_is_judged_by_that_route(gw, echo, target):
    r = raw_request(gw.port, "GET", target)
    assert_uniform_raw(r, 401, "unauthorized")
    assert echo.request_count == 0


def test_path_refusal_comes_before_route_match_and_auth(gw, echo):
    r = raw_request(gw.port, "GET", "/api/a%2Fb")  # an auth-required route: 400, not 401
    assert_uniform_raw(r, 400, "bad_request")
    assert r.header("WWW-Authenticate") is None
    r = raw_request(gw.port, "GET", "/nowhere/a;b")  # no route: 400, not 404
    assert_uniform_raw(r, 400, "bad_request")


@pytest.mark.parametrize("target", ["/docs/a;b", "/docs/a%25b"], ids=["semicolon", "encoded-percent"])
def test_lenient_path_policy_accepts_semicolon_and_encoded_percent(gateway_factory, echo, target):
    gw = gateway_factory(upstreams={"api": echo}, routes=ROUTES, server={"path_policy": "lenient"})
    r = raw_request(gw.port, "GET", target)
    assert r.status == 200
    assert r.json()["path"] == target


@pytest.mark.parametrize("target", ["/docs/a%2Fb", "/docs/a%5Cb", "/docs/a%00b", "/docs/../../x", "/docs/%2e%2e/%2e%2e/x"],
                         ids=["encoded-slash", "encoded-backslash", "encoded-nul", "climbing", "encoded-climbing"])
def test_lenient_path_policy_still_refuses_the_rest(gateway_factory, echo, target):
    gw = gateway_factory(upstreams={"api": echo}, routes=ROUTES, server={"path_policy": "lenient"})
    assert_uniform_raw(raw_request(gw.port, "GET", target), 400, "bad_request")
    assert echo.request_count == 0


# ---------------------------------------------------------------------------------------------
# 400: malformed requests (evhttp's own refusals, answered uniformly)

MALFORMED = [
    (b"GARBAGE\r\n\r\n", "garbage-line"),
    (b"GET /docs/x HTTP/9.9\r\nHost: x\r\n\r\n", "unknown-version"),
    (b"GET /docs/x HTTP/1.1\r\nHost x\r\n\r\n", "header-without-colon"),
    (b"POST /docs/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "non-numeric-content-length"),
    (b"POST /docs/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "negative-content-length"),
]


@pytest.mark.parametrize("data", [d for d, _ in MALFORMED], ids=[i for _, i in MALFORMED])
def test_malformed_request_is_400_bad_request(gw, echo, data):
    assert_uniform_raw(raw_exchange(gw.port, data), 400, "bad_request")
    assert echo.request_count == 0


def test_conflicting_content_lengths_are_refused(gw, echo):
    # RFC 9112 §6.3 (5): differing Content-Length values are an unrecoverable framing error:
    # 400 and close. Taking either value lets a second request hide in the body (smuggling).
    data = (b"POST /docs/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 44\r\n\r\n"
            b"abcGET /docs/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    with socket.create_connection((LOOPBACK, gw.port), timeout=10) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        first = read_response(reader)
        assert_uniform_raw(first, 400, "bad_request")
        assert_closed_after_the_refusal(reader)
    assert echo.request_count == 0, [r["target"] for r in echo.requests]


def assert_closed_after_the_refusal(reader):
    """The gateway closes the connection after a framing refusal. The close is the positive
    signal that nothing else on it is read as a request: a smuggled request would have been
    forwarded, and answered here, before it."""
    rest = reader.read()
    assert rest == b"", f"bytes after the refusal: {rest[:200]!r}"


def test_content_length_with_transfer_encoding_never_smuggles_a_request(gw, echo):
    data = (b"POST /docs/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /docs/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    with socket.create_connection((LOOPBACK, gw.port), timeout=10) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        first = read_response(reader)
        assert first.status == 400, first
        assert_closed_after_the_refusal(reader)
    assert not [r for r in echo.requests if "smuggled" in r["target"]]


def test_duplicate_host_headers_are_400(gw, echo):
    # RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host line.
    r = raw_request(gw.port, "GET", "/docs/x", host="a.example", headers=[("Host", "b.example")])
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


def test_host_with_userinfo_is_400(gw, echo):
    # RFC 9112 §3.2: a Host field with an invalid value MUST be answered with 400.
    r = raw_request(gw.port, "GET", "/docs/x", host="evil@api.example.com")
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


@pytest.mark.parametrize("line", [
    "Transfer-Encoding : chunked",
    "Connection : keep-alive, X-Secret",
    "X-Thing : value",
], ids=["transfer-encoding", "connection", "plain"])
def test_whitespace_between_header_name_and_colon_is_400(gw, echo, line):
    # RFC 9112 §5.1: a server MUST reject such a request with 400. Forwarded as is, an upstream
    # that tolerates the space reads `Transfer-Encoding : chunked` as framing (request smuggling).
    data = f"GET /docs/x HTTP/1.1\r\nHost: x\r\n{line}\r\nX-Secret: s\r\nConnection: close\r\n\r\n".encode()
    assert_uniform_raw(raw_exchange(gw.port, data), 400, "bad_request")
    assert echo.request_count == 0


@pytest.mark.parametrize("coding", [
    pytest.param("xchunked", id="unknown"),
    pytest.param("chunked, gzip", id="chunked-not-last"),
    pytest.param("gzip", id="no-chunked"),
])
def test_request_whose_transfer_coding_does_not_end_in_chunked_is_400(gw, echo, coding):
    # RFC 9112 §6.3 (4): the body length cannot be determined: 400 and close.
    data = (f"POST /docs/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {coding}\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n").encode()
    with socket.create_connection((LOOPBACK, gw.port), timeout=10) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        first = read_response(reader)
        assert_uniform_raw(first, 400, "bad_request")
        assert_closed_after_the_refusal(reader)
    assert echo.request_count == 0


def test_nul_in_a_header_value_is_rejected_or_replaced_never_truncated(gw, echo):
    # RFC 9110 §5.5: a recipient of NUL in a field value MUST reject the message or replace
    # the NUL with SP before forwarding it.
    r = raw_exchange(gw.port, b"GET /docs/x HTTP/1.1\r\nHost: x\r\nX-A: left\x00right\r\nConnection: close\r\n\r\n")
    if r.status == 400:
        assert_uniform_raw(r, 400, "bad_request")
        assert echo.request_count == 0
    else:
        assert r.status == 200
        assert pairs_get(r.json()["headers"], "X-A") == "left right"


def test_http11_request_without_host_is_400(gw, echo):
    # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    r = raw_request(gw.port, "GET", "/docs/x", host=None)
    assert_uniform_raw(r, 400, "bad_request")
    assert echo.request_count == 0


# ---------------------------------------------------------------------------------------------
# 401

def test_auth_required_route_without_credentials_is_401_with_bearer_challenge(gw, echo):
    r = requests.get(gw.url("/api/users"), timeout=5)
    assert_uniform_requests(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gatehouse"'
    assert echo.request_count == 0


def test_presented_bearer_token_that_cannot_be_verified_is_401_invalid_token(gw, echo):
    r = requests.get(gw.url("/api/users"), headers={"Authorization": "Bearer abc.def.ghi"}, timeout=5)
    assert_uniform_requests(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gatehouse", error="invalid_token"'
    assert echo.request_count == 0


def test_optional_auth_route_refuses_a_presented_credential_it_cannot_verify(gateway_factory, echo):
    opt = {"name": "opt", "match": {"path": "/opt/**"}, "upstream": "api", "auth": "optional"}
    gw = gateway_factory(upstreams={"api": echo}, routes=[opt])
    assert requests.get(gw.url("/opt/x"), timeout=5).status_code == 200  # anonymous
    r = requests.get(gw.url("/opt/x"), headers={"Authorization": "Bearer bad.token.here"}, timeout=5)
    assert_uniform_requests(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gatehouse", error="invalid_token"'
    assert echo.request_count == 1


def test_head_refusal_has_the_error_headers_and_no_body(gw, echo):
    r = raw_request(gw.port, "HEAD", "/nope")
    assert r.status == 404 and r.body == b""
    assert r.header("X-Request-Id") and r.header("Cache-Control") == "no-store"
    assert r.header("Content-Type").startswith("application/json")


def test_non_bearer_credentials_are_401_without_invalid_token(gw, echo):
    r = requests.get(gw.url("/api/users"), headers={"Authorization": "Basic dXNlcjpwdw=="}, timeout=5)
    assert_uniform_requests(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="gatehouse"')
    assert echo.request_count == 0


# ---------------------------------------------------------------------------------------------
# 413 / 431

def test_body_over_max_body_bytes_is_413(gw, echo):
    r = requests.post(gw.url("/docs/upload"), data=b"b" * 2048, timeout=5)
    assert_uniform_requests(r, 413, "payload_too_large")
    assert echo.request_count == 0


def test_chunked_body_over_max_body_bytes_is_413(gw, echo):
    chunk = b"c" * 800
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    r = raw_request(gw.port, "POST", "/docs/upload", headers=[("Transfer-Encoding", "chunked")], body=body)
    assert_uniform_raw(r, 413, "payload_too_large")
    assert echo.request_count == 0


def test_body_of_exactly_max_body_bytes_passes(gw, echo):
    r = requests.post(gw.url("/docs/upload"), data=b"b" * 1024, timeout=5)
    assert r.status_code == 200
    assert r.json()["body_length"] == 1024


def test_oversize_content_length_is_refused_before_the_body_is_sent(gw, echo):
    head = b"POST /docs/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"
    with socket.create_connection((LOOPBACK, gw.port), timeout=3) as s:
        s.sendall(head)  # no body follows: the answer must not wait for 100 MiB
        assert_uniform_raw(read_response(s.makefile("rb")), 413, "payload_too_large")
    assert echo.request_count == 0


@pytest.mark.parametrize("size", [6000, 100_000], ids=["over-limit", "far-over-limit"])
def test_head_over_max_header_bytes_is_431(gw, echo, size):
    data = b"GET /docs/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    assert_uniform_raw(raw_exchange(gw.port, data), 431, "headers_too_large")
    assert echo.request_count == 0


@pytest.mark.parametrize("size", [
    pytest.param(6000, id="over-limit"),
    pytest.param(100_000, id="far-over-limit"),
])
def test_request_line_over_max_header_bytes_is_431(gw, echo, size):
    data = b"GET /docs/" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_uniform_raw(raw_exchange(gw.port, data), 431, "headers_too_large")
    assert echo.request_count == 0


def test_many_headers_over_max_header_bytes_is_431(gw, echo):
    headers = [(f"X-H{i}", "v" * 40) for i in range(200)]
    assert_uniform_raw(raw_request(gw.port, "GET", "/docs/x", headers=headers), 431, "headers_too_large")
    assert echo.request_count == 0


def test_head_under_max_header_bytes_passes(gw, echo):
    r = raw_request(gw.port, "GET", "/docs/x", headers=[("X-Big", "a" * 3000)])
    assert r.status == 200


# ---------------------------------------------------------------------------------------------
# 502 / 503 / 504

def test_connection_refused_upstream_is_502(gateway_factory):
    dead = f"http://{LOOPBACK}:{free_port()}"
    gw = gateway_factory(upstreams={"api": dead}, routes=ROUTES, server={"workers": 1})
    r = requests.get(gw.url("/docs/x"), timeout=5)
    assert_uniform_requests(r, 502, "bad_gateway")


@pytest.mark.parametrize("handler", [garbage_handler, silent_close_handler], ids=["garbage", "closes-without-answer"])
def test_upstream_that_answers_garbage_or_nothing_is_502(gateway_factory, upstreams, handler):
    up = upstreams.raw(handler)
    gw = gateway_factory(upstreams={"api": up}, routes=ROUTES)
    r = requests.get(gw.url("/docs/x"), timeout=5)
    assert_uniform_requests(r, 502, "bad_gateway")
    assert up.requests  # it did reach the upstream


def test_slow_upstream_past_timeout_is_504(gateway_factory, slow_echo):
    gw = gateway_factory(upstreams={"api": {"targets": [slow_echo.url], "timeout": "300ms"}}, routes=ROUTES)
    started = time.monotonic()
    r = requests.get(gw.url("/docs/slow"), timeout=5)
    elapsed = time.monotonic() - started
    assert_uniform_requests(r, 504, "gateway_timeout")
    assert 0.25 <= elapsed < 2.5, elapsed
    rec = gw.wait_log_record(r.headers["X-Request-Id"])
    assert rec["status"] == 504 and rec["reason"] == "upstream_timeout"


def test_upstream_within_timeout_is_not_cut(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url], "timeout": "1s"}}, routes=ROUTES)
    r = requests.get(gw.url("/docs/slowish?gh_sleep=0.4"), timeout=5)
    assert r.status_code == 200


def test_connect_timeout_is_504(gateway_factory, upstreams):
    hole = upstreams.blackhole()
    if not hole.connect_hangs():
        pytest.skip("this kernel does not drop SYNs to a full accept queue on loopback")
    gw = gateway_factory(upstreams={"api": {"targets": [hole.url], "connect_timeout": "300ms", "timeout": "10s"}},
                         routes=ROUTES, server={"workers": 1})
    started = time.monotonic()
    r = requests.get(gw.url("/docs/x"), timeout=5)
    assert_uniform_requests(r, 504, "gateway_timeout")
    assert time.monotonic() - started < 2


def test_upstream_silent_mid_body_past_timeout_cuts_the_client_connection(gateway_factory, upstreams):
    up = upstreams.raw(stall_body_handler(total=100_000, sent=1000, stall=5))
    gw = gateway_factory(upstreams={"api": {"targets": [up.url], "timeout": "400ms"}}, routes=ROUTES)
    started = time.monotonic()
    with pytest.raises((IncompleteBody, ConnectionError)):
        raw_request(gw.port, "GET", "/docs/stall", timeout=4)
    assert time.monotonic() - started < 2.5


def test_truncated_upstream_body_is_not_passed_off_as_complete(gateway_factory, upstreams):
    up = upstreams.raw(truncating_handler(total=50_000, sent=10_000))
    gw = gateway_factory(upstreams={"api": up}, routes=ROUTES)
    with pytest.raises((IncompleteBody, ConnectionError)):
        raw_request(gw.port, "GET", "/docs/trunc", timeout=4)


def test_all_targets_down_is_503_within_the_down_window_and_never_contacts_them(gateway_factory, upstreams):
    port = free_port()
    gw = gateway_factory(upstreams={"api": f"http://{LOOPBACK}:{port}"}, routes=ROUTES, server={"workers": 1})
    for _ in range(3):
        assert_uniform_requests(requests.get(gw.url("/docs/x"), timeout=5), 502, "bad_gateway")
    started = time.monotonic()
    assert_uniform_requests(requests.get(gw.url("/docs/x"), timeout=5), 503, "service_unavailable")
    # The target comes back, but it stays marked down for 10 s: still 503, and not contacted.
    revived = EchoUpstream("revived", port=port)
    try:
        for _ in range(3):
            assert_uniform_requests(requests.get(gw.url("/docs/x"), timeout=5), 503, "service_unavailable")
        assert time.monotonic() - started < 9
        assert revived.request_count == 0 and revived.connections == 0
    finally:
        revived.stop()


def test_target_marked_down_is_tried_again_after_10_seconds(gateway_factory):
    port = free_port()
    gw = gateway_factory(upstreams={"api": f"http://{LOOPBACK}:{port}"}, routes=ROUTES, server={"workers": 1})
    for _ in range(3):
        assert requests.get(gw.url("/docs/x"), timeout=5).status_code == 502
    marked = time.monotonic()
    assert requests.get(gw.url("/docs/x"), timeout=5).status_code == 503
    revived = EchoUpstream("revived", port=port)
    try:
        time.sleep(max(0.0, 10.3 - (time.monotonic() - marked)))
        r = requests.get(gw.url("/docs/back"), timeout=5)
        assert r.status_code == 200 and r.json()["server"] == "revived"
    finally:
        revived.stop()


def test_every_target_of_several_down_is_503(gateway_factory):
    dead = [f"http://{LOOPBACK}:{free_port()}" for _ in range(2)]
    gw = gateway_factory(upstreams={"api": dead}, routes=ROUTES, server={"workers": 1})
    statuses = [requests.get(gw.url("/docs/x"), timeout=5).status_code for _ in range(3)]
    assert statuses == [502, 502, 502]
    assert_uniform_requests(requests.get(gw.url("/docs/x"), timeout=5), 503, "service_unavailable")


# ---------------------------------------------------------------------------------------------
# Every gateway-made response carries the request id

@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET /docs/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /docs/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n",
], ids=["malformed", "path", "no-route", "oversize-head"])
def test_every_refusal_has_a_fresh_request_id_matching_its_body(gw, data):
    r = raw_exchange(gw.port, data)
    assert r.header("X-Request-Id") and r.json()["request_id"] == r.header("X-Request-Id")
