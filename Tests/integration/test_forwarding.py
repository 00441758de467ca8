"""What crosses the gateway, both ways (SPEC §3, §4, §7.1): method, path, query, body and
headers; path normalization; hop-by-hop and spoofed identity headers; X-Forwarded-* and
X-Request-Id; Host; absolute-form targets; routing; upstream keep-alive, stale-connection
retry, round robin and passive health."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time

import pytest
import requests

from support import (LOOPBACK, assert_uniform_raw, close_delimited_handler, free_port, pairs_all,
                     pairs_get, raw_exchange, raw_request, read_raw_request, read_response, response_headers_handler,
                     simple_response,
                     stale_close_idle_handler, stale_drop_second_handler, status_handler, trickle_handler)

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}


def docs_gateway(gateway_factory, echo, server=None, upstream=None, routes=None):
    up = dict(upstream or {})
    up.setdefault("targets", [echo.url])
    return gateway_factory(upstreams={"api": up}, routes=routes or [DOCS], server=server)


def last(echo):
    assert echo.requests, "the upstream received nothing"
    return echo.requests[-1]


# ---------------------------------------------------------------------------------------------
# Method, path, query, body, headers

@pytest.mark.parametrize("method,body", [
    ("GET", b""),
    ("POST", b'{"a": 1}'),
    ("PUT", b"put-body"),
    ("PATCH", b"patch-body"),
    ("DELETE", b"delete-body"),
    ("OPTIONS", b""),
], ids=["get", "post", "put", "patch-with-body", "delete-with-body", "options-without-origin"])
def test_method_path_query_and_body_reach_the_upstream(gateway_factory, echo, method, body):
    gw = docs_gateway(gateway_factory, echo)
    r = requests.request(method, gw.url("/docs/items/42?b=2&a=1&a=%2F&x="), data=body or None,
                         headers={"Content-Type": "text/plain"} if body else {}, timeout=5)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == method
    assert got["path"] == "/docs/items/42"
    assert got["query"] == "b=2&a=1&a=%2F&x="
    assert got["body"].encode("latin-1") == body
    if body:
        assert pairs_get(got["headers"], "Content-Length") == str(len(body))


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_patch_and_delete_with_body_keep_content_length(gateway_factory, echo, method):
    gw = docs_gateway(gateway_factory, echo)
    body = b"x" * 1000
    r = raw_request(gw.port, method, "/docs/thing", headers=[("Content-Length", str(len(body)))], body=body)
    assert r.status == 200
    got = r.json()
    assert pairs_all(got["headers"], "Content-Length") == ["1000"]
    assert got["body_length"] == 1000


def test_head_is_forwarded_and_keeps_the_upstream_content_length(gateway_factory, upstreams):
    # RFC 9110 §9.3.2: a HEAD answer carries the Content-Length a GET would have.
    up = upstreams.raw(status_handler({"/docs/head": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                                     b"Content-Length: 1234\r\n\r\n"}))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    head = raw_request(gw.port, "HEAD", "/docs/head")
    assert head.status == 200 and head.body == b""
    assert up.requests == ["HEAD /docs/head HTTP/1.1"]
    assert head.header_all("Content-Length") == ["1234"]


def test_chunked_request_body_arrives_complete(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    parts = [b"hello ", b"chunked ", b"world"]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    r = raw_request(gw.port, "POST", "/docs/upload", headers=[("Transfer-Encoding", "chunked")], body=chunked)
    assert r.status == 200
    got = r.json()
    assert got["body"] == "hello chunked world"
    assert pairs_get(got["headers"], "Transfer-Encoding") is None
    assert pairs_get(got["headers"], "Content-Length") == str(len("hello chunked world"))


def test_end_to_end_request_headers_reach_the_upstream_in_order(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/h", headers=[
        ("Accept", "application/json"), ("X-Custom", "one"), ("X-Custom", "two"),
        ("Cookie", "a=1; b=2"), ("Authorization", "Basic dXNlcjpwdw=="), ("User-Agent", "it/1.0"),
        ("X-Authentic", "not an identity header"), ("X-Auth", "no dash, not X-Auth-*")])
    assert r.status == 200
    h = r.json()["headers"]
    assert pairs_all(h, "X-Custom") == ["one", "two"]
    assert pairs_get(h, "Accept") == "application/json"
    assert pairs_get(h, "Cookie") == "a=1; b=2"
    assert pairs_get(h, "Authorization") == "Basic dXNlcjpwdw=="
    assert pairs_get(h, "User-Agent") == "it/1.0"
    assert pairs_get(h, "X-Authentic") == "not an identity header"
    assert pairs_get(h, "X-Auth") == "no dash, not X-Auth-*"


def test_upstream_status_headers_and_body_reach_the_client(gateway_factory, echo):
    echo.extra_headers = [("X-Upstream-Thing", "yes"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                          ("Cache-Control", "max-age=60"), ("ETag", '"v1"')]
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/created?gh_status=201")
    assert r.status == 201
    assert r.header("X-Upstream-Thing") == "yes"
    assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.header("Cache-Control") == "max-age=60"
    assert r.header("ETag") == '"v1"'
    assert r.header("Content-Type") == "application/json"
    assert r.json()["path"] == "/docs/created"


def test_chunked_upstream_body_reaches_an_http11_client_intact(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = requests.get(gw.url("/docs/chunky?gh_chunked=1"), timeout=5)
    assert r.status_code == 200
    assert r.json()["path"] == "/docs/chunky"


def test_http10_client_gets_a_complete_body_from_a_chunked_upstream(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_exchange(gw.port, b"GET /docs/old?gh_chunked=1 HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert "chunked" not in (r.header("Transfer-Encoding") or "").lower()
    assert r.json()["path"] == "/docs/old"  # a body framed for HTTP/1.0 (length or close)


def test_http10_request_is_forwarded(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_exchange(gw.port, b"GET /docs/ten HTTP/1.0\r\nHost: ten.example\r\n\r\n")
    assert r.status == 200
    assert r.json()["path"] == "/docs/ten"
    assert r.header("X-Request-Id")


def test_empty_query_is_passed_through_unchanged(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    assert raw_request(gw.port, "GET", "/docs/q?").json()["target"] == "/docs/q?"
    assert raw_request(gw.port, "GET", "/docs/q").json()["target"] == "/docs/q"


def test_pipelined_requests_are_answered_in_order(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    data = b"".join(
        f"GET /docs/pipe/{i} HTTP/1.1\r\nHost: p\r\nX-Request-Id: pipe-{i}\r\n\r\n".encode() for i in range(3))
    data += b"GET /docs/pipe/last HTTP/1.1\r\nHost: p\r\nX-Request-Id: pipe-last\r\nConnection: close\r\n\r\n"
    responses = raw_exchange(gw.port, data, count=4)
    assert [r.json()["path"] for r in responses] == ["/docs/pipe/0", "/docs/pipe/1", "/docs/pipe/2", "/docs/pipe/last"]
    assert [r.header("X-Request-Id") for r in responses] == ["pipe-0", "pipe-1", "pipe-2", "pipe-last"]


# ---------------------------------------------------------------------------------------------
# Path normalization (SPEC §4.1): the normalized path is what the upstream receives

@pytest.mark.parametrize("raw,expected", [
    ("/docs/a/./b", "/docs/a/b"),
    ("/docs/a/../b", "/docs/b"),
    ("/docs//a///b", "/docs/a/b"),
    ("/docs/a/%2e%2e/b", "/docs/b"),
    ("/docs/a/%2E/b", "/docs/a/b"),
    ("/docs/%7Euser/%41%42c", "/docs/~user/ABc"),
    ("/docs/caf%c3%a9", "/docs/caf%C3%A9"),
    ("/docs/a%20b", "/docs/a%20b"),
    ("/docs/a%3ab%2cc", "/docs/a%3Ab%2Cc"),
    ("/docs/x/..", "/docs/"),
    ("/other/../docs/z", "/docs/z"),
], ids=["dot", "dotdot", "slashes", "encoded-dotdot", "encoded-dot", "unreserved-decoded",
        "escapes-uppercased", "space-escape-kept", "reserved-escapes-kept-uppercased", "trailing-dotdot", "climb-into-route"])
def test_normalized_path_reaches_the_upstream(gateway_factory, echo, raw, expected):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", raw + "?q=%2e%2e/..;x")
    assert r.status == 200, r
    got = r.json()
    assert got["path"] == expected
    assert got["query"] == "q=%2e%2e/..;x"  # the query passes unchanged


@pytest.mark.parametrize("raw", ["/docs/a;b", "/docs/a%25b", "/docs/a%252Fb"],
                         ids=["semicolon", "encoded-percent", "double-encoded-slash"])
def test_lenient_policy_forwards_semicolon_and_encoded_percent_as_they_are(gateway_factory, echo, raw):
    gw = docs_gateway(gateway_factory, echo, server={"path_policy": "lenient"})
    r = raw_request(gw.port, "GET", raw)
    assert r.status == 200
    assert r.json()["path"] == raw


# ---------------------------------------------------------------------------------------------
# Hop-by-hop headers

REQUEST_HOP_BY_HOP = [
    ("Connection", "keep-alive, X-Hop-Named"),
    ("X-Hop-Named", "secret"),
    ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"),
    ("Trailer", "X-Trail"),
    ("Upgrade", "websocket"),
    ("Proxy-Authorization", "Basic cHJveHk6cHc="),
    ("Proxy-Connection", "keep-alive"),
]


def test_hop_by_hop_request_headers_are_removed(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/hop", headers=REQUEST_HOP_BY_HOP + [("X-End-To-End", "kept")])
    assert r.status == 200
    h = r.json()["headers"]
    for name in ["Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "X-Hop-Named"]:
        assert pairs_get(h, name) is None, f"{name} reached the upstream: {h}"
    for value in pairs_all(h, "Connection"):
        assert "x-hop-named" not in value.lower()
    assert pairs_get(h, "X-End-To-End") == "kept"


def test_header_named_in_a_second_connection_line_is_removed(gateway_factory, echo):
    # RFC 9110 §5.3: several field lines of one name are one comma-joined list.
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/hop2", headers=[
        ("Connection", "keep-alive"), ("Connection", "X-Second-Hop"), ("X-Second-Hop", "secret")])
    assert r.status == 200
    assert pairs_get(r.json()["headers"], "X-Second-Hop") is None


def test_hop_by_hop_response_headers_are_removed(gateway_factory, upstreams):
    head = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            "Connection: keep-alive, X-Resp-Named\r\nX-Resp-Named: secret\r\nKeep-Alive: timeout=5, max=100\r\n"
            "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-Trail\r\nTE: trailers\r\n"
            "Proxy-Authorization: Basic eDp5\r\nX-End-To-End: kept\r\n")
    up = upstreams.raw(response_headers_handler(head, b"ok"))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/resp")
    assert r.status == 200 and r.body == b"ok"
    for name in ["X-Resp-Named", "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer", "TE", "Proxy-Authorization"]:
        assert r.header(name) is None, f"{name} reached the client: {r.headers}"
    for value in r.header_all("Connection"):
        assert "x-resp-named" not in value.lower(), value
    assert r.header("X-End-To-End") == "kept"


# ---------------------------------------------------------------------------------------------
# Spoofed identity headers

@pytest.mark.parametrize("auth", ["none", "optional"])
def test_client_sent_x_auth_headers_never_reach_the_upstream(gateway_factory, echo, auth):
    route = {"name": "r", "match": {"path": "/docs/**"}, "upstream": "api", "auth": auth}
    gw = docs_gateway(gateway_factory, echo, routes=[route])
    r = raw_request(gw.port, "GET", "/docs/me", headers=[
        ("X-Auth-Subject", "admin"), ("x-auth-roles", "admin,root"), ("X-AUTH-Anything", "x"),
        ("X-Auth-Method", "jwt"), ("x-AuTh-eMaIl", "root@example.com")])
    assert r.status == 200
    names = [k.lower() for k, _ in r.json()["headers"]]
    assert not [n for n in names if n.startswith("x-auth-")], names


def test_identity_headers_spelled_with_underscores_never_reach_the_upstream(gateway_factory, echo):
    # CGI/WSGI/PHP upstreams read `X_Auth_Subject` and `X-Auth-Subject` as the same variable
    # (HTTP_X_AUTH_SUBJECT); nginx drops header names with underscores by default for this reason.
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/me", headers=[("X_Auth_Subject", "admin"), ("x_auth-roles", "admin")])
    assert r.status in (200, 400)
    if r.status == 200:
        names = [k.lower().replace("_", "-") for k, _ in r.json()["headers"]]
        assert not [n for n in names if n.startswith("x-auth-")], names
    else:
        assert echo.request_count == 0


def test_strip_authorization_removes_the_authorization_header(gateway_factory, echo):
    routes = [{"name": "s", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none", "strip_authorization": True},
              {"name": "k", "match": {"path": "/keep/**"}, "upstream": "api", "auth": "none"}]
    gw = docs_gateway(gateway_factory, echo, routes=routes)
    h = {"Authorization": "Basic dXNlcjpwdw=="}
    assert pairs_get(requests.get(gw.url("/docs/x"), headers=h, timeout=5).json()["headers"], "Authorization") is None
    assert pairs_get(requests.get(gw.url("/keep/x"), headers=h, timeout=5).json()["headers"], "Authorization") == h["Authorization"]


# ---------------------------------------------------------------------------------------------
# X-Request-Id

@pytest.mark.parametrize("incoming,kept", [
    ("abc-123._XYZ", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("has space", False),
    ("semi;colon", False),
    ("slash/id", False),
    ("", False),
], ids=["valid", "128-chars", "129-chars", "space", "semicolon", "slash", "empty"])
def test_request_id_is_kept_when_valid_else_generated(gateway_factory, echo, incoming, kept):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/rid", headers=[("X-Request-Id", incoming)])
    assert r.status == 200
    returned = r.header("X-Request-Id")
    forwarded = pairs_all(r.json()["headers"], "X-Request-Id")
    assert forwarded == [returned], "one X-Request-Id upstream, the same one the client gets"
    assert len(r.header_all("X-Request-Id")) == 1
    if kept:
        assert returned == incoming
    else:
        assert returned != incoming
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", returned)


def test_generated_request_ids_are_unique(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    ids = {requests.get(gw.url("/docs/u"), timeout=5).headers["X-Request-Id"] for _ in range(20)}
    assert len(ids) == 20


def test_upstream_request_id_header_is_replaced_by_the_gateways(gateway_factory, echo):
    echo.extra_headers = [("X-Request-Id", "upstream-made-this")]
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/rid", headers=[("X-Request-Id", "client-id")])
    assert r.header_all("X-Request-Id") == ["client-id"]


# ---------------------------------------------------------------------------------------------
# X-Forwarded-* and trusted proxies

def test_forwarded_headers_replace_client_values_from_an_untrusted_peer(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    r = raw_request(gw.port, "GET", "/docs/xff", host="shop.example:8443", headers=[
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example")])
    h = r.json()["headers"]
    assert pairs_all(h, "X-Forwarded-For") == ["127.0.0.1"]
    assert pairs_all(h, "X-Forwarded-Proto") == ["http"]
    assert pairs_all(h, "X-Forwarded-Host") == ["shop.example:8443"]
    rec = gw.wait_log_record(r.header("X-Request-Id"))
    assert rec["client"] == "127.0.0.1"


@pytest.mark.parametrize("trusted,incoming,client", [
    (["127.0.0.1/32"], "203.0.113.9, 10.0.0.2", "10.0.0.2"),
    (["127.0.0.0/8", "10.0.0.0/8"], "203.0.113.9, 10.0.0.2", "203.0.113.9"),
    (["127.0.0.0/8", "10.0.0.0/8"], "10.1.1.1, 10.0.0.2", "10.1.1.1"),
    (["127.0.0.1/32"], "198.51.100.7", "198.51.100.7"),
], ids=["one-trusted-hop", "two-trusted-hops", "all-trusted-leftmost", "single-entry"])
def test_trusted_proxy_chain_is_appended_and_client_is_rightmost_untrusted(gateway_factory, echo, trusted, incoming, client):
    gw = docs_gateway(gateway_factory, echo, server={"trusted_proxies": trusted})
    r = raw_request(gw.port, "GET", "/docs/chain", headers=[("X-Forwarded-For", incoming)])
    assert r.status == 200
    assert pairs_all(r.json()["headers"], "X-Forwarded-For") == [incoming + ", 127.0.0.1"]
    assert gw.wait_log_record(r.header("X-Request-Id"))["client"] == client


def test_forwarded_for_from_a_peer_outside_trusted_proxies_is_replaced(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo, server={"trusted_proxies": ["10.0.0.0/8"]})
    r = raw_request(gw.port, "GET", "/docs/untrusted", headers=[("X-Forwarded-For", "203.0.113.9")])
    assert pairs_all(r.json()["headers"], "X-Forwarded-For") == ["127.0.0.1"]
    assert gw.wait_log_record(r.header("X-Request-Id"))["client"] == "127.0.0.1"


def test_trusted_proxy_chain_spread_over_two_header_lines_is_one_list(gateway_factory, echo):
    # RFC 9110 §5.3: two X-Forwarded-For lines are one list. A proxy that appends its own line
    # must not let the client's first line decide who the client is.
    gw = docs_gateway(gateway_factory, echo, server={"trusted_proxies": ["127.0.0.1/32"]})
    r = raw_request(gw.port, "GET", "/docs/chain2", headers=[
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.50")])
    assert r.status == 200
    assert pairs_all(r.json()["headers"], "X-Forwarded-For") == ["6.6.6.6, 203.0.113.50, 127.0.0.1"]
    assert gw.wait_log_record(r.header("X-Request-Id"))["client"] == "203.0.113.50"


# ---------------------------------------------------------------------------------------------
# Host and absolute-form

@pytest.mark.parametrize("preserve", [True, False], ids=["preserve-host", "target-host"])
def test_host_header_follows_preserve_host(gateway_factory, echo, preserve):
    gw = docs_gateway(gateway_factory, echo, upstream={"preserve_host": preserve})
    r = raw_request(gw.port, "GET", "/docs/host", host="client.example:8080")
    h = r.json()["headers"]
    expected = "client.example:8080" if preserve else f"127.0.0.1:{echo.port}"
    assert pairs_all(h, "Host") == [expected]
    assert pairs_get(h, "X-Forwarded-Host") == "client.example:8080"


def test_absolute_form_target_is_reduced_to_path_and_query_and_its_authority_is_the_host(gateway_factory, echo):
    routes = [{"name": "by-host", "match": {"path": "/docs/**", "host": "api.example.com"}, "upstream": "api",
               "auth": "none"}]
    gw = docs_gateway(gateway_factory, echo, routes=routes)
    r = raw_request(gw.port, "GET", "http://api.example.com/docs/a/../abs?x=1&y=%2F", host="other.example")
    assert r.status == 200, r
    got = r.json()
    assert got["target"] == "/docs/abs?x=1&y=%2F"
    assert pairs_all(got["headers"], "Host") == ["api.example.com"]
    assert pairs_all(got["headers"], "X-Forwarded-Host") == ["api.example.com"]
    # The Host header alone does not pick the host-bound route.
    r2 = raw_request(gw.port, "GET", "http://other.example/docs/abs", host="api.example.com")
    assert_uniform_raw(r2, 404, "not_found")


def test_absolute_form_authority_with_target_host(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo, upstream={"preserve_host": False})
    r = raw_request(gw.port, "GET", "http://api.example.com:8443/docs/abs2", host="x")
    assert r.status == 200
    h = r.json()["headers"]
    assert pairs_all(h, "Host") == [f"127.0.0.1:{echo.port}"]


# ---------------------------------------------------------------------------------------------
# Routing (SPEC §4.2)

def test_routes_match_by_glob_method_and_host_first_match_wins(gateway_factory, upstreams):
    a, b, c, d = (upstreams.echo(n) for n in "abcd")
    routes = [
        {"name": "one-seg", "match": {"path": "/api/*/info"}, "upstream": "a", "auth": "none"},
        {"name": "read", "match": {"path": "/api/**", "methods": ["GET", "HEAD"]}, "upstream": "b", "auth": "none"},
        {"name": "hosted", "match": {"path": "/api/**", "host": "Write.Example.com"}, "upstream": "c", "auth": "none"},
        {"name": "fallback-write", "match": {"path": "/api/**", "methods": ["POST"]}, "upstream": "d", "auth": "none"},
    ]
    gw = gateway_factory(upstreams={"a": a, "b": b, "c": c, "d": d}, routes=routes)

    def who(method, path, host="x.example"):
        r = raw_request(gw.port, method, path, host=host, body=b"z" if method == "POST" else b"")
        return r.json()["server"] if r.status == 200 else r.status

    assert who("GET", "/api/users/info") == "a"
    assert who("POST", "/api/users/info") == "a"         # no methods: all methods
    assert who("GET", "/api/users/x/info") == "b"       # * stays within one segment
    assert who("GET", "/api") == "b"                    # /a/** matches /a
    assert who("GET", "/api/") == "b"
    assert who("POST", "/api/x", host="write.example.com:9999") == "c"  # host: case-insensitive, port ignored
    assert who("POST", "/api/x") == "d"
    assert who("PUT", "/api/x") == 404                  # default deny
    assert who("GET", "/apix") == 404
    assert who("GET", "/") == 404


# ---------------------------------------------------------------------------------------------
# Upstream connections

@pytest.mark.parametrize("workers", [1, 2])
def test_upstream_connections_are_kept_alive_and_reused(gateway_factory, echo, workers):
    gw = docs_gateway(gateway_factory, echo, server={"workers": workers})
    for i in range(30):  # a new client connection each time
        r = requests.get(gw.url(f"/docs/reuse/{i}"), headers={"Connection": "close"}, timeout=5)
        assert r.status_code == 200
    with requests.Session() as s:
        for i in range(30):
            assert s.get(gw.url(f"/docs/reuse-session/{i}"), timeout=5).status_code == 200
    assert echo.request_count == 60
    assert echo.connections <= workers, f"{echo.connections} upstream connections for 60 sequential requests"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_idempotent_request_is_retried_once_when_a_reused_connection_was_closed(gateway_factory, upstreams, method):
    up = upstreams.raw(stale_drop_second_handler)
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    first = raw_request(gw.port, "GET", "/docs/first")
    assert first.status == 200 and first.body.startswith(b"conn 1:")
    second = raw_request(gw.port, method, "/docs/second", body=b"data" if method == "PUT" else b"")
    assert second.status == 200, second
    if method != "HEAD":
        assert second.body.startswith(b"conn 2:") and b"/docs/second" in second.body
    assert up.connections == 2
    assert len(up.events) == 1  # the reused connection took the request and closed unanswered
    if method == "PUT":
        assert up.bodies[-1] == b"data"  # the retry carries the whole body again


def test_post_is_not_replayed_after_a_reused_connection_closed(gateway_factory, upstreams):
    up = upstreams.raw(stale_drop_second_handler)
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    assert raw_request(gw.port, "GET", "/docs/first").status == 200
    r = raw_request(gw.port, "POST", "/docs/order", body=b"buy one")
    assert_uniform_raw(r, 502, "bad_gateway")
    # The 502 is the signal, no pause needed: the handler records the drop before it closes, and
    # a replay would have been the first request of a fresh connection, answered 200, not 502.
    assert [e for e in up.events if "POST" in e] == ["dropped on conn 1: POST /docs/order HTTP/1.1"]
    assert not any("POST" in line for line in up.requests), "the POST was sent twice"


def test_get_succeeds_after_the_upstream_closed_the_idle_connection(gateway_factory, upstreams):
    up = upstreams.raw(stale_close_idle_handler(0.15))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    for i in range(3):
        r = raw_request(gw.port, "GET", f"/docs/idle/{i}")
        assert r.status == 200, r
        assert f"/docs/idle/{i}".encode() in r.body
        time.sleep(0.4)  # longer than the upstream's idle timeout
    assert len(up.requests) == 3


def upstream_closing_after_each_answer(upstream, conn, reader, number):
    req = read_raw_request(reader)
    if req is None:
        return
    upstream.record(req[0], req[2])
    conn.sendall(simple_response(b"closing", keep_alive=False))
    conn.shutdown(socket.SHUT_RDWR)


def test_upstream_connection_close_is_respected_so_posts_never_hit_a_closed_connection(gateway_factory, upstreams):
    up = upstreams.raw(upstream_closing_after_each_answer)
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS], server={"workers": 1})
    for i, method in enumerate(["GET", "POST", "POST", "PATCH", "POST"]):
        r = raw_request(gw.port, method, f"/docs/c/{i}", body=b"once" if method != "GET" else b"")
        assert r.status == 200 and r.body == b"closing", (method, r)
        time.sleep(0.05)
    assert len(up.requests) == 5 and up.connections == 5


def test_round_robin_alternates_between_two_targets(gateway_factory, upstreams):
    a, b = upstreams.echo("a"), upstreams.echo("b")
    gw = gateway_factory(upstreams={"api": [a, b]}, routes=[DOCS], server={"workers": 1})
    seen = [requests.get(gw.url(f"/docs/rr/{i}"), timeout=5).json()["server"] for i in range(8)]
    assert sorted(seen) == ["a"] * 4 + ["b"] * 4
    assert all(seen[i] != seen[i + 1] for i in range(7)), seen


@pytest.mark.parametrize("workers", [1, 2])
def test_when_one_target_refuses_connections_the_other_serves_every_request(gateway_factory, upstreams, workers):
    live = upstreams.echo("live")
    dead = f"http://{LOOPBACK}:{free_port()}"
    gw = gateway_factory(upstreams={"api": {"targets": [dead, live.url], "connect_timeout": "1s"}},
                         routes=[DOCS], server={"workers": workers})
    for i in range(10):
        r = requests.get(gw.url(f"/docs/failover/{i}"), timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["server"] == "live"
    assert live.request_count == 10


def test_connect_timeout_moves_on_to_the_next_target(gateway_factory, upstreams):
    hole = upstreams.blackhole()
    if not hole.connect_hangs():
        pytest.skip("this kernel does not drop SYNs to a full accept queue on loopback")
    live = upstreams.echo("live")
    gw = gateway_factory(upstreams={"api": {"targets": [hole.url, live.url], "connect_timeout": "300ms"}},
                         routes=[DOCS], server={"workers": 1})
    started = time.monotonic()
    for i in range(2):
        r = requests.get(gw.url(f"/docs/ct/{i}"), timeout=5)
        assert r.status_code == 200 and r.json()["server"] == "live"
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------------------------------------
# Bodies, framing, concurrency

def test_large_request_body_arrives_byte_exact(gateway_factory, echo):
    echo.brief = True
    gw = docs_gateway(gateway_factory, echo)
    body = os.urandom(5 * 1024 * 1024)
    r = requests.put(gw.url("/docs/big-upload"), data=body, timeout=20)
    assert r.status_code == 200
    got = r.json()
    assert got["body_length"] == len(body)
    assert got["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_expect_100_continue_upload_is_forwarded_once(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"POST /docs/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                  b"Connection: close\r\n\r\n")
        reader = s.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 100")
        assert reader.readline() == b"\r\n"
        s.sendall(b"hello")
        r = read_response(reader)
    assert r.status == 200
    got = r.json()
    assert got["body"] == "hello"
    assert pairs_get(got["headers"], "Expect") is None
    assert echo.request_count == 1


def test_concurrent_requests_never_get_each_others_responses(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    errors = []

    def client(n):
        with requests.Session() as s:
            for i in range(5):
                rid = f"c{n}-r{i}"
                r = s.get(gw.url(f"/docs/conc/{n}/{i}?gh_sleep=0.02"), headers={"X-Request-Id": rid}, timeout=10)
                got = r.json()
                if r.status_code != 200 or got["path"] != f"/docs/conc/{n}/{i}" or r.headers["X-Request-Id"] != rid \
                        or pairs_get(got["headers"], "X-Request-Id") != rid:
                    errors.append((rid, r.status_code, got.get("path")))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert echo.request_count == 80


def test_client_connection_close_is_honoured(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    with socket.create_connection((LOOPBACK, gw.port), timeout=3) as s:
        s.sendall(b"GET /docs/bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reader = s.makefile("rb")
        r = read_response(reader)
        assert r.status == 200
        assert reader.read() == b"", "the gateway closes the connection after a Connection: close request"


def test_keep_alive_client_connection_serves_several_routes(gateway_factory, upstreams):
    a, b = upstreams.echo("a"), upstreams.echo("b")
    routes = [{"name": "ra", "match": {"path": "/a/**"}, "upstream": "a", "auth": "none"},
              {"name": "rb", "match": {"path": "/b/**"}, "upstream": "b", "auth": "none"}]
    gw = gateway_factory(upstreams={"a": a, "b": b}, routes=routes)
    with requests.Session() as s:
        seen = [s.get(gw.url(p), timeout=5) for p in ["/a/1", "/b/1", "/nope", "/a/2", "/b/2"]]
    assert [r.status_code for r in seen] == [200, 200, 404, 200, 200]
    assert [r.json().get("server") for r in seen if r.status_code == 200] == ["a", "b", "a", "b"]


@pytest.mark.parametrize("status", [500, 503, 404, 401, 413])
def test_upstream_error_statuses_pass_through_unchanged(gateway_factory, echo, status):
    echo.extra_headers = [("WWW-Authenticate", 'Basic realm="upstream"')] if status == 401 else []
    gw = docs_gateway(gateway_factory, echo)
    r = requests.get(gw.url(f"/docs/fail?gh_status={status}"), timeout=5)
    assert r.status_code == status
    assert r.json()["server"] == "echo"  # the upstream's own body, not the uniform error
    if status == 401:
        assert r.headers["WWW-Authenticate"] == 'Basic realm="upstream"'
    rec = gw.wait_log_record(r.headers["X-Request-Id"])
    assert rec["upstream_status"] == status and rec["decision"] == "allow"


def test_upstream_204_and_304_keep_the_client_connection_usable(gateway_factory, upstreams):
    up = upstreams.raw(status_handler({
        "/docs/204": b"HTTP/1.1 204 No Content\r\nX-Kind: nc\r\n\r\n",
        "/docs/304": b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    data = (b"GET /docs/204 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /docs/304 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\n"
            b"GET /docs/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(data)
        reader = s.makefile("rb")
        r204, r304, after = (read_response(reader) for _ in range(3))
    assert (r204.status, r204.body, r204.header("X-Kind")) == (204, b"", "nc")
    assert (r304.status, r304.body, r304.header("ETag")) == (304, b"", '"v1"')
    assert after.status == 200 and after.body == b"default"
    assert r204.header("Transfer-Encoding") is None


def test_close_delimited_upstream_body_reaches_the_client_complete(gateway_factory, upstreams):
    body = os.urandom(300_000)
    up = upstreams.raw(close_delimited_handler(body))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/close-delimited")
    assert r.status == 200 and r.body == body
    r10 = raw_exchange(gw.port, b"GET /docs/close-delimited HTTP/1.0\r\n\r\n")
    assert r10.status == 200 and r10.body == body


@pytest.mark.parametrize("path", [
    pytest.param("/docs/cl", id="content-length"),
    pytest.param("/docs/chunked", id="chunked"),
    pytest.param("/docs/duplicate-identical-length", id="duplicate-identical-content-length"),
])
def test_response_framing_is_single_and_unambiguous(gateway_factory, upstreams, path):
    # RFC 9112 §6.3 (5): a proxy that accepts repeated identical Content-Length values MUST
    # replace them with a single one before forwarding.
    up = upstreams.raw(status_handler({
        "/docs/cl": simple_response(b"twelve bytes"),
        "/docs/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "/docs/duplicate-identical-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    r = raw_request(gw.port, "GET", path)
    assert r.status == 200
    lengths = r.header_all("Content-Length")
    encodings = r.header_all("Transfer-Encoding")
    assert len(lengths) <= 1 and len(encodings) <= 1, r.headers
    assert not (lengths and encodings), r.headers
    assert r.body in (b"twelve bytes", b"hello")


def test_upstream_response_with_conflicting_content_lengths_is_502(gateway_factory, upstreams):
    # RFC 9112 §6.3 (5): a proxy MUST discard such a response and answer 502.
    up = upstreams.raw(status_handler({
        "/docs/conflict": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello12",
    }))
    gw = gateway_factory(upstreams={"api": up}, routes=[DOCS])
    assert_uniform_raw(raw_request(gw.port, "GET", "/docs/conflict"), 502, "bad_gateway")


def test_slowly_streaming_upstream_is_not_cut_while_chunks_keep_coming(gateway_factory, upstreams):
    chunks = [f"part{i};".encode() for i in range(8)]
    up = upstreams.raw(trickle_handler(chunks, 0.15))  # 1.2 s in all, never silent for 400 ms
    gw = gateway_factory(upstreams={"api": {"targets": [up.url], "timeout": "400ms"}}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/trickle", timeout=5)
    assert r.status == 200 and r.body == b"".join(chunks)


def test_connect_timeout_does_not_limit_a_slow_response(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo, upstream={"connect_timeout": "200ms", "timeout": "3s"})
    r = requests.get(gw.url("/docs/slow-answer?gh_sleep=0.6"), timeout=5)
    assert r.status_code == 200


def test_client_that_disconnects_while_waiting_is_noticed_before_the_upstream_answers(gateway_factory, echo):
    # The client's socket is still read while its request is in flight: its close ends the
    # exchange at once (logged as client_closed), not when the upstream's answer comes.
    gw = docs_gateway(gateway_factory, echo, server={"workers": 1})
    s = socket.create_connection((LOOPBACK, gw.port), timeout=3)
    s.sendall(b"GET /docs/abandoned?gh_sleep=2 HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-early\r\n\r\n")
    assert echo.received.wait(3)
    s.close()
    rec = gw.wait_log_record("gone-early", timeout=1.5)
    assert rec["reason"] == "client_closed" and rec["decision"] == "error"
    assert rec["duration_ms"] < 1500
    assert requests.get(gw.url("/docs/after"), timeout=5).status_code == 200


def test_upstream_slower_than_the_client_read_timeout_still_answers(gateway_factory, echo):
    # read_timeout is the client's idle limit; while its request is in flight only the
    # upstream's timeouts apply. Afterwards the idle limit is back.
    gw = docs_gateway(gateway_factory, echo, server={"read_timeout": "400ms"}, upstream={"timeout": "3s"})
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        reader = s.makefile("rb")
        for i in range(2):
            s.sendall(f"GET /docs/slow/{i}?gh_sleep=0.9 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = read_response(reader)
            assert r.status == 200 and b"/docs/slow/%d" % i in r.body
        started = time.monotonic()
        try:
            assert reader.read() == b""
        except ConnectionResetError:
            pass
        assert 0.2 < time.monotonic() - started < 3


def test_pipelined_request_sent_while_the_first_is_in_flight_is_answered_after_it(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo)
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        reader = s.makefile("rb")
        s.sendall(b"GET /docs/first?gh_sleep=0.4 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert echo.received.wait(3)
        s.sendall(b"GET /docs/second HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = read_response(reader), read_response(reader)
        assert b"/docs/first" in first.body and b"/docs/second" in second.body


def test_bytes_a_client_sends_while_its_request_is_in_flight_are_buffered_only_up_to_a_bound(gateway_factory, echo):
    # The socket is read during the upstream's work (to notice a close), but not without end:
    # past about 2 x max_header_bytes + max_body_bytes the gateway stops reading it.
    gw = docs_gateway(gateway_factory, echo, server={"workers": 1, "max_body_bytes": "256KiB"},
                      upstream={"timeout": "10s"})
    before = gw.rss_kib()
    s = socket.create_connection((LOOPBACK, gw.port), timeout=5)
    try:
        s.sendall(b"GET /docs/slow?gh_sleep=2.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert echo.received.wait(3)
        s.settimeout(0.2)
        flood, sent, deadline = b"x" * 65536, 0, time.monotonic() + 1.5
        while time.monotonic() < deadline and sent < 64 << 20:
            try:
                sent += s.send(flood)
            except socket.timeout:
                pass  # the gateway stopped reading: the kernel buffers are full
        assert sent < 32 << 20, "the gateway kept reading"
        assert gw.rss_kib() - before < 16 << 10
    finally:
        s.close()
    assert requests.get(gw.url("/docs/after"), timeout=5).status_code == 200


def test_client_that_disconnects_while_waiting_does_not_disturb_others(gateway_factory, echo):
    gw = docs_gateway(gateway_factory, echo, server={"workers": 1})
    s = socket.create_connection((LOOPBACK, gw.port), timeout=3)
    s.sendall(b"GET /docs/abandoned?gh_sleep=0.5 HTTP/1.1\r\nHost: x\r\nX-Request-Id: abandoned-1\r\n\r\n")
    assert echo.received.wait(3)
    s.close()
    for i in range(5):
        assert requests.get(gw.url(f"/docs/after/{i}"), timeout=5).status_code == 200
    # The abandoned upstream answer has arrived for nobody once its exchange is logged.
    gw.wait_log_record("abandoned-1", timeout=5)
    for i in range(5):
        r = requests.get(gw.url(f"/docs/later/{i}"), timeout=5)
        assert r.status_code == 200 and r.json()["path"] == f"/docs/later/{i}"
    assert gw.running()
