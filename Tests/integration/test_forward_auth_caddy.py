"""Forward auth behind Debian's real Caddy 2.6.2 (SPEC §11): the shipped recipe
deploy/examples/forward-auth/Caddyfile (`forward_auth` with `copy_headers`), run as it is with
its ports replaced, in front of gatehouse (`style: forwarded`) and an echo application. The
core cases of test_forward_auth_nginx.py; Caddy passes gatehouse's 401/403 answers on as they are.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

import support
from forward_auth_support import (APP_ORIGIN, FOREIGN_ORIGIN, PUBLIC_ORIGIN, front_proxies, start_gateway,  # noqa: F401
                                  token)
from session_support import (COOKIE, USERS, received, session_gateways, set_cookies, upstream_record)  # noqa: F401


@pytest.fixture
def stack(session_gateways, echo, front_proxies):
    gw = start_gateway(session_gateways, echo.url, "forwarded")
    proxy = front_proxies("caddy", gw.port, echo.port)
    return gw, proxy, echo


def decision(gw, request_id: str) -> dict:
    record = gw.wait_log_record(request_id)
    assert record["forward_auth"] is True, record
    return record


def test_allowed_requests_reach_the_app_with_the_identity_headers(stack):
    gw, proxy, echo = stack
    bearer = ("Authorization", f"Bearer {token('alice', ['reader', 'ops'], email='a@example.com')}")
    resp, rid = proxy.request("GET", "/api/items?page=2", [bearer])
    assert resp.status == 200, (resp, proxy.stderr())
    record = upstream_record(echo, rid)
    assert record["target"] == "/api/items?page=2"
    assert received(record, "X-Auth-Subject") == ["alice"]
    assert received(record, "X-Auth-Roles") == ["reader,ops"]
    assert received(record, "X-Auth-Method") == ["jwt"]
    assert received(record, "X-Auth-Email") == ["a@example.com"]
    line = decision(gw, rid)
    assert (line["method"], line["path"], line["route"]) == ("GET", "/api/items", "api"), line


def test_refusals_are_gatehouses_uniform_answers(stack):
    gw, proxy, echo = stack
    resp, rid = proxy.request("GET", "/api/items")
    support.assert_uniform_raw(resp, 401, "unauthorized")
    assert resp.header("WWW-Authenticate") == 'Bearer realm="gatehouse"'
    resp, rid = proxy.request("POST", "/admin/users", [("Authorization", f"Bearer {token('bob', ['reader'])}")])
    support.assert_uniform_raw(resp, 403, "forbidden")
    assert decision(gw, rid)["reason"] == "insufficient_role"
    resp, rid = proxy.request("GET", "/no/route")
    support.assert_uniform_raw(resp, 403, "forbidden")
    assert decision(gw, rid)["reason"] == "no_route"
    assert echo.request_count == 0


def test_path_tricks_are_refused(stack):
    gw, proxy, echo = stack
    for trick in ("/public/%2e%2e/admin/x", "//admin/x", "/public//../admin/x", "/public/..;/admin/x",
                  "/public/x;a=1", "/public/%2fadmin", "/public/./x"):
        resp, rid = proxy.request("GET", trick, [("Authorization", f"Bearer {token('bob', ['reader'])}")])
        assert resp.status in (400, 403), (trick, resp)
        assert upstream_record(echo, rid) is None, trick
        if resp.status == 403:
            assert decision(gw, rid)["reason"] == "path_rejected", trick
    resp, rid = proxy.request("GET", "/public/docs?next=/../x")
    assert resp.status == 200
    assert upstream_record(echo, rid)["target"] == "/public/docs?next=/../x"


def test_identity_headers_from_the_client_never_reach_the_app(stack):
    gw, proxy, echo = stack
    spoofed = [("X-Auth-Subject", "root"), ("X-Auth-Roles", "admin"), ("X-Auth-Method", "jwt"),
               ("X-Auth-Email", "root@example.com")]
    resp, rid = proxy.request("GET", "/public/x", spoofed)
    assert resp.status == 200
    record = upstream_record(echo, rid)
    for name, _ in spoofed:
        # Caddy copies every header of the answer: empty for an anonymous caller, never the
        # client's value and never Caddy's placeholder text.
        assert received(record, name) in ([], [""]), (name, record["headers"])
    resp, rid = proxy.request("GET", "/api/x", spoofed + [("Authorization", f"Bearer {token('bob', ['reader'])}")])
    record = upstream_record(echo, rid)
    assert received(record, "X-Auth-Subject") == ["bob"]
    assert received(record, "X-Auth-Email") in ([], [""])
    assert not any("{http." in value for _, value in record["headers"]), record["headers"]


def test_a_session_login_and_its_use_through_caddy(stack):
    gw, proxy, echo = stack
    body = urlencode({"username": "alice", "password": USERS["alice"]}).encode()
    resp, _ = proxy.request("POST", "/login", [("Content-Type", "application/x-www-form-urlencoded")], body=body)
    assert resp.status == 200, (resp, proxy.stderr())
    cookie = set_cookies(resp, COOKIE)[0].value
    resp, rid = proxy.request("GET", "/admin/panel", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 200, resp
    assert received(upstream_record(echo, rid), "X-Auth-Method") == ["session"]
    resp, _ = proxy.request("POST", "/logout", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 204
    resp, rid = proxy.request("GET", "/admin/panel", [("Cookie", f"{COOKIE}={cookie}")])
    support.assert_uniform_raw(resp, 401, "unauthorized")
    assert decision(gw, rid)["reason"] == "session_revoked"


def test_a_cors_preflight_and_the_websocket_origin_rule(stack):
    gw, proxy, echo = stack
    resp, rid = proxy.request("OPTIONS", "/api/items", [("Origin", APP_ORIGIN), ("Access-Control-Request-Method", "PUT")])
    assert resp.status == 200, resp
    assert decision(gw, rid)["decision"] == "preflight"
    resp, rid = proxy.request("OPTIONS", "/api/items", [("Origin", FOREIGN_ORIGIN), ("Access-Control-Request-Method", "PUT")])
    support.assert_uniform_raw(resp, 403, "forbidden")
    assert upstream_record(echo, rid) is None
    cookie = gw.login_cookie("alice")
    handshake = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                 ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Cookie", f"{COOKIE}={cookie}")]
    resp, rid = proxy.request("GET", "/api/live", handshake + [("Origin", FOREIGN_ORIGIN)])
    support.assert_uniform_raw(resp, 403, "forbidden")
    assert decision(gw, rid)["reason"] == "csrf_rejected"
    resp, rid = proxy.request("GET", "/api/live", handshake + [("Origin", PUBLIC_ORIGIN)])
    assert resp.status == 200, resp
    assert decision(gw, rid)["subject"] == "alice"


def test_a_request_body_goes_to_the_app(stack):
    gw, proxy, echo = stack
    body = b'{"name": "widget"}' * 100
    resp, rid = proxy.request("POST", "/api/items", [("Authorization", f"Bearer {token()}"),
                                                    ("Content-Type", "application/json")], body=body)
    assert resp.status == 200, resp
    record = upstream_record(echo, rid)
    assert record["method"] == "POST" and record["body_length"] == len(body)
    line = decision(gw, rid)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/items", 200), line
