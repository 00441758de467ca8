"""Forward auth behind Debian's real nginx (SPEC §11): the shipped recipe
deploy/examples/forward-auth/nginx.conf (`auth_request`, `auth_request_set` copying the identity
headers to the application, `error_page 401` to a login page), run as it is with its ports
replaced, in front of gatehouse (`style: original`) and an echo application.
"""

from __future__ import annotations

import pytest

from forward_auth_support import (APP_ORIGIN, FOREIGN_ORIGIN, PUBLIC_ORIGIN, front_proxies, start_gateway,  # noqa: F401
                                  token)
from session_support import (COOKIE, USERS, received, session_gateways, set_cookies, upstream_record)  # noqa: F401
from urllib.parse import urlencode


@pytest.fixture
def stack(session_gateways, echo, front_proxies):
    gw = start_gateway(session_gateways, echo.url, "original")
    proxy = front_proxies("nginx", gw.port, echo.port)
    return gw, proxy, echo


def decision(gw, request_id: str) -> dict:
    record = gw.wait_log_record(request_id)
    assert record["forward_auth"] is True, record
    return record


def test_allowed_requests_reach_the_app_with_the_identity_headers(stack):
    gw, proxy, echo = stack
    resp, rid = proxy.request("GET", "/api/items?page=2", [("Authorization", f"Bearer {token('alice', ['reader'], email='a@example.com')}")])
    assert resp.status == 200, (resp, proxy.stderr())
    record = upstream_record(echo, rid)
    assert record["target"] == "/api/items?page=2"
    assert received(record, "X-Auth-Subject") == ["alice"]
    assert received(record, "X-Auth-Roles") == ["reader"]
    assert received(record, "X-Auth-Method") == ["jwt"]
    assert received(record, "X-Auth-Email") == ["a@example.com"]
    line = decision(gw, rid)
    assert (line["method"], line["path"], line["status"], line["subject"], line["route"]) == \
        ("GET", "/api/items", 200, "alice", "api"), line


def test_unauthenticated_gets_401_and_the_login_page_denied_gets_403(stack):
    gw, proxy, echo = stack
    resp, rid = proxy.request("GET", "/api/items", [("Accept", "text/html")])
    assert resp.status == 401, resp
    assert b"Please log in" in resp.body
    assert resp.header("WWW-Authenticate") == 'Bearer realm="gatehouse"'
    assert decision(gw, rid)["reason"] == "missing_credentials"
    resp, rid = proxy.request("DELETE", "/admin/users/1", [("Authorization", f"Bearer {token('bob', ['reader'])}")])
    assert resp.status == 403, resp
    assert decision(gw, rid)["reason"] == "insufficient_role"
    resp, rid = proxy.request("GET", "/no/route/here")
    assert resp.status == 403, resp
    assert decision(gw, rid)["reason"] == "no_route"
    assert echo.request_count == 0


def test_path_tricks_are_decided_on_the_path_nginx_forwards(stack):
    gw, proxy, echo = stack
    admin_only = {"Authorization": f"Bearer {token('bob', ['reader'])}"}
    for trick in ("/public/%2e%2e/admin/x", "/public/%2E%2E/admin/x", "//admin/x", "/public//../admin/x",
                  "/public/..;/admin/x", "/public/x;a=1", "/public/%2fadmin", "/public/./x"):
        resp, rid = proxy.request("GET", trick, list(admin_only.items()))
        # nginx refuses some itself (400); whatever gatehouse sees, the app never does.
        assert resp.status in (400, 403), (trick, resp)
        assert upstream_record(echo, rid) is None, trick
        if resp.status == 403:
            assert decision(gw, rid)["reason"] == "path_rejected", trick
    resp, rid = proxy.request("GET", "/public/docs/intro")
    assert resp.status == 200
    assert upstream_record(echo, rid)["target"] == "/public/docs/intro"


def test_identity_headers_from_the_client_never_reach_the_app(stack):
    gw, proxy, echo = stack
    spoofed = [("X-Auth-Subject", "root"), ("X-Auth-Roles", "admin"), ("X-Auth-Method", "jwt"),
               ("X-Auth-Email", "root@example.com")]
    resp, rid = proxy.request("GET", "/public/x", spoofed)
    assert resp.status == 200
    record = upstream_record(echo, rid)
    for name, value in spoofed:
        assert value not in received(record, name), (name, record["headers"])
    resp, rid = proxy.request("GET", "/api/x", spoofed + [("Authorization", f"Bearer {token('bob', ['reader'])}")])
    record = upstream_record(echo, rid)
    assert received(record, "X-Auth-Subject") == ["bob"]
    assert received(record, "X-Auth-Roles") == ["reader"]
    assert "root@example.com" not in received(record, "X-Auth-Email")


def test_a_session_login_and_its_use_through_nginx(stack):
    gw, proxy, echo = stack
    body = urlencode({"username": "alice", "password": USERS["alice"]}).encode()
    resp, _ = proxy.request("POST", "/login", [("Content-Type", "application/x-www-form-urlencoded")], body=body)
    assert resp.status == 200, (resp, proxy.stderr())
    cookie = set_cookies(resp, COOKIE)[0].value
    resp, rid = proxy.request("GET", "/admin/panel", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 200, resp
    record = upstream_record(echo, rid)
    assert received(record, "X-Auth-Subject") == ["alice"] and received(record, "X-Auth-Method") == ["session"]
    resp, _ = proxy.request("POST", "/keepalive", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 204
    resp, _ = proxy.request("POST", "/logout", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 204
    resp, rid = proxy.request("GET", "/admin/panel", [("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 401
    assert decision(gw, rid)["reason"] == "session_revoked"


def test_a_cors_preflight(stack):
    gw, proxy, echo = stack
    preflight = [("Origin", APP_ORIGIN), ("Access-Control-Request-Method", "PUT"),
                 ("Access-Control-Request-Headers", "authorization")]
    resp, rid = proxy.request("OPTIONS", "/api/items", preflight)
    assert resp.status == 200, resp
    assert resp.header("Access-Control-Allow-Origin") == APP_ORIGIN
    assert "PUT" in (resp.header("Access-Control-Allow-Methods") or "")
    assert decision(gw, rid)["decision"] == "preflight"
    resp, rid = proxy.request("OPTIONS", "/api/items", [("Origin", FOREIGN_ORIGIN), ("Access-Control-Request-Method", "PUT")])
    assert resp.status == 403
    assert resp.header("Access-Control-Allow-Origin") is None
    assert upstream_record(echo, rid) is None


def test_a_websocket_handshake_is_decided_as_a_plain_request(stack):
    gw, proxy, echo = stack
    handshake = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                 ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
    resp, rid = proxy.request("GET", "/api/live", handshake + [("Authorization", f"Bearer {token()}")])
    assert resp.status == 200, resp   # the echo app answers the handshake with a plain 200
    line = decision(gw, rid)
    assert (line["status"], line["method"], line["path"]) == (200, "GET", "/api/live"), line
    record = upstream_record(echo, rid)
    assert received(record, "Upgrade") == ["websocket"] and received(record, "X-Auth-Subject") == ["alice"]
    # With the session cookie the Origin rule (SPEC §12) applies to the subrequest.
    cookie = gw.login_cookie("alice")
    resp, rid = proxy.request("GET", "/api/live", handshake + [("Cookie", f"{COOKIE}={cookie}"), ("Origin", FOREIGN_ORIGIN)])
    assert resp.status == 403
    assert decision(gw, rid)["reason"] == "csrf_rejected"
    assert upstream_record(echo, rid) is None
    resp, rid = proxy.request("GET", "/api/live", handshake + [("Cookie", f"{COOKIE}={cookie}"), ("Origin", PUBLIC_ORIGIN)])
    assert resp.status == 200
    assert received(upstream_record(echo, rid), "X-Auth-Method") == ["session"]


def test_the_decision_endpoint_is_not_reachable_through_nginx(stack):
    gw, proxy, echo = stack
    resp, _ = proxy.request("GET", "/_gatehouse/auth", [("X-Original-URI", "/admin/x"), ("X-Original-Method", "GET")])
    assert resp.status == 404


def test_a_request_body_goes_to_the_app_not_to_the_decision(stack):
    gw, proxy, echo = stack
    body = b'{"name": "widget"}' * 100
    resp, rid = proxy.request("POST", "/api/items", [("Authorization", f"Bearer {token()}"),
                                                    ("Content-Type", "application/json")], body=body)
    assert resp.status == 200, resp
    record = upstream_record(echo, rid)
    assert record["method"] == "POST" and record["body_length"] == len(body)
    line = decision(gw, rid)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/items", 200), line
